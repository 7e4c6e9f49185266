"""rnnode's adaptive solve: an embedded Runge-Kutta pair stepped onto every sample time.

The step is ``rnnode._rk.rk_step`` on the pair's tableau (``rnnode._tableaus``); whether to
accept it and the next step's size are the controller's (``rnnode._controller``). The solve
steps exactly onto every sample time (a step that would pass the next one is shortened to end on
it), so a sample's state is a step's end and no dense output is fitted; at a jump of the field
(a held input) the step ending there re-evaluates the field just after it. A first-same-as-last
pair reuses its last stage as the next step's first; fehlberg2 and adaptive_heun reuse their
last stage too, although it is evaluated at a lower-order state than y1 (torchdiffeq's
convention, kept so that the steps are torchdiffeq's: tests/test_solve_contract.py).

Control runs on the host (times and step sizes are Python floats); an attempt reads one number
from the device, its error ratio (tests/test_solve_syncs.py counts them).
"""

from __future__ import annotations

import math

import torch

from ._controller import StepSizeController
from ._diagnostics import DivergenceError, StepBudgetError, out_of_budget
from ._rk import Perturb, combine, rk_step
from ._tableaus import TABLEAUS

__all__ = ["AdaptiveRungeKutta", "run_adaptive"]


class AdaptiveRungeKutta:
    """One embedded Runge-Kutta pair stepped towards sample times, with error control.

    ``start(t0)`` evaluates the field at the start and picks the first step; each
    ``step(target, target_value, jump)`` attempts one step from ``t`` (accepted or rejected),
    shortened to end exactly on ``target`` where it would reach past it; ``jump``: the field
    jumps at ``target``, so a step ending there re-evaluates the field just after it. ``t`` and
    ``y`` are the time (a tensor) and state reached, ``t_value`` the same time as a float,
    ``dt`` the size of the next attempt (a float), ``accepted`` / ``rejected`` the counts of
    steps so far, ``error_ratio`` the last attempt's (non-finite: the state or the field became
    non-finite).

    Arguments:
        method: an embedded pair of ``rnnode._tableaus.TABLEAUS``.
        func: the field, called as ``func(t, y, perturb=Perturb...)`` (t a 0-dimensional tensor).
        y0: the initial state, any shape.
        rtol, atol, first_step, max_step, safety, ifactor, dfactor: the controller's
            (``rnnode._controller.StepSizeController``).
    """

    def __init__(self, method: str, func, y0: torch.Tensor, rtol: float, atol: float, **options):
        self.tableau = TABLEAUS[method]
        self.controller = StepSizeController(self.tableau.order, rtol, atol, **options)
        self.func = func
        self.y = y0
        self.time_dtype = torch.promote_types(torch.float64, y0.abs().dtype)
        self.accepted = 0
        self.rejected = 0
        self.error_ratio = 0.0

    @property
    def rtol(self) -> float:
        return self.controller.rtol

    def start(self, t0: torch.Tensor) -> None:
        self.t = t0.to(self.time_dtype)
        self.t_value = float(self.t.detach())
        self.f = self.func(self.t, self.y)
        self.dt = self.controller.initial_step(self.func, self.t, self.y, self.f)

    def step(self, target: torch.Tensor, target_value: float, jump: bool = False) -> None:
        y0, f0, t0, t0_value = self.y, self.f, self.t, self.t_value
        dt = self.dt if math.isfinite(self.dt) else 0.0
        dt = min(max(dt, 0.0), self.controller.max_step)
        landing = t0_value + dt >= target_value
        if landing:
            t1, t1_value = target, target_value
            span = target - t0  # a tensor: the gradient with respect to the times
            dt = target_value - t0_value
        else:
            t1, t1_value, span = t0 + dt, t0_value + dt, None
        h: float | torch.Tensor = dt
        if span is not None and span.requires_grad and torch.is_grad_enabled():
            h = span.to(y0.dtype)
        y1, ks = rk_step(self.tableau, self.func, t0, h, t1, y0, f0)
        with torch.no_grad():
            error = combine(None, h, self.tableau.e, ks)
            ratio = self.controller.error_ratio(error, y0, y1).item()  # the one host read
        self.error_ratio = ratio
        # (torchdiffeq also rejects a step longer than max_step; here every attempt is clamped
        # to it, and only the rounding of target - t0 could exceed it: a step to land on a
        # sample time is never rejected for that.)
        if ratio <= 1.0:
            self.accepted += 1
            self.t, self.t_value, self.y = t1, t1_value, y1
            self.f = self.func(t1, y1, perturb=Perturb.NEXT) if landing and jump else ks[-1]
        else:
            self.rejected += 1
        self.dt = self.controller.next_step(dt, ratio)


def run_adaptive(stepper, y0, times, budget, user_set, method, jumps, enter=None, field=None):
    """Advance an adaptive stepper onto each sample time in turn, within ``budget`` steps.

    ``jumps``: the field jumps at the inner sample times (a held input), so a step ending on
    one re-evaluates just after it. ``enter(k, exact=False)``, where given, is told that the next
    evaluations lie in [t_k, t_{k+2}) (the steps towards t_{k+1}, which end exactly on it, and
    the re-evaluation just after it at a jump). ``field``: the plain field, read to say why a
    budget ran out.

    Returns the states at ``times`` and the accepted steps per interval.
    """
    stepper.start(times[0])
    targets = times.to(stepper.time_dtype)[1:].unbind(0)
    values = times.detach()[1:].to(torch.float64).tolist()  # one host copy per solve
    states, per_interval, steps = [y0], [], 0
    last = len(targets) - 1
    for k, (target, value) in enumerate(zip(targets, values, strict=True)):
        if enter is not None:
            enter(k, exact=False)
        before = stepper.accepted
        while value > stepper.t_value:
            t_now, dt = stepper.t_value, stepper.dt
            if steps >= budget:
                raise out_of_budget(
                    method, budget, user_set, times, t_now, dt,
                    func=field, y=stepper.y, rtol=stepper.rtol,
                )  # fmt: skip
            if math.isfinite(dt) and not t_now + dt > t_now:
                raise StepBudgetError(
                    f"{method}: the step size underflowed ({dt:.3g} at t = {t_now:.6g}): the "
                    "system is stiff, or the field jumps where no sample time says so"
                )
            stepper.step(target, value, jump=jumps and k < last)
            steps += 1
            # A non-finite state or field makes the error estimate non-finite: every later
            # attempt would be rejected until the budget ran out.
            if not math.isfinite(stepper.error_ratio):
                raise DivergenceError(
                    f"the state became non-finite near t = {t_now:.6g}: the dynamics diverge"
                )
        per_interval.append(stepper.accepted - before)
        states.append(stepper.y)
    if enter is not None:
        enter(None)
    return torch.stack(states), per_interval
