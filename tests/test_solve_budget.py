"""The step budget of a whole solve, stiff systems, and errors that name their cause."""

import pytest
import torch

from rnnode import DivergenceError, SolverStats, StepBudgetError, integrate
from rnnode._methods import default_budget


class _Relax(torch.nn.Module):
    """dh/dt = (tanh(w h + b) - h) / tau: stable, stiff when tau is small."""

    def __init__(self, tau, w=0.5, b=0.1):
        super().__init__()
        self.tau, self.w, self.b = tau, w, b

    def forward(self, t, y):
        return (torch.tanh(self.w * y + self.b) - y) / self.tau


def _solve(field, T=20, dtype=torch.float64, batch=2, **kw):
    args = dict(method="dopri5", step_size=None, rtol=1e-6, atol=1e-8, discontinuous=True)
    args.update(kw)
    y0 = torch.full((batch, 3), 0.5, dtype=dtype)
    return integrate(field, y0, torch.arange(T + 1.0, dtype=dtype), **args)


def test_a_stiff_solve_ends_at_the_default_budget_of_the_whole_solve_and_says_stiff():
    """tau = 1e-4, T = 20 ran for minutes: the budget was 10,000 steps per sample interval."""
    stats = SolverStats()
    with pytest.raises(StepBudgetError, match="the system is stiff") as err:
        _solve(_Relax(1e-4), stats=stats)
    assert "default step budget of 2000 steps" in str(err.value)
    assert "diverge" not in str(err.value)
    assert default_budget(20) == 2000
    # Its steps and evaluations stopped at the budget (dopri5: 6 evaluations a step).
    assert stats.nfe <= 6 * 2000 + 10


def test_the_budget_is_for_the_whole_solve_not_per_interval():
    free = SolverStats()
    _solve(_Relax(0.05), T=5, stats=free)
    assert max(free.steps_per_interval) < 30 < free.accepted_steps + free.rejected_steps
    with pytest.raises(StepBudgetError, match="max_num_steps=30 set in options") as err:
        _solve(_Relax(0.05), T=5, options={"max_num_steps": 30})
    # Steps were of ordinary size: no claim of stiffness, and none of divergence.
    assert "stiff" not in str(err.value) and "diverge" not in str(err.value)


def test_a_fixed_grid_over_the_budget_is_refused_before_solving():
    """Euler with step_size=1e-6 on T = 3 took 104 s and 5.5 GB."""
    stats = SolverStats()
    with pytest.raises(ValueError, match="step_size: 1e-06 makes 3000000 euler steps") as err:
        _solve(_Relax(1.0), T=3, method="euler", step_size=1e-6, stats=stats)
    assert "max_num_steps" in str(err.value)
    assert stats.nfe == 0
    with pytest.raises(ValueError, match="more than the step budget max_num_steps=100"):
        _solve(_Relax(1.0), T=3, method="rk4", step_size=0.01, options={"max_num_steps": 100})
    stats = SolverStats()
    _solve(
        _Relax(1.0), T=3, method="rk4", step_size=0.01, options={"max_num_steps": 300},
        stats=stats,
    )  # fmt: skip
    assert stats.nfe == 4 * 300


def test_a_stiff_system_stepped_coarsely_says_stiff_not_diverge():
    with pytest.raises(DivergenceError, match="the system is stiff and stable") as err:
        _solve(_Relax(1e-4), method="euler", dtype=torch.float32)
    # The field's rate at the start is (0.5 tanh'(0.35) - 1) / 1e-4 = -5.6e3: Euler is stable
    # below a step of 2 / 5.6e3 = 3.6e-4.
    assert "Use a step_size below 0.000359" in str(err.value)


def test_diverging_dynamics_still_say_diverge():
    class Growth(torch.nn.Module):
        def forward(self, t, y):
            return 1e3 * y

    with pytest.raises(DivergenceError, match="the dynamics diverge"):
        _solve(Growth(), method="euler", dtype=torch.float32)


@pytest.mark.filterwarnings("ignore:The following arguments have no effect")  # scipy's
def test_scipy_solver_is_refused_where_gradients_are_needed_and_allowed_without():
    """scipy_solver returned outputs without gradient: training with it trained nothing."""
    field = _Relax(1.0)
    field.w = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
    field.register_parameter("weight", field.w)
    with pytest.raises(ValueError, match="'scipy_solver' returns solutions without gradients"):
        _solve(field, T=2, method="scipy_solver")
    with torch.no_grad():
        got = _solve(field, T=2, method="scipy_solver", options={"solver": "DOP853"})
    with torch.no_grad():
        ref = _solve(field, T=2, method="dopri8", rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)


def test_an_empty_batch_with_an_adaptive_method_is_a_clear_value_error():
    with pytest.raises(ValueError, match="y0: an adaptive method needs a non-empty state"):
        _solve(_Relax(1.0), batch=0)
    traj = _solve(_Relax(1.0), batch=0, method="euler")  # nothing to step: fine
    assert traj.shape == (21, 0, 3)


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-9), (torch.float16, 1e-4)])
def test_tolerances_below_the_dtype_resolution_are_refused(dtype, rtol):
    eps = torch.finfo(dtype).eps
    with pytest.raises(ValueError, match=f"rtol: expected at least the machine epsilon of {dtype}"):
        _solve(_Relax(1.0), dtype=dtype, rtol=rtol)
    assert rtol < eps


def test_a_negative_first_step_is_refused_before_solving():
    with pytest.raises(ValueError, match=r"options\['first_step'\]: expected a positive finite"):
        _solve(_Relax(1.0), options={"first_step": -0.1})


def test_the_budget_message_says_how_far_the_solve_got():
    with pytest.raises(StepBudgetError, match=r"at t = [0-9.e-]+ of \[0, 20\]"):
        _solve(_Relax(1e-3), options={"max_num_steps": 30})
