"""Types: the solver keywords are explicit in the signatures (help() and editors list them), and
mypy passes on rnnode, rnnode.analysis and rnnode.studies (``.ci/typecheck.py``, as CI runs it)."""

from __future__ import annotations

import importlib.util
import inspect
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import rnnode

ROOT = Path(__file__).resolve().parent.parent

#: The keywords of one solve: the solver settings, the times and the flags.
SOLVER_KEYWORDS = {
    "t",
    "method",
    "step_size",
    "rtol",
    "atol",
    "interpolation",
    "coupling",
    "engine",
    "adjoint",
    "options",
    "detach_layers",
}


def _keywords(function) -> dict[str, inspect.Parameter]:
    return {
        name: p
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _var_keyword(function) -> list[str]:
    parameters = inspect.signature(function).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]


@pytest.mark.parametrize(
    "function",
    [rnnode.ODERNN.forward, rnnode.ODERNN.solve, rnnode.LTC.forward],
    ids=["ODERNN.forward", "ODERNN.solve", "LTC.forward"],
)
def test_solver_keywords_are_explicit(function):
    assert _var_keyword(function) == []
    keywords = _keywords(function)
    assert SOLVER_KEYWORDS <= set(keywords), SOLVER_KEYWORDS - set(keywords)
    text = pydoc.render_doc(function)
    for name in SOLVER_KEYWORDS:
        assert f"{name}:" in text or f"{name}=" in text, name
    # Every keyword is annotated, so that editors show its type.
    assert all(p.annotation is not inspect.Parameter.empty for p in keywords.values())


def test_ltc_forward_takes_every_keyword_of_solve():
    # LTC.forward passes each one on to solve: the two lists stay the same, defaults included.
    solve, forward = _keywords(rnnode.ODERNN.solve), _keywords(rnnode.LTC.forward)
    assert list(forward) == list(solve)
    assert [p.default for p in forward.values()] == [p.default for p in solve.values()]
    assert [p.annotation for p in forward.values()] == [p.annotation for p in solve.values()]


def test_odernn_forward_keywords_are_those_of_solve():
    solve, forward = _keywords(rnnode.ODERNN.solve), _keywords(rnnode.ODERNN.forward)
    assert set(forward) <= set(solve)
    for name, p in forward.items():
        assert (p.default, p.annotation) == (solve[name].default, solve[name].annotation), name


def test_subpackages_are_typed_for_checkers():
    # ``import rnnode`` then ``rnnode.training.Task``: the lazy subpackages resolve at run time
    # and are declared under TYPE_CHECKING for mypy and editors (rnnode/__init__.py).
    source = (ROOT / "rnnode" / "__init__.py").read_text()
    for name in ("analysis", "fields", "studies", "training"):
        assert f"from . import {name} as {name}" in source
        assert getattr(rnnode, name).__name__ == f"rnnode.{name}"


@pytest.mark.slow
def test_mypy_passes_on_the_three_packages():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (the dev extra installs it)")
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "typecheck.py")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues found" in done.stdout
    # All three were checked: the layout maps analysis/ and studies/ under rnnode.
    checked = int(done.stdout.rsplit(" in ", 1)[1].split()[0])
    files = {p for d in ("rnnode", "analysis", "studies") for p in (ROOT / d).rglob("*.py")}
    assert checked == len(files)
