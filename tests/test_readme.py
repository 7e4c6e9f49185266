"""The README's Python examples run: every fenced ``python`` block of README.md is executed, in
order, in one namespace (as a reader pastes them). studies/README.md's blocks are templates of a
study module (relative imports, ``...`` bodies): they are compiled, so their syntax cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    """The fenced ``python`` blocks of a Markdown file, in order."""
    return _FENCE.findall(path.read_text())


def test_the_readme_has_examples():
    assert python_blocks(ROOT / "README.md"), "README.md lost its Python example"


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    namespace: dict = {"__name__": "__readme__"}
    for i, block in enumerate(python_blocks(ROOT / "README.md")):
        exec(compile(block, f"README.md, python block {i + 1}", "exec"), namespace)


def test_study_templates_compile():
    blocks = python_blocks(ROOT / "studies" / "README.md")
    assert blocks
    for i, block in enumerate(blocks):
        compile(block, f"studies/README.md, python block {i + 1}", "exec")
