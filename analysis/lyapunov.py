"""Lyapunov exponents of the joint flow of a continuously coupled stack, by the QR method.

Benettin et al. (1980), Meccanica 15, 9-20: tangent vectors follow the variational equation
dV/dt = J(h) V along a trajectory and are re-orthonormalised at intervals; the logarithms of the
diagonal of R average to the exponents.
"""

from __future__ import annotations

import torch

from rnnode import FIXED_METHODS, ODERNN, DivergenceError, integrate
from rnnode._validate import (
    check_choice,
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
)

from .jacobians import _broadcast, _check_model, _tangents

__all__ = ["lyapunov_exponents"]


def _steps(name: str, span: float, step_size: float | None) -> int:
    """Number of equal steps of rnnode's grid over ``span``: span / step_size, an integer."""
    if step_size is None:
        return 1
    ratio = span / step_size
    count = round(ratio)
    if count < 1 or abs(ratio - count) > 1e-9 * max(1.0, ratio):
        raise ValueError(
            f"{name}: expected a multiple of step_size = {step_size!r}, got {span!r} "
            f"({ratio:.6g} steps)"
        )
    return count


def _on_grid(func, y0: torch.Tensor, grid: torch.Tensor, method: str) -> torch.Tensor:
    """The state at ``grid[-1]``: one fixed step of ``method`` per grid interval."""
    trajectory = integrate(
        func, y0, grid, method=method, step_size=None, rtol=1e-6, atol=1e-8, discontinuous=False
    )
    return trajectory[-1]


def lyapunov_exponents(
    model: ODERNN,
    h0: torch.Tensor,
    x: torch.Tensor,
    *,
    duration: float = 100.0,
    interval: float = 1.0,
    transient: float = 0.0,
    num_exponents: int | None = None,
    method: str = "rk4",
    step_size: float | None = 0.1,
) -> torch.Tensor:
    """Lyapunov exponents of the joint flow dh/dt = F(h, x) by the QR method.

    Along a trajectory, the tangent vectors V (n, k) follow the variational equation
    dV/dt = J(h) V. Every ``interval`` they are re-orthonormalised, V = Q R, and
    lambda_i = (1 / duration) sum log |R_ii|. Each interval is stepped on rnnode's fixed grid
    (``interval / step_size`` equal steps of torchdiffeq's ``method``, as ``model.solve``
    steps a sample interval); for a Runge-Kutta method this is the exact linearization of its
    step map (the method commutes with linearization), so ``method="euler", step_size=1``
    gives the exponents of the discrete RNN.

    Arguments:
        model: a unidirectional ``ODERNN``.
        h0: (..., num_layers, state_size) initial states (a batch of trajectories), finite.
        x: (..., input_size) the constant input, broadcast against h0, finite.
        duration: time over which the exponents are averaged (after the transient); a
            multiple of ``interval``.
        interval: time between re-orthonormalisations; a multiple of ``step_size``.
        transient: time integrated first, to reach the attractor, and not averaged; a multiple
            of ``step_size``.
        num_exponents: k, the number of leading exponents (default all n = L * state_size).
        method: a fixed-step torchdiffeq method.
        step_size: its step (None: one step per interval).

    Returns:
        (..., k) detached tensor of exponents per unit time, in decreasing order of the QR
        method.

    Raises:
        rnnode.DivergenceError: the trajectory or its tangents became non-finite (the flow
            explodes at this input, or the step is outside the method's stability region).
    """
    _check_model(model)
    flat_h, flat_x, lead = _broadcast(model, h0, x, name="h0")
    check_finite("h0", flat_h)
    check_finite("x", flat_x)
    B = flat_h.shape[0]
    n = flat_h.shape[1] * flat_h.shape[2]
    k = n if num_exponents is None else check_int("num_exponents", num_exponents, minimum=1)
    if k > n:
        raise ValueError(
            f"num_exponents: expected an integer in [1, {n}] (n = num_layers * state_size), got {k}"
        )
    duration = check_positive("duration", duration)
    interval = check_positive("interval", interval)
    transient = check_nonnegative("transient", transient)
    step_size = check_positive("step_size", step_size, allow_none=True)
    check_choice("method", method, FIXED_METHODS)
    per_interval = _steps("interval", interval, step_size)
    count = _steps("duration", duration, interval)
    shape = flat_h.shape
    dtype = flat_h.dtype

    def grid(span: float, steps: int) -> torch.Tensor:
        return torch.linspace(0.0, span, steps + 1, dtype=dtype)

    def field(t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return model.joint_field(h.reshape(shape), flat_x).reshape(B, n)

    def tangent_flow(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, V = y[:, :n].reshape(shape), y[:, n:].reshape(B, n, k)
        rate, JV = _tangents(model, h, flat_x, V)
        return torch.cat([rate, JV.reshape(B, -1)], dim=-1)

    def check(y: torch.Tensor, where: str) -> None:
        if not bool(torch.isfinite(y).all()):
            raise DivergenceError(
                f"the trajectory or its tangent vectors became non-finite {where}: the flow "
                "explodes at this input (or the step is outside the method's stability region); "
                "Lyapunov exponents need a bounded trajectory"
            )

    span = grid(float(interval), per_interval)
    h = flat_h.reshape(B, n)
    with torch.no_grad():
        if transient > 0:
            # One step per grid interval: rnnode's own fixed-step solve on the grid.
            span0 = grid(float(transient), _steps("transient", transient, step_size))
            h = _on_grid(field, h, span0, method)
            check(h, f"during the transient (t <= {transient:g})")
        V = torch.eye(n, k, dtype=dtype).expand(B, n, k)
        total = torch.zeros(B, k, dtype=dtype)
        for i in range(count):
            y = torch.cat([h, V.reshape(B, -1)], dim=-1)
            y = _on_grid(tangent_flow, y, span, method)
            check(y, f"by t = {transient + (i + 1) * interval:g}")
            h = y[:, :n]
            V, R = torch.linalg.qr(y[:, n:].reshape(B, n, k))
            total += R.diagonal(dim1=-2, dim2=-1).abs().log()
        check(total, "(a tangent direction collapsed to zero: log 0)")
    return (total / (count * interval)).reshape(*lead, k)
