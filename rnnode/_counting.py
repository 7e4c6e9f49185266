"""What a solve counts: its statistics (``SolverStats``), and the wrapper that counts the field's
evaluations and the steps of loops that are not rnnode's (torchdiffeq's, through its step
callbacks), holding their step budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import torch
from torch import nn

from ._diagnostics import DivergenceError
from ._rk import Perturb

__all__ = ["SolverStats"]


@dataclass
class SolverStats:
    """Counts of one or more solves, filled in place by ``integrate(..., stats=...)``.

    Every field is summed over the solves that filled the object.

    Attributes:
        nfe: evaluations of the vector field in the forward solve (one evaluation of a joint
            field counts once, however many layers it holds).
        accepted_steps: steps taken (fixed-step methods: the grid's steps).
        rejected_steps: steps an adaptive method tried and rejected (0 for fixed-step methods).
        steps_per_interval: accepted steps in each sample interval, (T,) as a list (empty for
            ``scipy_solver``, whose steps scipy keeps to itself).
        backward_nfe: evaluations of the vector field during ``backward()``: the adjoint's
            backward ODE, or the discrete adjoint's recomputation (0 with plain backprop, which
            evaluates nothing again).
    """

    nfe: int = 0
    accepted_steps: int = 0
    rejected_steps: int = 0
    steps_per_interval: list[int] = dataclass_field(default_factory=list)
    backward_nfe: int = 0

    def _add_steps(self, per_interval: list[int], rejected: int = 0) -> None:
        self.accepted_steps += sum(per_interval)
        self.rejected_steps += rejected
        if not self.steps_per_interval:
            self.steps_per_interval = list(per_interval)
        elif len(self.steps_per_interval) == len(per_interval):
            self.steps_per_interval = [
                a + b for a, b in zip(self.steps_per_interval, per_interval, strict=True)
            ]
        else:
            raise ValueError(
                f"stats: filled by solves over {len(self.steps_per_interval)} intervals, now one "
                f"over {len(per_interval)}; use one SolverStats per set of sample times"
            )


class _Tally:
    """Evaluations and steps counted across the pieces of one solve, and their bound.

    ``max_evals`` (forward evaluations) bounds the solves whose loops are torchdiffeq's or
    scipy's (the adjoint, ``scipy_solver``); ``phase`` turns to "backward" once the forward solve
    is done, and evaluations are then the backward pass's.
    """

    def __init__(self, stats=None, max_evals=None, on_budget=None):
        self.nfe = 0
        self.accepted = 0
        self.rejected = 0
        self.stats = stats
        self.max_evals = max_evals
        self.on_budget = on_budget
        self.phase = "forward"
        # Steps counted in torchdiffeq's loops (the continuous adjoint, through its callbacks)
        # and their budgets: torchdiffeq's own is an ``assert`` (gone under ``python -O``) and
        # counts per output time, so rnnode holds the budget of the whole solve itself.
        self.step_budget: int | None = None
        self.backward_steps = 0
        self.backward_budget: int | None = None
        # The error to raise when the backward budget is spent (set with it, ``_adjoint``).
        self.on_backward_budget: Callable[[torch.Tensor], Exception] | None = None
        self.last_dt: float | None = None
        # The starts of torchdiffeq's accepted steps, where the steps per interval are wanted.
        self.step_starts: list[float] | None = None


class _Counted(nn.Module):
    """Wraps a vector field: counts its evaluations in ``tally``, forward and backward."""

    def __init__(self, func: nn.Module, tally: _Tally, check_finite: bool = False):
        super().__init__()
        self.func = func
        self.tally = tally
        self.check_finite = check_finite

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        tally = self.tally
        if tally.phase == "backward":
            if tally.stats is not None:
                tally.stats.backward_nfe += 1
            if tally.backward_budget is not None and tally.backward_steps >= tally.backward_budget:
                assert tally.on_backward_budget is not None  # set with backward_budget
                raise tally.on_backward_budget(t)
            return self.func(t, y)
        tally.nfe += 1
        if tally.max_evals is not None and tally.nfe > tally.max_evals:
            raise tally.on_budget(t)
        if tally.step_budget is not None and tally.accepted + tally.rejected >= tally.step_budget:
            raise tally.on_budget(t, y, tally.last_dt)
        # An adaptive solver fed a non-finite state would shrink its step to underflow first.
        if self.check_finite and not bool(torch.isfinite(y.detach()).all()):
            near = float(torch.as_tensor(t).detach())
            raise DivergenceError(
                f"the state became non-finite near t = {near:.6g}: the dynamics diverge"
            )
        return self.func(t, y)

    # torchdiffeq calls these on the field it is given, where they exist: the step statistics of
    # its solves (engine="torchdiffeq", and the adjoint's forward solve).
    def callback_accept_step(self, t0, y0, dt):
        self.tally.accepted += 1
        self.tally.last_dt = float(dt.detach())
        if self.tally.step_starts is not None:
            self.tally.step_starts.append(float(t0.detach()))

    def callback_reject_step(self, t0, y0, dt):
        self.tally.rejected += 1
        self.tally.last_dt = float(dt.detach())

    # ... and these during the adjoint's backward solve.
    def callback_accept_step_adjoint(self, t0, y0, dt):
        self.tally.backward_steps += 1

    def callback_reject_step_adjoint(self, t0, y0, dt):
        self.tally.backward_steps += 1


class _Perturbed(nn.Module):
    """Evaluates at the float just after or before t where a step asks (torchdiffeq's Perturb)."""

    def __init__(self, func: nn.Module):
        super().__init__()
        self.func = func

    def forward(self, t: torch.Tensor, y: torch.Tensor, *, perturb=Perturb.NONE):
        if perturb is Perturb.NEXT:
            t = torch.nextafter(t, t + 1)
        elif perturb is Perturb.PREV:
            t = torch.nextafter(t, t - 1)
        return self.func(t, y)
