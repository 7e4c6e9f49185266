"""The solve: dy/dt = f(t, y) from y(t_0) onto every sample time t_1..t_T (``integrate``).

The pieces, one module each: the methods and the checks of a solve's arguments
(``rnnode._methods``); the tableaus (``rnnode._tableaus``) and the one Runge-Kutta step
(``rnnode._rk``); fixed steps on a grid through the sample times (``rnnode._fixed``); embedded
pairs stepped onto every sample time under a step-size controller (``rnnode._adaptive``,
``rnnode._controller``); the continuous adjoint (``rnnode._adjoint``); scipy
(``rnnode._scipy``); the same solve through torchdiffeq's public API (``rnnode._torchdiffeq``,
``engine="torchdiffeq"``); counting (``rnnode._counting``) and the errors (``rnnode._diagnostics``).

Gradients: plain backpropagation through the steps by default. ``adjoint=True`` with a
fixed-step method is the discrete adjoint: the exact gradient of the steps taken, each sample
interval recomputed during the backward pass (activation checkpointing), so memory holds only the
states at the sample times. With an adaptive method it is torchdiffeq's continuous adjoint,
solved one sample interval at a time: a backward ODE whose gradient approximates backprop's to
about the solver tolerance (measured errors: docs/guide/adjoints.md).
"""

from __future__ import annotations

import torch
from torch import nn

from ._adaptive import AdaptiveRungeKutta, run_adaptive
from ._adjoint import adjoint_by_interval
from ._counting import SolverStats, _Counted, _Perturbed, _Tally
from ._diagnostics import (
    BOX_SLACK,
    MAX_STEPS,
    DivergenceError,
    StepBudgetError,
    box_error,
    check_fixed_budget,
    check_fixed_stability,
    nonfinite_error,
    out_of_budget,
)
from ._fixed import FixedStepper, run_fixed, step_grid
from ._methods import (
    ADAPTIVE_METHODS,
    ENGINES,
    EVALS_PER_STEP,
    FIXED_METHODS,
    METHODS,
    SCIPY_SOLVERS,
    _check_arguments,
    _check_options,
    check_engine,
    check_method,
    default_budget,
)
from ._scipy import scipy_solve
from ._semi_implicit import DEFAULT_UNFOLDS, FUSED_METHODS, FusedStepper

__all__ = [
    "ADAPTIVE_METHODS",
    "ENGINES",
    "FIXED_METHODS",
    "MAX_STEPS",
    "METHODS",
    "SCIPY_SOLVERS",
    "DivergenceError",
    "SolverStats",
    "StepBudgetError",
    "check_method",
    "default_budget",
    "integrate",
    "step_grid",
]


