"""One call into torchdiffeq: method by name, a step grid through the sample times, a step budget.

Fixed-step methods (``euler``, ``midpoint``, ``rk4``, ...) step on a grid that contains every
sample time: interval ``[t_{k-1}, t_k]`` is split into ``ceil((t_k - t_{k-1}) / step_size)`` equal
steps (one step per interval when ``step_size`` is None). Solutions at the sample times are then
grid values, never interpolated, and a held input is seen exactly as the discrete RNN sees it.
Adaptive methods (``dopri5``, ...) step exactly onto every sample time: the sample times of a
held input are jump times (the solver never steps across a discontinuity and re-evaluates after
it), those of a continuous input are step times (where its derivatives jump).

The steps are torchdiffeq's own (its solver objects and step functions); only the loop that
collects the solution is rnnode's: it stacks the states once instead of writing each into a
preallocated tensor, whose backward pass would copy the whole trajectory's gradient at every
sample time (quadratic in T).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchdiffeq import odeint_adjoint
from torchdiffeq._impl.misc import Perturb, _check_inputs
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.solvers import AdaptiveStepsizeODESolver, FixedGridODESolver

METHODS: tuple[str, ...] = tuple(SOLVERS)
FIXED_METHODS: tuple[str, ...] = tuple(
    name for name, cls in SOLVERS.items() if issubclass(cls, FixedGridODESolver)
)
ADAPTIVE_METHODS: tuple[str, ...] = tuple(m for m in METHODS if m not in FIXED_METHODS)
MULTISTEP_METHODS: tuple[str, ...] = ("explicit_adams", "implicit_adams", "fixed_adams")

#: Default step budget of adaptive methods, per sample interval.
MAX_STEPS = 10_000


class DivergenceError(RuntimeError):
    """The dynamics blew up: a non-finite state, or an adaptive solver out of its step budget."""


class _Counted(nn.Module):
    """Wraps a vector field and counts its evaluations (the NFE)."""

    def __init__(self, func: nn.Module, check_finite: bool = False):
        super().__init__()
        self.func = func
        self.nfe = 0
        self.check_finite = check_finite

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        # An adaptive solver fed a non-finite state would shrink its step to underflow first.
        if self.check_finite and not bool(torch.isfinite(y).all()):
            raise DivergenceError(
                f"the state became non-finite near t = {float(t):.6g}: the dynamics diverge"
            )
        return self.func(t, y)


class _Perturbed(nn.Module):
    """Evaluates at the float just after or before t where a step asks (torchdiffeq's Perturb)."""

    def __init__(self, func: nn.Module):
        super().__init__()
        self.func = func

    def forward(self, t: torch.Tensor, y: torch.Tensor, *, perturb: Perturb = Perturb.NONE):
        if perturb is Perturb.NEXT:
            t = torch.nextafter(t, t + 1)
        elif perturb is Perturb.PREV:
            t = torch.nextafter(t, t - 1)
        return self.func(t, y)


def step_grid(times: torch.Tensor, step_size: float | None) -> tuple[torch.Tensor, list[int]]:
    """The fixed-step grid through every sample time, and the number of steps per interval.

    Interval [t_{k-1}, t_k] is split into ceil((t_k - t_{k-1}) / step_size) equal steps (one when
    ``step_size`` is None); the grid holds every t_k exactly.
    """
    if step_size is None:
        return times, [1] * (times.shape[0] - 1)
    widths = times[1:] - times[:-1]
    # The tiny relative slack keeps 1.1 / 0.1 = 11.000000000000002 at 11 steps, not 12.
    # abs: the adjoint's backward pass asks for grids of decreasing times.
    counts = [max(1, math.ceil(abs(w) / step_size * (1 - 1e-12))) for w in widths.tolist()]
    n = torch.tensor(counts, device=times.device)
    starts = times[:-1].repeat_interleave(n)
    offsets = torch.cat(
        [torch.arange(c, dtype=times.dtype, device=times.device) / c for c in counts]
    )
    grid = starts + offsets * widths.repeat_interleave(n)
    return torch.cat([grid, times[-1:]]), counts


def _run_fixed(
    solver: FixedGridODESolver,
    grid: torch.Tensor,
    counts: list[int],
    probes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Step a torchdiffeq fixed-grid solver along ``grid``; keep the state at each interval end.

    ``probes`` (T + 1, *state), zeros that require grad, are added to the state at each sample
    time, so that the gradient of a loss with respect to ``probes[k]`` is dLoss/dy(t_k).
    """
    y = solver.y0 if probes is None else solver.y0 + probes[0]
    states = [y]
    starts, widths = grid[:-1].unbind(0), (grid[1:] - grid[:-1]).unbind(0)
    ends = grid[1:].unbind(0)
    i = 0
    for count in counts:
        for _ in range(count):
            dy, _f0 = solver._step_func(solver.func, starts[i], widths[i], ends[i], y)
            y = y + dy
            i += 1
        if probes is not None:
            y = y + probes[len(states)]
        states.append(y)
    return torch.stack(states)


def _run_adaptive(solver: AdaptiveStepsizeODESolver, times: torch.Tensor) -> torch.Tensor:
    """Advance a torchdiffeq adaptive solver to each time in turn (dense output between steps)."""
    times = times.to(solver.dtype)
    solver._before_integrate(times)
    return torch.stack([solver.y0] + [solver._advance(t) for t in times[1:].unbind(0)])


def _adjoint_by_interval(func, y0, times, *, method, step_size, rtol, atol, options):
    """``odeint_adjoint`` one sample interval at a time, each driven by its own path segment.

    The adjoint differentiates the field with respect to everything it reads at every evaluation;
    a field that reads the whole input path would carry a gradient the size of the path in the
    augmented state (memory and time growing with T). Interval by interval, each solve reads only
    its interval's coefficient rows, so memory stays flat in T: the stored states at the sample
    times are all that grows.
    """
    opts = dict(options or {})
    if method in FIXED_METHODS:
        opts["grid_constructor"] = lambda f, y, t: step_grid(t, step_size)[0]
    elif method != "scipy_solver":
        opts.setdefault("max_num_steps", MAX_STEPS)
    states, nfe = [y0], 0
    for j in range(times.shape[0] - 1):
        piece = func.segment(j)
        counted = _Counted(piece, check_finite=method not in FIXED_METHODS)
        params = tuple(p for p in piece.parameters() if p.requires_grad) + tuple(
            p for p in piece.path_tensors() if p.requires_grad
        )
        y = odeint_adjoint(
            counted,
            states[-1],
            times[j : j + 2],
            rtol=rtol,
            atol=atol,
            method=method,
            options=opts,
            adjoint_params=params,
        )[-1]
        states.append(y)
        nfe += counted.nfe
    return torch.stack(states), nfe


def integrate(
    func: nn.Module,
    y0: torch.Tensor,
    times: torch.Tensor,
    *,
    method: str,
    step_size: float | None,
    rtol: float,
    atol: float,
    discontinuous: bool,
    adjoint: bool = False,
    options: dict | None = None,
    probes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Solve dy/dt = func(t, y), y(times[0]) = y0, returning y at ``times`` and the NFE.

    Arguments:
        func: module mapping (t, y) to dy/dt, y of shape (batch, state).
        y0: (batch, state) initial state.
        times: (T + 1,) strictly increasing output times; the first is the start time.
        method: a torchdiffeq method name (``METHODS``).
        step_size: largest fixed step (fixed-step methods only; None = one step per interval).
        rtol, atol: tolerances of adaptive methods.
        discontinuous: the vector field jumps at ``times`` (a held input).
        adjoint: solve the backward pass with ``odeint_adjoint``, one sample interval at a time;
            ``func`` must then offer ``segment(j)`` (itself on interval j) and ``path_tensors()``
            (the tensors besides its parameters that it reads).
        options: further torchdiffeq options, passed through.
        probes: zeros of shape (T + 1, batch, state) requiring grad, added to the state at each
            output time so that gradients with respect to them are dLoss/dy(t_k) (fixed-step
            methods without adjoint only).

    Returns:
        ``(trajectory, nfe)``: trajectory (T + 1, batch, state), and the number of forward
        evaluations of ``func``.

    Raises:
        DivergenceError: the state became non-finite, or an adaptive method ran out of steps.
    """
    opts = dict(options or {})
    if method in FIXED_METHODS:
        grid, counts = step_grid(times, step_size)
        if method in MULTISTEP_METHODS:
            widths = grid[1:] - grid[:-1]
            if float(widths.max() - widths.min()) > 1e-9 * float(widths.max()):
                raise ValueError(
                    f"method: {method!r} is a multistep method whose coefficients assume equal "
                    f"steps; got steps from {float(widths.min()):.6g} to {float(widths.max()):.6g} "
                    "(use equally spaced sample times and a step_size that divides them)"
                )
        # Stages at a step's end must see the interval the step belongs to, not the next sample;
        # Euler has no such stage (it evaluates at the step's start only).
        opts.setdefault("perturb", discontinuous and method != "euler")
    else:
        if step_size is not None:
            raise ValueError(
                f"step_size: applies to the fixed-step methods {FIXED_METHODS}; "
                f"got step_size={step_size} with the adaptive method {method!r} (use rtol/atol)"
            )
        if method != "scipy_solver":
            opts.setdefault("max_num_steps", MAX_STEPS)
            # Step exactly onto every sample time: the input is only piecewise smooth (its knots,
            # and the constant extension past t_T), and the dense output of a step straddling a
            # knot loses accuracy (seen: 13x the tolerance with dopri5 and a cubic input).
            if discontinuous and times.shape[0] > 2:
                opts.setdefault("jump_t", times[1:-1])
                opts.setdefault("step_t", times[-1:])
            else:
                opts.setdefault("step_t", times[1:])
    if probes is not None and (adjoint or method not in FIXED_METHODS):
        raise ValueError(
            f"method: state gradients need a fixed-step method without adjoint "
            f"{FIXED_METHODS}; got method={method!r}, adjoint={adjoint}"
        )
    counted = _Counted(func, check_finite=method not in FIXED_METHODS)
    try:
        if adjoint:
            trajectory, counted.nfe = _adjoint_by_interval(
                func,
                y0,
                times,
                method=method,
                step_size=step_size,
                rtol=rtol,
                atol=atol,
                options=options,
            )
        elif method in FIXED_METHODS:
            # torchdiffeq's fixed-grid steps, called directly: no input normalisation is needed
            # for one tensor state on an increasing grid, and the light wrapper below saves the
            # generic one's work at every evaluation on the hot path.
            solver = SOLVERS[method](func=_Perturbed(counted), y0=y0, rtol=rtol, atol=atol, **opts)
            trajectory = _run_fixed(solver, grid, counts, probes)
        else:
            _, wrapped, y0_, times_, rtol_, atol_, _, opts_, _, _ = _check_inputs(
                counted, y0, times, rtol, atol, method, opts, None, SOLVERS
            )
            solver = SOLVERS[method](func=wrapped, y0=y0_, rtol=rtol_, atol=atol_, **opts_)
            if isinstance(solver, AdaptiveStepsizeODESolver) and method != "scipy_solver":
                trajectory = _run_adaptive(solver, times_)
            else:
                trajectory = solver.integrate(times_)
    except AssertionError as err:
        message = str(err)
        if "max_num_steps" in message or "underflow" in message:
            raise DivergenceError(
                f"{method} could not advance the state ({message}): the dynamics diverge or are "
                f"too stiff for rtol={rtol}, atol={atol}"
            ) from err
        raise
    # One reduction on the hot path: a sum is finite when every entry is; only when it is not
    # (a non-finite entry, or finite ones summing past the float's range) look closer.
    finite = torch.isfinite(trajectory.detach().sum())
    if not bool(finite):
        finite = torch.isfinite(trajectory.detach()).flatten(1).all(dim=1)
    if not bool(finite.all()):
        k = int(torch.nonzero(~finite)[0])
        raise DivergenceError(
            f"the state became non-finite between t = {float(times[k - 1])} and "
            f"t = {float(times[k])} ({method}): the dynamics diverge"
        )
    return trajectory, counted.nfe
