"""rnnode's contract with torchdiffeq, on its public API only: rnnode's own steps
(``engine="rnnode"``) take the steps that ``torchdiffeq.odeint`` takes (``engine="torchdiffeq"``,
and ``torchdiffeq.odeint`` called directly) on held, linear and cubic inputs for every method
rnnode lists; a step budget counted by rnnode (also under ``python -O``); every option honoured
or refused.

CI runs this file against the lowest (0.2.4) and the newest torchdiffeq (.ci/run).
"""

import ast
import contextlib
import pathlib
import subprocess
import sys

import pytest
import torch
import torchdiffeq

import rnnode
from rnnode import SolverStats, integrate
from rnnode._fixed import step_grid
from rnnode._paths import make_path


def test_methods_are_an_explicit_list_not_the_installed_registry():
    assert rnnode.METHODS == (
        "euler",
        "midpoint",
        "heun3",
        "rk4",
        "dopri5",
        "dopri8",
        "bosh3",
        "fehlberg2",
        "adaptive_heun",
        "scipy_solver",
    )
    assert rnnode.METHODS == rnnode.FIXED_METHODS + rnnode.ADAPTIVE_METHODS


def test_installed_torchdiffeq_is_at_least_the_lowest_supported():
    major, minor, patch = (int(p) for p in torchdiffeq.__version__.split(".")[:3])
    assert (major, minor, patch) >= (0, 2, 4)