def integrate(
    func: nn.Module,
    y0: torch.Tensor,
    times: torch.Tensor,
    *,
    method: str = "dopri5",
    step_size: float | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    discontinuous: bool | None = None,
    adjoint: bool = False,
    options: dict | None = None,
    engine: str = "rnnode",
    probes: torch.Tensor | None = None,
    stats: SolverStats | None = None,
) -> torch.Tensor:
    """Solve dy/dt = func(t, y), y(times[0]) = y0, and return y at every one of ``times``.

    Fixed-step methods (``FIXED_METHODS``) step on a grid that contains every sample time:
    interval [t_{k-1}, t_k] is split into ceil((t_k - t_{k-1}) / step_size) equal steps (one
    step per interval when ``step_size`` is None), so the states at the sample times are grid
    values, never interpolated. Embedded pairs (``ADAPTIVE_METHODS``) control the local error
    to rtol/atol and step exactly onto every sample time; where the field jumps there (a held
    input), the step after it starts from a fresh evaluation.

    Arguments:
        func: a module mapping (t, y) to dy/dt: t a 0-dimensional tensor, y and dy/dt of
            y0's shape. Optional capabilities it may offer: ``is_continuous`` (bool: False when
            it jumps at the inner sample times), ``at_interval(k, exact=True)`` (told the sample
            interval of the next evaluations), ``decay_rate()`` and ``box_excess(trajectory)``
            (checked by fixed-step solves: see Raises), and for the adaptive adjoint
            ``segment(j)`` (itself on interval j) and ``path_tensors()`` (the tensors besides
            its parameters that it reads).
        y0: (..., state) initial state, floating point (any shape; rnnode's stacks use
            (batch, state)).
        times: (T + 1,) strictly increasing times t_0..t_T, T >= 1; t_0 is the start.
        method: one of ``METHODS`` (default ``"dopri5"``).
        step_size: the largest step of a fixed-step method; None: one step per sample
            interval. Must be None for adaptive methods.
        rtol, atol: the tolerances of adaptive methods (positive).
        discontinuous: the field jumps at the inner sample times (a held input); default
            ``not func.is_continuous`` where func says, else False.
        adjoint: fixed-step methods: the discrete adjoint (the exact gradient of the steps,
            recomputed interval by interval in the backward pass so that only the states at
            ``times`` are stored). Adaptive methods: torchdiffeq's continuous adjoint, one
            sample interval at a time.
        options: ``max_num_steps`` (the step budget of the whole solve, default
            ``max(MAX_STEPS, 100 * T)``); adaptive methods: ``first_step``, ``max_step``,
            ``safety``, ``ifactor``, ``dfactor``, and with ``adjoint=True`` torchdiffeq's
            ``adjoint_rtol``, ``adjoint_atol``, ``adjoint_method``, ``adjoint_options``;
            ``scipy_solver``: ``solver`` (one of ``SCIPY_SOLVERS``). Anything else raises.
        engine: ``"rnnode"`` (rnnode's own loops) or ``"torchdiffeq"`` (the same solve through
            ``torchdiffeq.odeint``: the same steps, slower; the oracle of rnnode's).
        probes: zeros of shape (T + 1, *y0.shape) requiring grad, added to the state at each
            sample time so that gradients with respect to them are dLoss/dy(t_k) (fixed-step
            methods only).
        stats: a ``SolverStats`` to add this solve's counts to.

    Returns:
        The trajectory (T + 1, *y0.shape): y at ``times``. The counts (evaluations, steps)
        are added to ``stats``.

    Raises:
        TypeError, ValueError: a bad argument or option (wrong type, wrong value), a method
            rnnode does not support, a fixed grid with more steps than the budget, a fixed step
            beyond the method's stability limit for ``func.decay_rate()`` (1/tau), or
            ``scipy_solver`` where gradients are needed.
        StepBudgetError: an adaptive method used up the step budget (the message says whether
            stiffness or a tolerance too tight for the method's order is the cause) or its step
            underflowed.
        DivergenceError: the state became non-finite, or a fixed-step solve left the box the
            exact flow keeps (``func.box_excess``): the step is unstable.
    """
    check_method(method)
    check_engine(engine)
    opts, budget, adjoint_kw = _check_options(method, options, adjoint)
    _check_arguments(func, y0, times, method, step_size, rtol, atol)
    if discontinuous is None:
        discontinuous = not getattr(func, "is_continuous", True)
    num_intervals = times.shape[0] - 1
    user_set = budget is not None
    budget = budget if user_set else default_budget(num_intervals)
    fixed = method in FIXED_METHODS or method in FUSED_METHODS
    through_torchdiffeq = engine == "torchdiffeq"
    if probes is not None and not fixed:
        raise ValueError(
            f"method: state gradients need a fixed-step method {FIXED_METHODS}; "
            f"got method={method!r}"
        )

    def on_budget(t, y=None, dt=None):
        return out_of_budget(method, budget, user_set, times, t, dt, func=func, y=y, rtol=rtol)

    # Evaluations bound scipy's loop (its steps are its own); rnnode's loops count steps, and
    # torchdiffeq's (the adjoint's, engine="torchdiffeq") through its step callbacks.
    tally = _Tally(stats, budget * EVALS_PER_STEP if method == "scipy_solver" else None, on_budget)
    # scipy's and torchdiffeq's loops would shrink the step to underflow on a non-finite state:
    # check each evaluation there. rnnode's loops check once per step (fixed: at the end;
    # adaptive: the error ratio).
    counted = _Counted(func, tally, check_finite=method == "scipy_solver" or through_torchdiffeq)
    # A field that can be told the sample interval of its evaluations reads its input there,
    # without looking the interval up on the host.
    enter = getattr(func, "at_interval", None)
    per_interval: list[int] | None = None
    counts: list[int] | None = None
    if fixed:
        grid, counts = step_grid(times, step_size)
        check_fixed_budget(method, step_size, counts, budget, user_set, times)
        check_fixed_stability(func, method, times, counts, step_size)
        # Stages at a step's end must see the interval the step belongs to, not the next sample;
        # Euler has no such stage (it evaluates at the step's start only). A field told each
        # step's interval (``enter``) reads it from there, at any t.
        perturb = discontinuous and method != "euler" and enter is None
        recompute = adjoint and torch.is_grad_enabled()
        if method in FUSED_METHODS:  # rnnode's own in both engines (torchdiffeq has none)
            fused = FusedStepper(func, tally, opts.get("unfolds", DEFAULT_UNFOLDS))
            trajectory = run_fixed(fused, y0, grid, counts, probes, recompute, enter)
        elif through_torchdiffeq:
            from ._torchdiffeq import odeint_fixed

            trajectory = odeint_fixed(counted, y0, grid, counts, method, perturb, probes,
                                      recompute, enter)  # fmt: skip
        else:
            step = FixedStepper(method, _Perturbed(counted), perturb)
            trajectory = run_fixed(step, y0, grid, counts, probes, recompute, enter)
        per_interval = counts
    elif method == "scipy_solver":
        if through_torchdiffeq:
            from ._torchdiffeq import odeint_scipy

            trajectory = odeint_scipy(counted, y0, times, rtol, atol, **opts)
        else:
            trajectory = scipy_solve(counted, y0, times, rtol, atol, **opts)
    elif adjoint:
        trajectory, per_interval = adjoint_by_interval(
            func,
            y0,
            times,
            tally=tally,
            method=method,
            rtol=rtol,
            atol=atol,
            options=opts,
            adjoint_kw=adjoint_kw,
            budget=budget,
            user_set=user_set,
        )
    elif through_torchdiffeq:
        from ._torchdiffeq import odeint_adaptive

        tally.step_budget = budget
        jumps = discontinuous and times.shape[0] > 2
        trajectory, per_interval = odeint_adaptive(
            counted, y0, times, method, rtol, atol, opts, jumps, tally
        )
    else:
        # Step exactly onto every sample time: the input is only piecewise smooth (its knots,
        # and the constant extension past t_T), and the dense output of a step straddling a
        # knot loses accuracy (seen: 13x the tolerance with dopri5 and a cubic input).
        jumps = discontinuous and times.shape[0] > 2
        stepper = AdaptiveRungeKutta(method, _Perturbed(counted), y0, rtol, atol, **opts)
        try:
            trajectory, per_interval = run_adaptive(
                stepper, y0, times, budget, user_set, method, jumps, enter, field=func
            )
        finally:
            if enter is not None:
                enter(None)
        tally.accepted, tally.rejected = stepper.accepted, stepper.rejected
    tally.phase = "backward"
    if stats is not None:
        stats.nfe += tally.nfe
        if per_interval is not None:
            stats._add_steps(per_interval, tally.rejected)
    # One reduction on the hot path: a sum is finite when every entry is; only when it is not
    # (a non-finite entry, or finite ones summing past the float's range) look closer.
    finite = torch.isfinite(trajectory.detach().sum())
    # After fixed steps, a field whose exact flow stays in a box (``box_excess``) is checked in
    # the same synchronisation: a state outside it means the steps were unstable.
    box_excess = getattr(func, "box_excess", None) if fixed else None
    excess = box_excess(trajectory) if box_excess is not None else None
    ok = finite if excess is None else finite & (excess <= 1 + BOX_SLACK)
    if bool(ok):
        return trajectory
    if bool(finite):
        raise box_error(func, trajectory, times, method, step_size)
    finite = torch.isfinite(trajectory.detach()).flatten(1).all(dim=1)
    if not bool(finite.all()):
        raise nonfinite_error(func, y0, times, trajectory, method, counts)
    raise box_error(func, trajectory, times, method, step_size)
