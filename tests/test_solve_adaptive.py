"""rnnode's adaptive steps (rnnode/_adaptive.py) against closed forms: values, gradients with
respect to the times, and a field that turns non-finite.

(tests/test_solve_contract.py checks that they take torchdiffeq's steps.)"""

import math

import pytest
import torch

from rnnode import DivergenceError, SolverStats, integrate


class _Forced(torch.nn.Module):
    """dy/dt = -y + sin(t): y(t) = (y0 - y_p(t0)) e^{-(t - t0)} + y_p(t), y_p = (sin - cos) / 2."""

    def forward(self, t, y):
        return -y + torch.sin(t)


def _exact(times: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
    def particular(t):
        return (torch.sin(t) - torch.cos(t)) / 2

    t0 = times[0]
    decay = torch.exp(-(times - t0)).reshape(-1, 1, 1)
    return (y0 - particular(t0)) * decay + particular(times).reshape(-1, 1, 1)


def _solve(func, y0, times, method, rtol, atol, **kwargs):
    return integrate(
        func,
        y0,
        times,
        method=method,
        step_size=None,
        rtol=rtol,
        atol=atol,
        discontinuous=False,
        **kwargs,
    )


def _times():
    return torch.tensor([0.0, 0.4, 1.3, 1.7, 3.0], dtype=torch.float64)


@pytest.mark.parametrize("method", ["dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun"])
def test_adaptive_pairs_meet_the_closed_form(method):
    times, y0 = _times(), torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    rtol = {"dopri5": 1e-10, "dopri8": 1e-12, "bosh3": 1e-8, "fehlberg2": 1e-6}.get(method, 1e-5)
    atol = rtol * 1e-2
    stats = SolverStats()
    got = _solve(
        _Forced(), y0, times, method, rtol, atol, stats=stats, options={"max_num_steps": 20_000}
    )
    exact = _exact(times, y0)
    # Every accepted step's local error is within atol + rtol |y|, and this field contracts
    # (an error is damped by e^{-dt} per step): the global error is at most their sum.
    bound = stats.accepted_steps * (atol + rtol * float(exact.abs().max()))
    assert float((got - exact).abs().max()) <= bound
    # ... and is not trivially met: the solve takes steps, each near its tolerance.
    assert stats.accepted_steps >= len(times) - 1


def test_gradients_with_respect_to_the_times_are_the_closed_form():
    """dL/dt_j = w_j f(t_j, y(t_j)) for j >= 1 (the inner times only say where steps end), and
    dL/dt_0 = -sum_k w_k e^{-(t_k - t_0)} f(t_0, y0) (the start moves the whole solution)."""
    times = _times().requires_grad_(True)
    y0 = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    weights = torch.randn(5, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = _solve(_Forced(), y0, times, "dopri5", 1e-11, 1e-13)
    (grad,) = torch.autograd.grad((got * weights).sum(), times)
    t, exact = times.detach(), _exact(times.detach(), y0)
    rate = -exact + torch.sin(t).reshape(-1, 1, 1)
    want = (weights * rate).sum(dim=(1, 2))
    # y(t_0) = y0 whatever t_0: only the later samples move with the start.
    decay = torch.exp(-(t - t[0])).reshape(-1, 1, 1)
    want[0] = -(weights * decay * rate[0])[1:].sum()
    torch.testing.assert_close(grad, want, rtol=0, atol=1e-8)


def test_a_field_turning_non_finite_raises_at_once():
    """The error estimate turns non-finite with the field: the solve stops at that step, not
    after a budget's worth of rejected steps."""

    class Breaks(torch.nn.Module):
        def forward(self, t, y):
            return torch.where(t > 1.5, torch.nan, -y)

    stats = SolverStats()
    with pytest.raises(DivergenceError, match=r"non-finite near t = 1\.\d"):
        _solve(
            Breaks(),
            torch.ones(1, 2, dtype=torch.float64),
            _times(),
            "dopri5",
            1e-6,
            1e-8,
            stats=stats,
        )
    assert stats.nfe < 100


def test_max_step_bounds_every_step():
    times, y0 = _times(), torch.ones(1, 1, dtype=torch.float64)
    stats = SolverStats()
    _solve(_Forced(), y0, times, "dopri5", 1e-3, 1e-5, options={"max_step": 0.1}, stats=stats)
    widths = (times[1:] - times[:-1]).tolist()
    # Every interval needs at least ceil(width / 0.1) steps.
    assert all(
        n >= math.ceil(w / 0.1 - 1e-9)
        for n, w in zip(stats.steps_per_interval, widths, strict=True)
    )