_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("folder", ["rnnode", "analysis", "studies", "benchmarks", "tests"])
def test_no_module_imports_torchdiffeq_private_names(folder):
    """Public API only: no ``torchdiffeq._impl`` (pyproject: torchdiffeq>=0.2.4, no upper bound)."""
    for path in sorted((_ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            private = [n for n in names if n.startswith("torchdiffeq.") and "._" in n]
            assert not private, f"{path.relative_to(_ROOT)} imports {private}"
    requirement = next(
        line
        for line in (_ROOT / "pyproject.toml").read_text().splitlines()
        if "torchdiffeq" in line
    )
    assert requirement.strip() == '"torchdiffeq>=0.2.4",'


class _Driven(torch.nn.Module):
    """dy/dt = tanh(y W^T + u(t)) - y, driven by an input path u."""

    def __init__(self, path):
        super().__init__()
        torch.manual_seed(1)
        self.weight = torch.nn.Parameter(0.8 * torch.randn(3, 3, dtype=torch.float64))
        self.path = path

    def forward(self, t, y):
        return torch.tanh(y @ self.weight.T + self.path.evaluate(t)) - y


def _setup(interpolation):
    torch.manual_seed(0)
    times = torch.cat([torch.zeros(1), (0.5 + torch.rand(5)).cumsum(0)]).double()
    samples = torch.randn(5, 2, 3, dtype=torch.float64)
    field = _Driven(make_path(interpolation, times, samples))
    y0 = 0.3 * torch.randn(2, 3, dtype=torch.float64)
    return field, y0, times


@pytest.mark.filterwarnings("ignore:The following arguments have no effect")  # scipy's
@pytest.mark.parametrize("interpolation", ["hold", "linear", "cubic"])
@pytest.mark.parametrize("method", rnnode.METHODS)
def test_the_same_answer_as_torchdiffeq_odeint(method, interpolation):
    field, y0, times = _setup(interpolation)
    held = interpolation == "hold"
    # Low-order pairs at looser tolerances: the same comparison in fewer steps.
    low = method in ("adaptive_heun", "fehlberg2", "bosh3")
    tol = dict(rtol=1e-3, atol=1e-5) if low else dict(rtol=1e-6, atol=1e-8)
    if method in rnnode.FIXED_METHODS:
        step = 0.2
        options = {"grid_constructor": lambda f, y, t: step_grid(t, step)[0], "perturb": held}
    elif method == "scipy_solver":
        step, options = None, {"solver": "RK45"}
    else:
        step = None
        knots = {"jump_t": times[1:-1], "step_t": times[-1:]} if held else {"step_t": times[1:]}
        options = dict(knots)
    context = torch.no_grad() if method == "scipy_solver" else contextlib.nullcontext()
    pair = method in rnnode.ADAPTIVE_METHODS and method != "scipy_solver"
    stats, steps, oracle = SolverStats(), _StepCounter(field), SolverStats()
    solve = dict(
        method=method,
        step_size=step,
        discontinuous=held,
        options={"solver": "RK45"} if method == "scipy_solver" else None,
        **tol,
    )
    with context:
        got = integrate(field, y0, times, stats=stats, **solve)
        through = integrate(field, y0, times, stats=oracle, engine="torchdiffeq", **solve)
        expected = torchdiffeq.odeint(
            steps if pair else field, y0, times, method=method, options=options, **tol
        )
    # The engines: the same steps, accepted and rejected, in the same intervals, with the same
    # number of evaluations, and the same states to 1e-10.
    assert stats == oracle
    torch.testing.assert_close(got, through, rtol=0, atol=1e-10)
    if pair:
        # ... which are torchdiffeq's own, called directly.
        assert (stats.accepted_steps, stats.rejected_steps) == (steps.accepted, steps.rejected)
        assert stats.nfe == steps.nfe
    # The same arithmetic up to the order of its sums. dopri8's stage weights reach 16.7 in
    # 13 stages, whose cancellation turns two summation orders' rounding into up to 7e-12
    # (measured); every other method agrees to 1e-12.
    atol = 2e-11 if method == "dopri8" else 1e-12
    torch.testing.assert_close(got, expected, rtol=0, atol=atol)


class _StepCounter(torch.nn.Module):
    """A field that counts torchdiffeq's evaluations and its accepted and rejected steps."""

    def __init__(self, field):
        super().__init__()
        self.field = field
        self.nfe = self.accepted = self.rejected = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.field(t, y)

    def callback_accept_step(self, t0, y0, dt):
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt):
        self.rejected += 1


_STIFF = """
import torch
from rnnode import SolverStats, StepBudgetError, integrate

assert not __debug__  # running under python -O


class Stiff(torch.nn.Module):
    def forward(self, t, y):
        return -y / 1e-4


for method, adjoint in (("dopri5", False), ("bosh3", True)):
    stats = SolverStats()
    try:
        integrate(Stiff(), torch.ones(1, 2, dtype=torch.float64),
                  torch.arange(6.0, dtype=torch.float64), method=method, step_size=None,
                  rtol=1e-6, atol=1e-8, discontinuous=True, adjoint=adjoint,
                  options={"max_num_steps": 50}, stats=stats)
    except StepBudgetError as err:
        assert "max_num_steps=50 set in options" in str(err), err
        assert "diverge" not in str(err), err
        print(stats.nfe)
    else:
        raise SystemExit(f"{method}: no StepBudgetError")
"""


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_the_step_budget_holds_under_python_O():
    """torchdiffeq's budget is an assert: under -O a stiff solve ran 6,336 evaluations past
    max_num_steps=50. rnnode counts its own steps (and, in torchdiffeq's adjoint loop,
    evaluations)."""
    run = subprocess.run(
        [sys.executable, "-O", "-c", _STIFF], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    own_loop, adjoint_loop = (int(n) for n in run.stdout.split())
    assert own_loop <= 6 * 50 + 10  # dopri5: 6 evaluations a step, and the first step's choice
    assert adjoint_loop <= 16 * 50 + 1  # bounded by evaluations in torchdiffeq's loop


def _decay_solve(method="dopri5", **kw):
    times = torch.arange(4.0, dtype=torch.float64)
    y0 = torch.ones(2, 3, dtype=torch.float64)
    field = _Driven(make_path("linear", times, torch.zeros(3, 2, 3, dtype=torch.float64)))
    args = dict(method=method, step_size=None, rtol=1e-6, atol=1e-8, discontinuous=False)
    args.update(kw)
    return integrate(field, y0, times, **args)


def test_step_size_as_an_option_is_refused_not_dropped():
    with pytest.raises(ValueError, match="options: 'step_size' is the solve's own argument"):
        _decay_solve("rk4", options={"step_size": 0.1})


@pytest.mark.parametrize(
    "method,options",
    [
        ("dopri5", {"max_steps": 10}),
        ("rk4", {"first_step": 0.1}),
        ("euler", {"perturb": True}),
        ("dopri5", {"grid_constructor": None}),
        ("dopri5", {"step_t": [0.5]}),
        ("scipy_solver", {"first_step": 0.1}),
    ],
)
def test_unknown_or_inapplicable_options_are_refused(method, options):
    with pytest.raises(ValueError, match=f"options: \\['{next(iter(options))}'\\] do not apply"):
        _decay_solve(method, options=options)


def test_adjoint_options_apply_only_to_the_continuous_adjoint():
    with pytest.raises(ValueError, match="apply to the continuous adjoint"):
        _decay_solve("dopri5", options={"adjoint_rtol": 1e-3})
    with pytest.raises(ValueError, match="apply to the continuous adjoint"):
        _decay_solve("rk4", adjoint=True, options={"adjoint_rtol": 1e-3})


def test_adjoint_options_are_honoured():
    """A looser adjoint_rtol takes fewer backward evaluations."""
    counts = []
    for options in ({}, {"adjoint_rtol": 1e-2, "adjoint_atol": 1e-2}):
        field, y0, times = _setup("cubic")
        stats = SolverStats()
        traj = integrate(
            field, y0, times, method="dopri5", step_size=None, rtol=1e-8, atol=1e-8,
            discontinuous=False, adjoint=True, options=options, stats=stats,
        )  # fmt: skip
        traj.sum().backward()
        counts.append(stats.backward_nfe)
    assert 0 < counts[1] < counts[0]


def test_solver_options_are_honoured():
    stats = SolverStats()
    _decay_solve(options={"max_step": 0.05}, stats=stats)
    # No step longer than max_step: at least 20 per unit interval.
    assert min(stats.steps_per_interval) >= 20
    free = SolverStats()
    _decay_solve(stats=free)
    assert free.accepted_steps < stats.accepted_steps
    first = _decay_solve(options={"first_step": 1e-3, "safety": 0.5, "ifactor": 2.0})
    plain = _decay_solve()
    torch.testing.assert_close(first, plain, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "name,value,error",
    [("first_step", -0.1, ValueError), ("max_step", 0.0, ValueError), ("safety", "x", TypeError)],
)
def test_bad_option_values_are_refused_before_solving(name, value, error):
    """One rule (rnnode._validate): a wrong type is a TypeError, a wrong value a ValueError."""
    with pytest.raises(error, match=f"options\\['{name}'\\]: expected a positive finite"):
        _decay_solve(options={name: value})


@pytest.mark.parametrize("engine,error", [("scipy", ValueError), (1, TypeError)])
def test_an_unknown_engine_is_refused(engine, error):
    with pytest.raises(error, match="engine: expected one of \\('rnnode', 'torchdiffeq'\\)"):
        _decay_solve(engine=engine)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_the_engines_agree_with_the_adjoint_and_state_gradients(method):
    """Backward through either engine: the same gradients (continuous adjoint: torchdiffeq's
    odeint_adjoint in both; fixed steps: the discrete adjoint, recomputed per interval)."""
    grads = []
    for engine in ("rnnode", "torchdiffeq"):
        field, y0, times = _setup("cubic")
        y0.requires_grad_(True)
        step = 0.25 if method == "rk4" else None
        traj = integrate(field, y0, times, method=method, step_size=step, adjoint=True,
                            discontinuous=False, engine=engine)  # fmt: skip
        traj.square().sum().backward()
        grads.append((field.weight.grad, y0.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
