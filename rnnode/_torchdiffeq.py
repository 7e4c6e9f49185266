"""``engine="torchdiffeq"``: the same solve through torchdiffeq's public API, the oracle of rnnode's
own steps.

Fixed-step methods: ``torchdiffeq.odeint`` on each sample interval with the interval's piece of
rnnode's grid (its ``grid_constructor`` option) and ``perturb`` where the field jumps at the
knots. Embedded pairs: one ``torchdiffeq.odeint`` over all sample times, told to step onto each
(``step_t``) and, for a held input, to re-evaluate after each jump (``jump_t``); the statistics
come from its step callbacks. ``scipy_solver``: ``torchdiffeq.odeint(method="scipy_solver")``.
The continuous adjoint is ``torchdiffeq.odeint_adjoint`` in both engines (``rnnode._adjoint``).

One difference remains, torchdiffeq's: a step that ends exactly on a jump time (t0 + dt equal
to it, not beyond) is not taken as landing on the jump, so the field is not re-evaluated on the
jump's far side and the later jumps are passed over; rnnode's own loop lands there. Seen with
dopri8 on per-sample times (integer knots, steps of exactly 1): the engines then differ
(tests/test_solve_engine.py: a held input where rnnode is exact in 3 steps and torchdiffeq off
by 3e-5 after 83).

Only public names are used (``torchdiffeq>=0.2.4``, no upper bound); tests/test_solve_contract.py
checks that both engines take the same steps and agree to 1e-10.
"""

from __future__ import annotations

import bisect
import warnings

import torch
import torchdiffeq
from torch.utils.checkpoint import checkpoint

from ._diagnostics import DivergenceError, StepBudgetError

__all__ = ["VERSION", "odeint_adaptive", "odeint_fixed", "odeint_scipy"]

VERSION: str = torchdiffeq.__version__


def _odeint(func, y0, times, **kw):
    """``torchdiffeq.odeint``, its ``assert``s (gone under ``python -O``) said as rnnode's."""
    try:
        with warnings.catch_warnings():
            # The fixed-grid and scipy solvers call no step callbacks: rnnode counts those.
            warnings.filterwarnings("ignore", message="Solver .* does not support callbacks")
            return torchdiffeq.odeint(func, y0, times, **kw)
    except AssertionError as err:  # torchdiffeq's checks of its own steps
        if "underflow" in str(err):
            raise StepBudgetError(f"{kw['method']}: the step size underflowed ({err})") from err
        if "non-finite" in str(err):
            raise DivergenceError("the state became non-finite: the dynamics diverge") from err
        raise


def _interval(func, method, perturb, enter, k, grid, y):
    if enter is not None:
        enter(k)
    try:
        options = {"grid_constructor": lambda f, y0, t: grid, "perturb": perturb}
        return _odeint(func, y, grid[[0, -1]], method=method, options=options)[-1]
    finally:
        if enter is not None:
            enter(None)


def odeint_fixed(func, y0, grid, counts, method, perturb, probes=None, recompute=False,
                 enter=None) -> torch.Tensor:  # fmt: skip
    """``rnnode._fixed.run_fixed``'s solve, interval by interval through ``torchdiffeq.odeint``.

    ``func(t, y)``: the field; ``grid``: rnnode's grid, ``counts[k]`` steps in interval k;
    ``probes``, ``recompute``, ``enter``: as ``run_fixed``.
    """
    y = y0 if probes is None else y0 + probes[0]
    states, first = [y], 0
    for k, count in enumerate(counts):
        piece = grid[first : first + count + 1]
        if recompute:
            y = checkpoint(_interval, func, method, perturb, enter, k, piece, y,
                           use_reentrant=False)  # fmt: skip
        else:
            y = _interval(func, method, perturb, enter, k, piece, y)
        first += count
        if probes is not None:
            y = y + probes[k + 1]
        states.append(y)
    return torch.stack(states)


def odeint_adaptive(func, y0, times, method, rtol, atol, options, jumps, tally):
    """One ``torchdiffeq.odeint`` onto every sample time; ``jumps``: the field jumps at the inner
    sample times. ``func`` counts the steps into ``tally`` through torchdiffeq's callbacks
    (``rnnode._counting._Counted``), which also holds the step budget.

    Returns the states at ``times`` and the accepted steps per interval.
    """
    knots = {"jump_t": times[1:-1], "step_t": times[-1:]} if jumps else {"step_t": times[1:]}
    tally.step_starts = []
    trajectory = _odeint(
        func, y0, times, rtol=rtol, atol=atol, method=method, options={**options, **knots}
    )
    # Each accepted step starts in the interval [t_{k-1}, t_k) it belongs to.
    bounds = times.detach().to(torch.float64).tolist()
    per_interval = [0] * (len(bounds) - 1)
    for start in tally.step_starts:
        per_interval[bisect.bisect_right(bounds, start) - 1] += 1
    return trajectory, per_interval


def odeint_scipy(func, y0, times, rtol, atol, solver="LSODA") -> torch.Tensor:
    """``torchdiffeq.odeint(method="scipy_solver")`` (no gradients)."""
    return _odeint(
        func, y0, times, rtol=rtol, atol=atol, method="scipy_solver", options={"solver": solver}
    )
