"""rnnode's adaptive Runge-Kutta step: torchdiffeq's embedded pairs, stepped by rnnode.

An embedded pair advances y' = f(t, y) from t0 by h with s stages

    k_1 = f(t0, y0),   k_i = f(t0 + c_i h, y0 + h sum_{j<i} a_ij k_j),
    y1 = y0 + h sum_i b_i k_i,   err = h sum_i e_i k_i,

and accepts the step when the error ratio r = rms(err / (atol + rtol max(|y0|, |y1|))) is at
most 1; the next step is h min(ifactor, max(safety r^(-1/order), dfactor)) (dfactor is 1 after
an accepted step). The tableaus (c, a, b, e), the first step's choice and the step-size rule are
torchdiffeq's (``rnnode._torchdiffeq``); so is the convention that a first-same-as-last pair
reuses its last stage as the next step's first. The arithmetic is rnnode's: each stage's input is
one chain of ``torch.add`` over the nonzero a_ij (torchdiffeq writes the stages into one tensor
and sums slices of it, and fits a dense-output polynomial after every step, several times the
autograd nodes and the memory traffic of the stages themselves), the error estimate needs no
gradient, and no dense output is fitted: the solve steps exactly onto every sample time
(``target``), so a sample's state is a step's end.
"""

from __future__ import annotations

import torch

from . import _torchdiffeq as _td


def _combine(y: torch.Tensor | None, h, weights, ks) -> torch.Tensor:
    """y + h sum_j w_j k_j over the nonzero w_j, one ``torch.add`` per term; h a number, or a
    0-dimensional tensor when the times need a gradient; y None: the sum alone."""
    terms = [(w, k) for w, k in zip(weights, ks, strict=False) if w != 0.0]
    w0, acc = terms[0]
    for w, k in terms[1:]:
        acc = torch.add(acc, k, alpha=w / w0)
    if y is None:
        return acc * (h * w0)
    if isinstance(h, torch.Tensor):
        return y + (h * w0) * acc
    return torch.add(y, acc, alpha=h * w0)


class AdaptiveRungeKutta:
    """One embedded Runge-Kutta pair stepped towards sample times, with error control.

    ``start(t0)`` evaluates the field at the start and picks the first step; each
    ``step(target, jump)`` attempts one step from ``t`` (accepted or rejected), shortened to end
    exactly on ``target`` where it would reach past it; ``jump``: the field jumps at ``target``,
    so a step ending there re-evaluates the field just after it. ``t`` and ``y`` are the time
    and state reached, ``dt`` the size of the next attempt, ``accepted`` / ``rejected`` the
    counts of steps so far, ``error_ratio`` the last attempt's (non-finite: the state or the field
    became non-finite).

    Arguments:
        method: a key of ``rnnode._torchdiffeq.ADAPTIVE_SOLVERS``.
        func: the field, called as ``func(t, y, perturb=Perturb...)`` (t a 0-dimensional tensor).
        y0: the initial state, any shape.
        rtol, atol: the tolerances.
        first_step, max_step, safety, ifactor, dfactor: torchdiffeq's options of the same names.
    """

    def __init__(
        self,
        method: str,
        func,
        y0: torch.Tensor,
        rtol: float,
        atol: float,
        *,
        first_step: float | None = None,
        max_step: float = float("inf"),
        safety: float = 0.9,
        ifactor: float = 10.0,
        dfactor: float = 0.2,
    ):
        self.order, self.c, self.a, self.b, self.e = _td.adaptive_tableau(method)
        # The last stage is y1 itself (first same as last): its evaluation is the next k_1.
        self.fsal = self.b == (*self.a[-1], 0.0)
        self.func = func
        self.y = y0
        self.rtol, self.atol = rtol, atol
        self.first_step, self.max_step = first_step, max_step
        self.safety, self.ifactor, self.dfactor = safety, ifactor, dfactor
        self.time_dtype = torch.promote_types(torch.float64, y0.abs().dtype)
        self.accepted = 0
        self.rejected = 0
        self.error_ratio = 0.0

    def start(self, t0: torch.Tensor) -> None:
        self.t = t0.to(self.time_dtype)
        self.f = self.func(self.t, self.y)
        if self.first_step is None:
            self.dt = _td.select_initial_step(
                self.func, self.t, self.y, self.order, self.rtol, self.atol, self.f
            ).to(self.time_dtype)
        else:
            self.dt = torch.as_tensor(self.first_step, dtype=self.time_dtype, device=self.y.device)

    def step(self, target: torch.Tensor, jump: bool = False) -> None:
        y0, f0, t0 = self.y, self.f, self.t
        dt = self.dt if torch.isfinite(self.dt) else torch.zeros_like(self.dt)
        dt = dt.clamp(0.0, self.max_step)
        landing = bool(t0 + dt >= target)
        if landing:
            t1, dt = target, target - t0
        else:
            t1 = t0 + dt
        needs_grad = dt.requires_grad and torch.is_grad_enabled()
        h = dt.to(y0.dtype) if needs_grad else float(dt)
        ks = [f0]
        for c, weights in zip(self.c, self.a, strict=True):
            z = _combine(y0, h, weights, ks)
            if c == 1.0:  # a stage on t1: the side of a jump the step belongs to
                ks.append(self.func(t1, z, perturb=_td.Perturb.PREV))
            else:
                ks.append(self.func(t0 + c * dt, z))
        y1 = z if self.fsal else _combine(y0, h, self.b, ks)
        with torch.no_grad():
            error = _combine(None, h, self.e, ks)
            tol = self.atol + self.rtol * torch.maximum(y0.abs(), y1.abs())
            ratio = float((error / tol).abs().pow(2).mean().sqrt())
        self.error_ratio = ratio
        # (torchdiffeq also rejects a step longer than max_step; here every attempt is clamped
        # to it, and only the rounding of target - t0 could exceed it: a step to land on a
        # sample time is never rejected for that.)
        accept = ratio <= 1.0
        if accept:
            self.accepted += 1
            self.t, self.y = t1, y1
            # torchdiffeq's convention: the last stage's evaluation is the next first stage.
            # For the first-same-as-last pairs that is f(t1, y1); for fehlberg2 and
            # adaptive_heun the last stage is evaluated at a lower-order state, not at y1 (kept
            # so that the steps are torchdiffeq's; see tests/test_solve_contract.py).
            self.f = self.func(t1, y1, perturb=_td.Perturb.NEXT) if landing and jump else ks[-1]
        else:
            self.rejected += 1
        proposal = _next_step(
            dt.detach(), ratio, self.safety, self.ifactor, self.dfactor, self.order
        )
        self.dt = proposal.clamp(0.0, self.max_step)


def _next_step(dt: torch.Tensor, ratio: float, safety, ifactor, dfactor, order) -> torch.Tensor:
    """torchdiffeq's step-size rule: dt min(ifactor, max(safety r^(-1/order), dfactor)), with
    dfactor 1 after an accepted step and dt ifactor when the error is zero."""
    if ratio == 0.0:
        return dt * ifactor
    if ratio < 1.0:
        dfactor = 1.0
    return dt * min(ifactor, max(safety / ratio ** (1.0 / order), dfactor))
