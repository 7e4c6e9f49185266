"""The docs pages' Python examples run: for each Markdown page of the documentation
(docs/getting_started.md, docs/benchmarks.md, docs/guide/*.md) the fenced ``python`` blocks are
executed in order, in one fresh namespace per page, in a fresh interpreter whose working directory
is a temporary folder, with ``MPLBACKEND=Agg`` (``helpers.run_python_blocks``, the README's runner
too). A failure names the page, the block's number and the page's line, with the traceback.

A block that is not Python (shell commands, program output, pseudo-code) takes another fence
language (``bash``, ``console``, ``text``). A Python block that needs something unavailable is
preceded by ``<!-- not executed: REASON -->`` on the line before its fence; none does today.

Measured (OMP_NUM_THREADS=1, each page's child process including torch's import of about 1 s):
every page takes under 5 s of CPU and all of them about 18 s, hence ``slow``. A page over
``CPU_BUDGET_S`` fails: shrink its examples (fewer steps, smaller models) so they stay quick.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import python_blocks, run_python_blocks

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PAGES = [
    DOCS / "getting_started.md",
    DOCS / "benchmarks.md",
    *sorted((DOCS / "guide").glob("*.md")),
]
IDS = [p.relative_to(DOCS).as_posix() for p in PAGES]
#: The most CPU seconds one page's examples may take (the slowest takes about 4 s).
CPU_BUDGET_S = 30.0
_MARKER = "<!-- not executed:"


def test_the_pages_exist_and_have_examples():
    assert all(p.is_file() for p in PAGES)
    assert (DOCS / "guide" / "model.md") in PAGES
    assert sum(len(python_blocks(p)) for p in PAGES) >= 20, "the docs pages lost their examples"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_python_blocks_compile(page: Path):
    """Fast: every block, executed or not, is valid Python."""
    for block in python_blocks(page):
        compile(
            "\n" * (block.line - 1) + block.code, f"{page} (python block {block.number})", "exec"
        )


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_not_executed_markers_sit_on_a_python_block(page: Path):
    """A marker that does not directly precede a ``python`` fence would be silently ignored; and
    a marker must give its reason."""
    markers = page.read_text().count(_MARKER)
    skipped = [b for b in python_blocks(page) if b.not_executed is not None]
    assert len(skipped) == markers, (
        f"{page.name}: {markers} '{_MARKER} REASON -->' markers but {len(skipped)} of them on the "
        "line just before a ```python fence with a reason"
    )


@pytest.mark.slow  # one subprocess per page: 1 to 5 s of CPU each
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_python_blocks_run(page: Path, tmp_path: Path):
    name = page.relative_to(ROOT).as_posix()
    run = run_python_blocks(page, tmp_path, name=name)
    assert run.returncode == 0, f"{name}: a python block failed\n{run.stderr}"
    assert run.cpu_s <= CPU_BUDGET_S, (
        f"{name}: its python blocks took {run.cpu_s:.1f} s of CPU (budget {CPU_BUDGET_S:.0f} s): "
        "shrink the examples (fewer steps, smaller models)"
    )


# The runner itself, on pages written here: no torch import, a fraction of a second each.


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text)
    return page


def test_runner_shares_one_namespace_and_runs_in_cwd(tmp_path: Path):
    page = _page(
        tmp_path,
        "Text.\n\n```python\nimport os\nvalue = 41\n```\n\n```text\nnot python\n```\n\n"
        "```python\nvalue += 1\n"
        "open('out.txt', 'w').write(f\"{value} {os.environ['MPLBACKEND']}\")\n"
        "print(__name__)\n```\n",
    )
    work = tmp_path / "work"
    work.mkdir()
    run = run_python_blocks(page, work)
    assert run.returncode == 0, run.stderr
    assert run.executed == 2
    assert (work / "out.txt").read_text() == "42 Agg"
    assert run.stdout == "__main__\n"


def test_runner_failure_names_page_block_and_line(tmp_path: Path):
    page = _page(tmp_path, "# T\n\n```python\nx = 1\n```\n\n```python\ny = 2\nx / 0\n```\n")
    run = run_python_blocks(page, tmp_path, name="docs/page.md")
    assert run.returncode == 1
    assert "docs/page.md, python block 2 (line 8) failed:" in run.stderr
    assert f'File "{page}", line 9' in run.stderr  # the page's own line
    assert "x / 0" in run.stderr  # the page's source line, shown in the traceback
    assert run.stderr.rstrip().endswith("ZeroDivisionError: division by zero")


def test_runner_skips_marked_blocks_only(tmp_path: Path):
    text = (
        "<!-- not executed: needs a GPU -->\n```python\nraise SystemExit(3)\n```\n\n"
        "```python\nprint('ran')\n```\n"
    )
    blocks = python_blocks(_page(tmp_path, text))
    assert [b.not_executed for b in blocks] == ["needs a GPU", None]
    run = run_python_blocks(tmp_path / "page.md", tmp_path)
    assert (run.returncode, run.executed, run.stdout) == (0, 1, "ran\n")
    # without a reason the marker does not count: the block runs, and a SystemExit is a failure
    bare = _page(tmp_path, "<!-- not executed: -->\n```python\nraise SystemExit(0)\n```\n")
    assert python_blocks(bare)[0].not_executed is None
    run = run_python_blocks(bare, tmp_path)
    assert run.returncode == 1 and "python block 1 (line 3) failed" in run.stderr
