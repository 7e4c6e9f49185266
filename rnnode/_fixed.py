"""rnnode's fixed-step solve: a grid through every sample time, one Runge-Kutta step at a time.

Interval [t_{k-1}, t_k] is split into ``ceil((t_k - t_{k-1}) / step_size)`` equal steps (one
step per interval when ``step_size`` is None). Solutions at the sample times are then grid
values, never interpolated, and a held input is seen exactly as the discrete RNN sees it. The
step is ``rnnode._rk.rk_step`` on the method's tableau (``rnnode._tableaus``), with the step
size a number, or a 0-dimensional tensor where the grid needs a gradient: one implementation.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from ._rk import Perturb, rk_step
from ._tableaus import TABLEAUS

__all__ = ["FixedStepper", "run_fixed", "step_counts", "step_grid"]


def step_grid(times: torch.Tensor, step_size: float | None) -> tuple[torch.Tensor, list[int]]:
    """The fixed-step grid through every sample time, and the number of steps per interval.

    Interval [t_{k-1}, t_k] is split into ceil((t_k - t_{k-1}) / step_size) equal steps (one when
    ``step_size`` is None); the grid holds every t_k exactly.
    """
    if step_size is None:
        return times, [1] * (times.shape[0] - 1)
    counts = step_counts(times, step_size)
    widths = times[1:] - times[:-1]
    n = torch.tensor(counts, device=times.device)
    starts = times[:-1].repeat_interleave(n)
    offsets = torch.cat(
        [torch.arange(c, dtype=times.dtype, device=times.device) / c for c in counts]
    )
    grid = starts + offsets * widths.repeat_interleave(n)
    return torch.cat([grid, times[-1:]]), counts


def step_counts(times: torch.Tensor, step_size: float | None) -> list[int]:
    if step_size is None:
        return [1] * (times.shape[0] - 1)
    widths = (times[1:] - times[:-1]).detach()
    # The tiny relative slack keeps 1.1 / 0.1 = 11.000000000000002 at 11 steps, not 12.
    return [max(1, math.ceil(abs(w) / step_size * (1 - 1e-12))) for w in widths.tolist()]


class FixedStepper:
    """One step of a fixed-step method: ``y1 = stepper(t0, h, t1, y)``.

    ``func(t, y, perturb=...)`` is the field; with ``perturb`` the first stage is evaluated just
    after t0 and a stage on t1 just before it (a field that jumps at the knots), as torchdiffeq
    does. h is a number, or a 0-dimensional tensor where the times need a gradient.
    """

    def __init__(self, method: str, func, perturb: bool):
        self.tableau = TABLEAUS[method]
        self.func = func
        self.perturb = perturb
        self.first = Perturb.NEXT if perturb else Perturb.NONE

    def __call__(self, t0: torch.Tensor, h, t1: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f0 = self.func(t0, y, perturb=self.first)
        return rk_step(self.tableau, self.func, t0, h, t1, y, f0, perturb=self.perturb)[0]


def _steps(step, enter, k, starts, widths, ends, y):
    # Every stage of these steps lies in sample interval k: the field may read it from there
    # (``enter``) instead of looking it up; said again when the discrete adjoint recomputes.
    if enter is not None:
        enter(k)
    try:
        for start, width, end in zip(starts, widths, ends, strict=True):
            y = step(start, width, end, y)
    finally:
        if enter is not None:
            enter(None)
    return y


def run_fixed(step, y0, grid, counts, probes=None, recompute=False, enter=None):
    """Step along ``grid``, keeping the state at each interval end.

    ``probes`` (T + 1, *state), zeros that require grad, are added to the state at each sample
    time, so that the gradient of a loss with respect to ``probes[k]`` is dLoss/dy(t_k).
    ``recompute``: keep no intermediate values of an interval's steps; the backward pass
    recomputes them interval by interval (the discrete adjoint). ``enter(k)``, where given, is
    told the sample interval k that the next steps lie in (``enter(None)``: none).
    """
    y = y0 if probes is None else y0 + probes[0]
    states = [y]
    starts, ends = grid[:-1].unbind(0), grid[1:].unbind(0)
    widths = grid[1:] - grid[:-1]
    # Step sizes as numbers (one host copy of the grid per solve), as tensors where the grid
    # needs a gradient.
    needs_grad = grid.requires_grad and torch.is_grad_enabled()
    widths = widths.unbind(0) if needs_grad else widths.tolist()
    first = 0
    for k, count in enumerate(counts):
        # Only this interval's grid goes to the (checkpointed) steps: checkpoint flattens its
        # arguments at every call, and the whole grid's would make the solve quadratic in T.
        piece = slice(first, first + count)
        s, w, e = starts[piece], widths[piece], ends[piece]
        if recompute:
            y = checkpoint(_steps, step, enter, k, s, w, e, y, use_reentrant=False)
        else:
            y = _steps(step, enter, k, s, w, e, y)
        first += count
        if probes is not None:
            y = y + probes[k + 1]
        states.append(y)
    return torch.stack(states)
