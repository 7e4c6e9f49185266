"""Independent references for the tests: numpy vector fields and scipy solutions; and the runner
of the Markdown pages' ``python`` blocks (README.md, docs/)."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import torch


def numpy_input(kind: str, times: np.ndarray, samples: np.ndarray):
    """x(t) through (t_0, x_1), (t_1, x_1), ..., (t_T, x_T), built with numpy / scipy only."""
    knots = np.concatenate([samples[:1], samples])
    if kind == "linear":
        return lambda t: np.array([np.interp(t, times, knots[:, c]) for c in range(knots.shape[1])])
    if kind == "cubic":
        spline = scipy.interpolate.CubicSpline(times, knots, axis=0, bc_type="natural")
        return lambda t: spline(min(max(t, times[0]), times[-1]))
    raise ValueError(kind)


def elman_stack_rhs(model, x_of_t):
    """dh/dt of a unidirectional Elman (tanh) or linear stack coupled continuously, in numpy.

    Reads the weights as plain arrays and reimplements the field: layer l sees the hidden states
    of its sources (or the input) at the same instant.
    """
    L, H = model.num_layers, model.hidden_size
    layers = []
    for layer in range(L):
        f = model.field(layer)
        get = lambda p: None if p is None else p.detach().numpy()  # noqa: E731
        layers.append(
            (
                get(f.weight_ih),
                get(f.weight_hh),
                get(f.bias_ih),
                get(f.bias_hh),
                float(f.tau),
                model.sources(layer),
            )
        )
    sigma = (lambda z: z) if model.cell == "linear" else np.tanh

    def rhs(t, y):
        h = y.reshape(L, H)
        x = x_of_t(t)
        out = np.empty_like(h)
        for l, (wi, wh, bi, bh, tau, sources) in enumerate(layers):
            src = np.concatenate([x if j < 0 else h[j] for j in sources])
            z = wi @ src + wh @ h[l] + (0 if bi is None else bi + bh)
            out[l] = (sigma(z) - h[l]) / tau
        return out.ravel()

    return rhs


def solve_ivp_reference(rhs, times: np.ndarray, y0: np.ndarray, *, jumps=()) -> np.ndarray:
    """DOP853 at rtol = atol = 1e-13 through ``times``, restarting at every jump time."""
    cuts = sorted({float(times[0]), float(times[-1]), *map(float, jumps)})
    out = [y0]
    y = y0
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        inside = times[(times > a) & (times <= b)]
        sol = scipy.integrate.solve_ivp(
            rhs, (a, b), y, method="DOP853", t_eval=inside, rtol=1e-13, atol=1e-13, first_step=None
        )
        assert sol.success, sol.message
        out.extend(sol.y.T)
        y = (
            sol.y[:, -1]
            if len(inside) and inside[-1] == b
            else scipy.integrate.solve_ivp(
                rhs, (a, b), y, method="DOP853", rtol=1e-13, atol=1e-13
            ).y[:, -1]
        )
    return np.array(out)


def observed_order(steps, errors) -> float:
    """Least-squares slope of log(error) against log(step)."""
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def assert_seed_finding(claim: dict, samples, control: float | None = None) -> None:
    """A finding over seeds: the mean of the per-seed numbers and the Student-t interval, p-value
    and MDE of one test against the bound (and the control's value, if given), recomputed from
    the metrics."""
    from rnnode.studies._stats import mean_test

    samples = np.asarray(samples, dtype=np.float64)
    expected = mean_test(samples, claim["bound"])
    assert claim["kind"] == "finding"
    assert claim["value"] == pytest.approx(samples.mean(), rel=1e-12, abs=1e-15)
    interval = [float(v) for v in claim["interval"]]  # JSON keeps infinities as strings
    assert interval == pytest.approx(list(expected.interval), rel=1e-12)
    assert claim["p_value"] == pytest.approx(expected.p_value, rel=1e-12)
    assert float(claim["mde"]) == pytest.approx(expected.mde, rel=1e-12)
    assert claim["seeds"] == samples.shape[0]
    if control is not None:
        assert claim["control"]["value"] == pytest.approx(control, rel=1e-12, abs=1e-15)


def assert_seed_verification(claim: dict, samples) -> None:
    """A verification over seeds (``Context.verify_over_seeds``): its value is the seeds' mean."""
    samples = np.asarray(samples, dtype=np.float64)
    assert claim["kind"] == "verification" and "verdict" not in claim
    assert claim["value"] == pytest.approx(samples.mean(), rel=1e-12, abs=1e-15)


#: A fenced ``python`` block, with the optional marker ``<!-- not executed: REASON -->`` on the
#: line before its fence: the one way to keep a block that needs something unavailable out of
#: :func:`run_python_blocks` (a block that is not Python at all takes another fence language).
_PYTHON_BLOCK = re.compile(
    r"^(?:<!-- not executed: (?P<reason>\S[^\n]*?) -->\n)?```python\n(?P<code>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class CodeBlock:
    """One fenced ``python`` block of a Markdown page."""

    number: int  #: 1-based, among the page's python blocks
    line: int  #: the 1-based line of the page on which the code starts (after the fence)
    code: str
    not_executed: str | None  #: the reason given by a ``<!-- not executed: ... -->`` marker


def python_blocks(path: Path) -> list[CodeBlock]:
    """The fenced ``python`` blocks of a Markdown file, in order."""
    text = path.read_text()
    return [
        CodeBlock(
            number=i + 1,
            line=text.count("\n", 0, match.start("code")) + 1,
            code=match.group("code"),
            not_executed=match.group("reason"),
        )
        for i, match in enumerate(_PYTHON_BLOCK.finditer(text))
    ]


#: The child process: executes (filename, label, source) triples in one namespace, in order, and
#: on the first exception prints the label and the traceback to stderr and exits 1.
_RUNNER = """
import json, sys, traceback
namespace = {"__name__": "__main__"}
for filename, label, source in json.load(sys.stdin):
    try:
        exec(compile(source, filename, "exec"), namespace)
    except BaseException:
        print(f"{label} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


@dataclass(frozen=True)
class BlocksRun:
    """What :func:`run_python_blocks` saw: the child's exit status, output and CPU seconds."""

    returncode: int
    stdout: str
    stderr: str
    cpu_s: float
    executed: int  #: the number of blocks sent (all but the ``not executed`` ones)


def run_python_blocks(
    path: Path, cwd: Path, *, name: str | None = None, timeout: float = 600
) -> BlocksRun:
    """Execute the ``python`` blocks of the Markdown page ``path`` in order, in one fresh
    namespace, in a fresh interpreter (torch's defaults, not the test session's float64) whose
    working directory is ``cwd`` (files the blocks write land there), with ``MPLBACKEND=Agg``
    (and ``OMP_NUM_THREADS=1`` unless set).

    Each block is compiled with the page's path as its file name and its code at the page's own
    line numbers, so a traceback points at the page's line; a failure names the page (``name``,
    default ``path``'s name) and the block's number. Blocks preceded by
    ``<!-- not executed: REASON -->`` are skipped. Returns a :class:`BlocksRun`; the CPU time is
    the child's user + system time.
    """
    name = name or path.name
    triples = [
        (
            str(path),
            f"{name}, python block {b.number} (line {b.line})",
            "\n" * (b.line - 1) + b.code,
        )
        for b in python_blocks(path)
        if b.not_executed is None
    ]
    # One intra-op thread unless the caller says otherwise: the snippets' tensors are small, and
    # on a busy machine torch's spinning worker threads cost up to 100 times the CPU of the work.
    env = {"OMP_NUM_THREADS": "1", **os.environ, "MPLBACKEND": "Agg"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(triples),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return BlocksRun(done.returncode, done.stdout, done.stderr, cpu, len(triples))
