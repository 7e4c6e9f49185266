"""The README's Python examples run: every fenced ``python`` block of README.md is executed, in
order, in one namespace in a fresh interpreter, as a reader pastes them (the runner,
``helpers.run_python_blocks``, also runs the docs pages: tests/test_docs_snippets.py).
studies/README.md's blocks are templates of a study module (relative imports, ``...`` bodies):
they are compiled, so their syntax cannot rot.

The README stays short (at most 200 lines: the material lives in the docs pages), its relative
links point to files that exist, its first code block holds the two set-up commands that
``.ci/run`` runs, and no docs page is a stub (the word TODO)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import python_blocks, run_python_blocks

ROOT = Path(__file__).parents[1]
#: Markdown links and images, ``[text](target)`` and ``![alt](target)``.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
#: The two set-up commands: the README's first code block, which .ci/run and the docs rely on.
COMMANDS = (
    'pip install torch==2.13.0 && pip install -e ".[studies]" && rnnode-study run timescales '
    "--out runs",
    'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m pytest',
)


def test_the_readme_has_examples():
    assert python_blocks(ROOT / "README.md"), "README.md lost its Python example"


@pytest.mark.slow  # a subprocess: seconds
def test_readme_python_blocks_run(tmp_path: Path):
    run = run_python_blocks(ROOT / "README.md", tmp_path)  # files it writes land in tmp_path
    assert run.returncode == 0, f"README.md: a python block failed\n{run.stderr}"


def test_study_templates_compile():
    blocks = python_blocks(ROOT / "studies" / "README.md")
    assert blocks
    for block in blocks:
        compile(block.code, f"studies/README.md, python block {block.number}", "exec")


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move material to docs/"


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert first_block is not None and text.index("```") == first_block.start()
    assert first_block.group(1).splitlines() == list(COMMANDS)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert COMMANDS[1] in ci, ".ci/run no longer runs the README's second command verbatim"


def relative_links(path: Path) -> list[str]:
    """The link targets of a Markdown file that are paths in the repository (no URL, no
    fragment-only link), without their fragments."""
    targets = []
    for target in _LINK.findall(path.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_readme_relative_links_exist():
    links = relative_links(ROOT / "README.md")
    assert links, "README.md links to no docs page"
    missing = [t for t in links if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    assert any(t.startswith("docs/") and t.endswith(".md") for t in links)


def docs_pages() -> list[Path]:
    """The hand-written pages under docs/ (not the generated gallery, API pages or builds)."""
    generated = ("auto_examples", "api/generated", "_build")
    pages = [
        p
        for suffix in ("*.md", "*.rst")
        for p in (ROOT / "docs").rglob(suffix)
        if not any(part in p.relative_to(ROOT / "docs").as_posix() for part in generated)
    ]
    return sorted(pages)


def test_no_docs_page_is_a_stub():
    pages = docs_pages()
    assert (ROOT / "docs" / "guide" / "model.md") in pages
    stubs = [p.relative_to(ROOT).as_posix() for p in pages if re.search(r"\bTODO\b", p.read_text())]
    assert not stubs, f"docs pages still marked TODO: {stubs}"


def test_every_markdown_table_row_has_its_headers_cell_count():
    """A bare ``|`` inside a cell (``|x - y|`` written for an absolute value) splits the cell and
    shifts the rest of the row: every row of every table has as many unescaped ``|`` as its
    header."""
    pipe = re.compile(r"(?<!\\)\|")
    broken = []
    for page in [ROOT / "README.md", ROOT / "studies" / "README.md", *docs_pages()]:
        header = None
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if not line.startswith("|"):
                header = None
                continue
            cells = len(pipe.findall(line))
            if header is None:
                header = cells
            elif cells != header:
                broken.append(f"{page.relative_to(ROOT).as_posix()}:{number}")
    assert not broken, f"table rows with a bare | in a cell: {broken}"
