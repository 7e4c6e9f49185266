"""The solve: rnnode's loops around torchdiffeq's steps, a step budget, statistics, the adjoint.

Fixed-step methods (``FIXED_METHODS``) step on a grid that contains every sample time: interval
``[t_{k-1}, t_k]`` is split into ``ceil((t_k - t_{k-1}) / step_size)`` equal steps (one step per
interval when ``step_size`` is None). Solutions at the sample times are then grid values, never
interpolated, and a held input is seen exactly as the discrete RNN sees it. Adaptive methods
(``ADAPTIVE_METHODS``) step exactly onto every sample time: the sample times of a held input are
jump times (the solver never steps across a discontinuity and re-evaluates after it), those of a
continuous input are step times (where its derivatives jump).

The tableaus are torchdiffeq's (``rnnode._torchdiffeq``, the one module that imports it). Fixed
steps on times that need no gradient run them in ``_LeanStepper`` (the same stages, each stage's
input one chain of ``torch.add`` with the step size as a number: half the autograd nodes per
step), on times that need one in torchdiffeq's step functions; the embedded pairs step in
``rnnode._adaptive`` (torchdiffeq's steps and step-size rule, without its per-step dense-output
fit). The loops are rnnode's: they count steps and evaluations (``SolverStats``) and hold one
step budget for the whole solve (``max_num_steps``; also under ``python -O``).

Gradients: plain backpropagation through the steps by default. ``adjoint=True`` with a
fixed-step method is the discrete adjoint: the exact gradient of the steps taken, each sample
interval recomputed during the backward pass (activation checkpointing), so memory holds only the
states at the sample times. With an adaptive method it is torchdiffeq's continuous adjoint,
solved one sample interval at a time: a backward ODE whose gradient approximates backprop's to
about the solver tolerance (README, section Solvers, for measured errors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import _torchdiffeq as _td
from ._adaptive import AdaptiveRungeKutta, _combine
from ._semi_implicit import DEFAULT_UNFOLDS, FUSED_METHODS, FUSED_OPTIONS, FusedStepper

#: Fixed-grid Runge-Kutta methods: explicit Euler (order 1), midpoint (2), Heun's third-order
#: method (3) and the classic fourth-order method in its 3/8-rule form (4).
FIXED_METHODS: tuple[str, ...] = ("euler", "midpoint", "heun3", "rk4")
#: Methods with error control: the embedded Runge-Kutta pairs of torchdiffeq, and
#: ``scipy_solver`` (scipy.integrate.solve_ivp; no gradients).
ADAPTIVE_METHODS: tuple[str, ...] = (
    "dopri5",
    "dopri8",
    "bosh3",
    "fehlberg2",
    "adaptive_heun",
    "scipy_solver",
)
#: Every method rnnode supports, each tested against a reference solution.
METHODS: tuple[str, ...] = FIXED_METHODS + ADAPTIVE_METHODS

#: torchdiffeq method names rnnode refuses, and why.
_REFUSED = {
    "explicit_adams": (
        "torchdiffeq's Adams-Bashforth is unstable on stable problems (dh/dt = -h at step 0.1 "
        "reaches 2e15 at t = 6, exact 0.0025)"
    ),
    "implicit_adams": (
        "torchdiffeq's Adams-Bashforth-Moulton misses reference solutions by orders of "
        "magnitude with a held input, with only a warning"
    ),
    "fixed_adams": "it is torchdiffeq's 'implicit_adams', which misses reference solutions",
    "heun2": (
        "torchdiffeq 0.2.4, the lowest version rnnode supports, lacks it ('midpoint' is a "
        "second-order method)"
    ),
}

#: Evaluations of the field per step of each fixed-step method.
_STAGES = {"euler": 1, "midpoint": 2, "heun3": 3, "rk4": 4}
#: Where each fixed-step method's stability region ends on the negative real axis: the largest
#: h * rate with |R(-h * rate)| <= 1, R the stability polynomial of an s-stage method of order s
#: (s <= 4): 1 + z + ... + z^s / s!, whose root of R(-x) = (-1)^s ... solved numerically
#: (Hairer & Wanner, Solving ODEs II, Sec. IV.2).
_STABILITY_LIMIT = {
    "euler": 2.0,
    "midpoint": 2.0,
    "heun3": 2.512745326618329,
    "rk4": 2.7852935634052822,
}
#: The relative slack of the box check after a fixed-step solve: rounding only.
_BOX_SLACK = 1e-6
#: Most evaluations one adaptive step may take (dopri8: 12 stages and a re-evaluation at a jump),
#: the bound on evaluations inside torchdiffeq's own loops (the adjoint, scipy).
_EVALS_PER_STEP = 16

#: Default step budget of a whole solve: ``max(MAX_STEPS, 100 * T)`` steps over T sample
#: intervals (accepted and rejected steps of adaptive methods, grid steps of fixed-step ones).
MAX_STEPS = 1_000
_STEPS_PER_INTERVAL = 100

#: The options each kind of method takes besides ``max_num_steps`` (torchdiffeq's names).
_ADAPTIVE_OPTIONS = ("first_step", "max_step", "safety", "ifactor", "dfactor")
_ADJOINT_OPTIONS = ("adjoint_rtol", "adjoint_atol", "adjoint_method", "adjoint_options")
#: The methods scipy.integrate.solve_ivp offers (``options={"solver": ...}``).
SCIPY_SOLVERS: tuple[str, ...] = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
#: The order of each embedded pair's propagated solution: the error per step shrinks as
#: step^(order + 1), so a low order needs many steps at a tight tolerance.
_ORDER = {"dopri5": 5, "dopri8": 8, "bosh3": 3, "fehlberg2": 2, "adaptive_heun": 2}
#: Below this step x fastest rate, an explicit step is far inside its stability region: what
#: limits it is the tolerance, not stiffness (the pairs' real-axis limits lie between 2 and 6).
_ACCURACY_LIMITED = 0.5


class DivergenceError(RuntimeError):
    """The dynamics blew up: the state became non-finite."""


class StepBudgetError(RuntimeError):
    """A solve used up its step budget (``max_num_steps``) or its step size underflowed."""


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


def check_method(method: object) -> str:
    """``method`` if rnnode supports it; a ValueError that says why otherwise (TypeError for a
    value that is not a method name at all)."""
    if not isinstance(method, str):
        raise TypeError(f"method: expected one of {METHODS}, got {type(method).__name__}")
    if method in _REFUSED:
        raise ValueError(
            f"method: {method!r} is not supported: {_REFUSED[method]}; expected one of {METHODS}"
        )
    if method not in METHODS and method not in FUSED_METHODS:
        raise ValueError(
            f"method: expected one of {METHODS} (or, for cell='ltc', {FUSED_METHODS}), "
            f"got {method!r}"
        )
    return method  # type: ignore[return-value]


def default_budget(num_intervals: int) -> int:
    """The default step budget of a solve over ``num_intervals`` sample intervals."""
    return max(MAX_STEPS, _STEPS_PER_INTERVAL * num_intervals)


# -- counting the evaluations -------------------------------------------------------------------


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
        self.on_backward_budget = None
        self.last_dt: float | None = None


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
                raise tally.on_backward_budget(t)
            return self.func(t, y)
        tally.nfe += 1
        if tally.max_evals is not None and tally.nfe > tally.max_evals:
            raise tally.on_budget(t)
        if tally.step_budget is not None and tally.accepted + tally.rejected >= tally.step_budget:
            raise tally.on_budget(t, y, tally.last_dt)
        # An adaptive solver fed a non-finite state would shrink its step to underflow first.
        if self.check_finite and not bool(torch.isfinite(y).all()):
            raise DivergenceError(
                f"the state became non-finite near t = {float(t):.6g}: the dynamics diverge"
            )
        return self.func(t, y)

    # torchdiffeq calls these on the field it is given, where they exist: the step statistics of
    # the adjoint's forward solve.
    def callback_accept_step(self, t0, y0, dt):
        self.tally.accepted += 1
        self.tally.last_dt = float(dt)

    def callback_reject_step(self, t0, y0, dt):
        self.tally.rejected += 1
        self.tally.last_dt = float(dt)

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

    def forward(self, t: torch.Tensor, y: torch.Tensor, *, perturb=_td.Perturb.NONE):
        if perturb is _td.Perturb.NEXT:
            t = torch.nextafter(t, t + 1)
        elif perturb is _td.Perturb.PREV:
            t = torch.nextafter(t, t - 1)
        return self.func(t, y)


# -- arguments and options ----------------------------------------------------------------------


def _check_number(name, value, *, integer=False):
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    if not 0 < value < math.inf:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def _check_options(method: str, options: dict | None, adjoint: bool):
    """Split ``options`` into the solver's options, the step budget and the adjoint's options.

    Every option is honoured or refused: unknown names, and names that do not apply to the
    method, raise a ValueError naming them.
    """
    opts = dict(options or {})
    budget = opts.pop("max_num_steps", None)
    if budget is not None:
        budget = _check_number("options['max_num_steps']", budget, integer=True)
    adjoint_kw = {k: opts.pop(k) for k in _ADJOINT_OPTIONS if k in opts}
    if adjoint_kw and not (adjoint and method in ADAPTIVE_METHODS and method != "scipy_solver"):
        raise ValueError(
            f"options: {sorted(adjoint_kw)} apply to the continuous adjoint (adjoint=True with "
            f"an adaptive torchdiffeq method); got method={method!r}, adjoint={adjoint}"
        )
    if "adjoint_method" in adjoint_kw:
        pairs = tuple(_ORDER)
        if check_method(adjoint_kw["adjoint_method"]) not in pairs:
            raise ValueError(
                f"options['adjoint_method']: expected an embedded pair {pairs} for the adjoint's "
                f"backward solve, got {adjoint_kw['adjoint_method']!r}"
            )
    if "adjoint_options" in adjoint_kw:
        given = adjoint_kw["adjoint_options"]
        if not isinstance(given, dict):
            raise TypeError(
                f"options['adjoint_options']: expected a dict, got {type(given).__name__}"
            )
        unknown = sorted(set(given) - {"max_num_steps", *_ADAPTIVE_OPTIONS})
        if unknown:
            raise ValueError(
                f"options['adjoint_options']: {unknown} do not apply to the backward solve; "
                f"expected some of {('max_num_steps', *_ADAPTIVE_OPTIONS)}"
            )
        for name, value in given.items():
            _check_number(
                f"options['adjoint_options'][{name!r}]", value, integer=name == "max_num_steps"
            )
    for name in ("adjoint_rtol", "adjoint_atol"):
        if name in adjoint_kw:
            _check_number(f"options[{name!r}]", adjoint_kw[name])
    if method in FIXED_METHODS:
        allowed: tuple[str, ...] = ()
    elif method in FUSED_OPTIONS:
        allowed = FUSED_OPTIONS[method]
    elif method == "scipy_solver":
        allowed = ("solver",)
    else:
        allowed = _ADAPTIVE_OPTIONS
    unknown = sorted(set(opts) - set(allowed))
    if "step_size" in unknown:
        raise ValueError(
            "options: 'step_size' is the solve's own argument (step_size=...), not an option; "
            f"got options={{'step_size': {opts['step_size']!r}}} with method {method!r}"
        )
    if unknown:
        raise ValueError(
            f"options: {unknown} do not apply to method {method!r}; expected some of "
            f"{('max_num_steps', *allowed)}"
            + (
                f" (and with adjoint=True {_ADJOINT_OPTIONS})"
                if method in _td.ADAPTIVE_SOLVERS
                else ""
            )
        )
    for name, value in opts.items():
        if name == "solver":
            if not isinstance(value, str):
                raise TypeError(
                    f"options['solver']: expected one of scipy's methods {SCIPY_SOLVERS}, got "
                    f"{type(value).__name__}"
                )
            if value not in SCIPY_SOLVERS:
                raise ValueError(
                    f"options['solver']: expected one of scipy's methods {SCIPY_SOLVERS}, got "
                    f"{value!r}"
                )
        elif name == "unfolds":
            opts[name] = _check_number("options['unfolds']", value, integer=True)
        else:
            opts[name] = _check_number(f"options[{name!r}]", value)
    return opts, budget, adjoint_kw


def _check_arguments(func, y0, times, method, step_size, rtol, atol):
    if not isinstance(y0, torch.Tensor) or not y0.is_floating_point():
        raise TypeError(f"y0: expected a floating-point tensor, got {type(y0).__name__}")
    if not isinstance(times, torch.Tensor) or times.dim() != 1 or times.shape[0] < 2:
        got = tuple(times.shape) if isinstance(times, torch.Tensor) else type(times).__name__
        raise ValueError(f"times: expected a (T + 1,) tensor with T >= 1, got {got}")
    if step_size is not None:
        _check_number("step_size", step_size)
    if method not in ADAPTIVE_METHODS:
        return
    if step_size is not None:
        raise ValueError(
            f"step_size: applies to the fixed-step methods {FIXED_METHODS}; "
            f"got step_size={step_size} with the adaptive method {method!r} (use rtol/atol)"
        )
    _check_number("rtol", rtol)
    _check_number("atol", atol)
    if y0.numel() == 0:
        raise ValueError(
            f"y0: an adaptive method needs a non-empty state (its error norm over no entries is "
            f"undefined); got shape {tuple(y0.shape)} with method {method!r}"
        )
    info = torch.finfo(y0.dtype)
    if rtol < info.eps:
        raise ValueError(
            f"rtol: expected at least the machine epsilon of {y0.dtype}, {info.eps:.3g} (a "
            f"relative error below it is not resolved in the state), got {rtol:.3g}"
        )
    if atol < info.tiny:
        raise ValueError(
            f"atol: expected at least the smallest normal number of {y0.dtype}, "
            f"{info.tiny:.3g}, got {atol:.3g}"
        )
    if method == "scipy_solver" and torch.is_grad_enabled():
        tensors = [y0, *func.parameters()]
        if hasattr(func, "path_tensors"):
            tensors += list(func.path_tensors())
        if any(t.requires_grad for t in tensors):
            raise ValueError(
                "method: 'scipy_solver' returns solutions without gradients (scipy works on "
                "numpy arrays), but gradients are asked for here: grad mode is on and the "
                "initial state, the input or the field's parameters require grad. Use an "
                "adaptive torchdiffeq method (for example 'dopri5'), or solve under "
                "torch.no_grad()"
            )


# -- the step budget ----------------------------------------------------------------------------


def _budget_source(budget: int, user_set: bool, num_intervals: int) -> str:
    if user_set:
        return f"the step budget max_num_steps={budget} set in options"
    return (
        f"the default step budget of {budget} steps (max(MAX_STEPS, {_STEPS_PER_INTERVAL} x "
        f"{num_intervals} sample intervals); raise it with options={{'max_num_steps': ...}})"
    )


def _out_of_budget(
    method, budget, user_set, times, t_now, dt, *, func=None, y=None, rtol=None, what=""
) -> StepBudgetError:
    """The error of a solve that used up its step budget, with its likely cause.

    Steps far below the sample intervals have two causes: stiffness (a fast decay holds an
    explicit step near the edge of its stability region, step x rate of order 1) or accuracy
    (a tolerance too tight for the method's order, the step far inside the region). Where the
    field and the state are known, the field's dominant rate there tells them apart.
    """
    times = times.detach()
    t_now = t_now.detach() if isinstance(t_now, torch.Tensor) else t_now
    shortest = float((times[1:] - times[:-1]).min())
    where = (
        f"{method}{what} used up {_budget_source(budget, user_set, times.shape[0] - 1)} at "
        f"t = {float(t_now):.6g} of [{float(times[0]):.6g}, {float(times[-1]):.6g}]"
    )
    dt = None if dt is None else abs(float(dt))
    if dt is not None and dt < 1e-2 * shortest and func is not None and y is not None:
        rate = abs(_dominant_rate(func, torch.as_tensor(t_now).to(y.dtype), y.detach()))
        if math.isfinite(rate) and dt * rate < _ACCURACY_LIMITED:
            order = _ORDER.get(method)
            higher = "dopri8" if method == "dopri5" else "dopri5 (or dopri8)"
            cause = (
                f"{method} is of order {order}, too low for rtol={rtol:.3g}: use a "
                f"higher-order method, {higher}, or a looser rtol"
                if method != "dopri8"
                else f"rtol={rtol:.3g} is tighter than the solve needs: loosen it"
            )
            return StepBudgetError(
                f"{where}; its steps had fallen to {dt:.3g}, {shortest / dt:.2g} times below "
                f"the shortest sample interval {shortest:.3g}, though the field's fastest rate "
                f"there, {rate:.3g}, allows far longer stable steps (step x rate = "
                f"{dt * rate:.2g}): the system is not stiff, the tolerance sets the step. "
                f"{cause}"
            )
    if dt is not None and dt < 1e-2 * shortest:
        return StepBudgetError(
            f"{where}; its steps had fallen to {dt:.3g}, {shortest / dt:.2g} times below the "
            f"shortest sample interval {shortest:.3g}: the system is stiff (it has a time scale "
            "far below the input's, for example a small tau), and an explicit method must step "
            "at that scale however smooth the solution. Use a larger tau, looser tolerances, or "
            "a larger budget"
        )
    size = "" if dt is None else f" with steps of about {dt:.3g}"
    return StepBudgetError(
        f"{where}{size}: the solve needs more steps than the budget allows (raise "
        "max_num_steps, or loosen the tolerances)"
    )


def _check_fixed_stability(func, method, times, counts, step_size):
    """Refuse fixed steps beyond ``method``'s stability limit for the field's fastest leak.

    ``func.decay_rate()`` (where the field offers it) is the fastest decay rate 1/tau of a
    leak -h/tau; a step h with h / tau beyond the method's real-axis limit amplifies that
    decay's error at every step instead of damping it (explicit Euler: |1 - h / tau| > 1).
    """
    if method not in _STABILITY_LIMIT:  # a fused step is implicit in the leak
        return
    rate_of = getattr(func, "decay_rate", None)
    rate = rate_of() if rate_of is not None else None
    if rate is None:
        return
    rate = float(rate)
    widths = (times[1:] - times[:-1]).detach().tolist()
    h = max(abs(w) / c for w, c in zip(widths, counts, strict=True))
    limit = _STABILITY_LIMIT[method]
    if not h * rate > limit * (1 + 1e-12):
        return
    tau, largest = 1.0 / rate, limit / rate
    given = (
        f"step_size={step_size}"
        if step_size is not None
        else f"step_size=None (the default: one step per sample interval, up to {h:.4g})"
    )
    raise ValueError(
        f"step_size: {given} is unstable for tau = {tau:.4g} with method {method!r}: "
        f"step / tau = {h * rate:.4g} exceeds {method}'s stability limit {limit:.4g} on the "
        f"decay rate 1/tau, and the solution would grow without bound instead of relaxing. "
        f"Use step_size <= {largest:.4g} (the largest stable step), a larger tau, or an "
        "adaptive method"
    )


def _box_error(func, trajectory, times, method, step_size) -> DivergenceError:
    excess = func.box_excess(trajectory)
    # The first sample time whose state is out of the box (the error path: host reads are fine).
    k = next(
        k
        for k in range(1, trajectory.shape[0])
        if float(func.box_excess(trajectory[[0, k]])) > 1 + _BOX_SLACK
    )
    step = "one step per sample interval" if step_size is None else f"step_size={step_size}"
    return DivergenceError(
        f"the {method} solve with {step} left the bounded set that the exact flow never leaves "
        f"(|h| <= max(1, |h(0)|)), reaching {float(excess):.4g} times the bound by "
        f"t = {float(times[k]):.6g}: the step is unstable for this field (its fastest rate "
        "exceeds the method's stability limit). Use a smaller step_size, a larger tau, or an "
        "adaptive method"
    )


def _check_fixed_budget(method, step_size, counts, budget, user_set, times):
    total = sum(counts)
    if total > budget:
        raise ValueError(
            f"step_size: {step_size} makes {total} {method} steps over "
            f"[{float(times[0]):.6g}, {float(times[-1]):.6g}], more than "
            f"{_budget_source(budget, user_set, len(counts))}; use a larger step_size or set "
            f"options={{'max_num_steps': {total}}}"
        )


# -- fixed-step solves --------------------------------------------------------------------------


def step_grid(times: torch.Tensor, step_size: float | None) -> tuple[torch.Tensor, list[int]]:
    """The fixed-step grid through every sample time, and the number of steps per interval.

    Interval [t_{k-1}, t_k] is split into ceil((t_k - t_{k-1}) / step_size) equal steps (one when
    ``step_size`` is None); the grid holds every t_k exactly.
    """
    if step_size is None:
        return times, [1] * (times.shape[0] - 1)
    counts = _step_counts(times, step_size)
    widths = times[1:] - times[:-1]
    n = torch.tensor(counts, device=times.device)
    starts = times[:-1].repeat_interleave(n)
    offsets = torch.cat(
        [torch.arange(c, dtype=times.dtype, device=times.device) / c for c in counts]
    )
    grid = starts + offsets * widths.repeat_interleave(n)
    return torch.cat([grid, times[-1:]]), counts


def _step_counts(times: torch.Tensor, step_size: float | None) -> list[int]:
    if step_size is None:
        return [1] * (times.shape[0] - 1)
    widths = (times[1:] - times[:-1]).detach()
    # The tiny relative slack keeps 1.1 / 0.1 = 11.000000000000002 at 11 steps, not 12.
    return [max(1, math.ceil(abs(w) / step_size * (1 - 1e-12))) for w in widths.tolist()]


#: The fixed-step methods' tableaus as torchdiffeq steps them (rk4: its 3/8 rule): stage times
#: c, stage weights a (row i - 1: the weights of stages 0..i-1 in stage i), final weights b.
_TABLEAUS = {
    "euler": ((0.0,), (), (1.0,)),
    "midpoint": ((0.0, 0.5), ((0.5,),), (0.0, 1.0)),
    "heun3": ((0.0, 1 / 3, 2 / 3), ((1 / 3,), (0.0, 2 / 3)), (0.25, 0.0, 0.75)),
    "rk4": (
        (0.0, 1 / 3, 2 / 3, 1.0),
        ((1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)),
        (0.125, 0.375, 0.375, 0.125),
    ),
}


class _LeanStepper:
    """One explicit Runge-Kutta step ``y1 = stepper(t0, h, t1, y)`` with the step size h a
    number: every stage input and the new state is one chain of ``torch.add`` (the fewest
    autograd nodes the tableau needs; torchdiffeq's tensor arithmetic builds about twice as many).

    ``func(t, y, perturb=...)``; with ``perturb`` the first stage is evaluated just after t0 and
    a stage on t1 just before it (a field that jumps at the knots), as torchdiffeq does.
    """

    def __init__(self, method: str, func, perturb: bool):
        self.c, self.a, self.b = _TABLEAUS[method]
        self.func = func
        self.first = _td.Perturb.NEXT if perturb else _td.Perturb.NONE
        self.last = _td.Perturb.PREV if perturb else _td.Perturb.NONE

    def __call__(self, t0: torch.Tensor, h: float, t1: torch.Tensor, y: torch.Tensor):
        ks = [self.func(t0, y, perturb=self.first)]
        for c, weights in zip(self.c[1:], self.a, strict=True):
            z = _combine(y, h, weights, ks)
            if c == 1.0:
                ks.append(self.func(t1, z, perturb=self.last))
            else:
                ks.append(self.func(t0 + c * h, z))
        return _combine(y, h, self.b, ks)


class _TensorStepper:
    """torchdiffeq's fixed step with tensor step sizes (times that need a gradient)."""

    def __init__(self, method: str, func, y0: torch.Tensor, perturb: bool):
        self.step = _td.FixedStepper(method, func, y0, perturb)

    def __call__(self, t0, dt, t1, y):
        return y + self.step(t0, dt, t1, y)


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


def _run_fixed(step, y0, grid, counts, probes=None, recompute=False, enter=None):
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
    # A lean stepper takes the step sizes as numbers (one host copy of the grid per solve).
    tensor_widths = isinstance(step, _TensorStepper) or getattr(step, "tensor_widths", False)
    widths = widths.unbind(0) if tensor_widths else widths.tolist()
    first = 0
    for k, count in enumerate(counts):
        # Only this interval's grid goes to the (checkpointed) steps: checkpoint flattens its
        # arguments at every call, and the whole grid's would make the solve quadratic in T.
        piece = tuple(g[first : first + count] for g in (starts, widths, ends))
        if recompute:
            y = checkpoint(_steps, step, enter, k, *piece, y, use_reentrant=False)
        else:
            y = _steps(step, enter, k, *piece, y)
        first += count
        if probes is not None:
            y = y + probes[k + 1]
        states.append(y)
    return torch.stack(states)


# -- adaptive solves ----------------------------------------------------------------------------


def _run_adaptive(stepper, y0, times, budget, user_set, method, jumps, enter=None, field=None):
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
    states, per_interval, steps = [y0], [], 0
    last = len(targets) - 1
    for k, target in enumerate(targets):
        if enter is not None:
            enter(k, exact=False)
        before = stepper.accepted
        while target > stepper.t:
            t_now, dt = stepper.t, stepper.dt
            if steps >= budget:
                raise _out_of_budget(
                    method, budget, user_set, times, t_now, float(dt),
                    func=field, y=stepper.y, rtol=stepper.rtol,
                )  # fmt: skip
            if torch.isfinite(dt) and not t_now + dt > t_now:
                raise StepBudgetError(
                    f"{method}: the step size underflowed ({float(dt):.3g} at t = "
                    f"{float(t_now):.6g}): the system is stiff, or the field jumps where no "
                    "sample time says so"
                )
            stepper.step(target, jump=jumps and k < last)
            steps += 1
            # A non-finite state or field makes the error estimate non-finite: every later
            # attempt would be rejected until the budget ran out.
            if not math.isfinite(stepper.error_ratio):
                raise DivergenceError(
                    f"the state became non-finite near t = {float(t_now):.6g}: the dynamics diverge"
                )
        per_interval.append(stepper.accepted - before)
        states.append(stepper.y)
    if enter is not None:
        enter(None)
    return torch.stack(states), per_interval


class _LeafSolve(torch.autograd.Function):
    """``run(*inputs)`` on leaf copies of its non-leaf inputs, its graph kept to itself.

    The continuous adjoint differentiates the field at every backward evaluation with
    ``torch.autograd.grad``, which walks everything reachable from the field's output: a field
    reading a row of another layer's output walks that layer's whole graph each time (quadratic
    in T). On leaf copies the walk stops at the copies; the gradients reach the originals here.
    """

    @staticmethod
    def forward(ctx, run, *inputs):
        with torch.enable_grad():
            leaves = [
                x if x.is_leaf else x.detach().requires_grad_(x.requires_grad) for x in inputs
            ]
            out = run(*leaves)
        ctx.graph = (out, leaves)
        return out.detach()

    @staticmethod
    def backward(ctx, grad):
        out, leaves = ctx.graph
        del ctx.graph
        wanted = [x for x in leaves if x.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
        return (None, *[next(grads) if x.requires_grad else None for x in leaves])


def _adjoint_by_interval(
    func, y0, times, *, tally, method, rtol, atol, options, adjoint_kw, budget, user_set
):
    """``odeint_adjoint`` one sample interval at a time, each driven by its own path segment.

    The adjoint differentiates the field with respect to everything it reads at every evaluation;
    a field that reads the whole input path would carry a gradient the size of the path in the
    augmented state (memory and time growing with T). Interval by interval, each solve reads only
    its interval's coefficient rows, so memory stays flat in T: the stored states at the sample
    times are all that grows. ``func.segment(j)`` is the field on interval j, its
    ``path_tensors()`` the tensors it reads besides its parameters and, where it offers
    ``with_path_tensors(tensors)``, the same field reading other tensors (leaf copies, see
    ``_LeafSolve``).

    The step budgets, ``budget`` forward and ``adjoint_options["max_num_steps"]`` (default the
    same) for the whole backward solve, are counted here through torchdiffeq's step callbacks,
    not by torchdiffeq (whose budget is an ``assert`` per output time).

    Returns the states at ``times`` and the accepted steps per interval.
    """
    adjoint_kw = dict(adjoint_kw)
    backward = dict(adjoint_kw.pop("adjoint_options", None) or {})
    backward_budget = backward.pop("max_num_steps", None)
    if "adjoint_method" not in adjoint_kw or adjoint_kw["adjoint_method"] == method:
        backward = {**options, **backward}  # torchdiffeq's rule: the forward options carry over
    tally.step_budget = budget
    tally.backward_budget = budget if backward_budget is None else backward_budget
    backward_user_set = user_set or backward_budget is not None
    backward_method = adjoint_kw.get("adjoint_method", method)

    def on_backward_budget(t):
        return _out_of_budget(
            backward_method,
            tally.backward_budget,
            backward_user_set,
            times,
            t,
            None,
            what=" (the adjoint's backward solve)",
        )

    tally.on_backward_budget = on_backward_budget
    states, per_interval = [y0], []
    for j in range(times.shape[0] - 1):
        piece = func.segment(j) if hasattr(func, "segment") else func
        params = tuple(p for p in piece.parameters() if p.requires_grad)
        tensors = tuple(piece.path_tensors()) if hasattr(piece, "path_tensors") else ()
        before = tally.accepted

        def solve(field, y, span, extra, params=params):
            return _td.odeint_adjoint(
                _Counted(field, tally, check_finite=True),
                y,
                span,
                rtol=rtol,
                atol=atol,
                method=method,
                options=options,
                adjoint_options=backward,
                adjoint_params=params + tuple(x for x in extra if x.requires_grad),
                **adjoint_kw,
            )[-1]

        span = times[j : j + 2]
        if hasattr(piece, "with_path_tensors") and torch.is_grad_enabled():
            n = len(tensors)

            def run(y, span, *rest, piece=piece, n=n, solve=solve):
                leaves = list(rest[:n])
                return solve(piece.with_path_tensors(leaves), y, span, leaves)

            y = _LeafSolve.apply(run, states[-1], span, *tensors, *params)
        else:
            y = solve(piece, states[-1], span, tensors)
        states.append(y)
        per_interval.append(tally.accepted - before)
    return torch.stack(states), per_interval


# -- diagnosis of a non-finite state ------------------------------------------------------------


@torch.no_grad()
def _dominant_rate(func, t, y, iterations=30) -> float:
    """The field's dominant Jacobian eigenvalue at (t, y), by power iteration on differences."""
    f0 = func(t, y)
    generator = torch.Generator(device=y.device).manual_seed(0)
    v = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
    v = v / v.norm()
    eps = math.sqrt(torch.finfo(y.dtype).eps) * (1.0 + float(y.norm()))
    rate = 0.0
    for _ in range(iterations):
        jv = (func(t, y + eps * v) - f0) / eps
        rate = float((v * jv).sum())
        norm = jv.norm()
        if not bool(torch.isfinite(norm)) or float(norm) == 0.0:
            break
        v = jv / norm
    return rate


def _nonfinite_error(func, y0, times, trajectory, method, step_size) -> DivergenceError:
    finite = torch.isfinite(trajectory.detach()).flatten(1).all(dim=1)
    k = int(torch.nonzero(~finite)[0])
    where = (
        f"the state became non-finite between t = {float(times[k - 1])} and "
        f"t = {float(times[k])} ({method})"
    )
    if method in FIXED_METHODS:
        widths = times[1:] - times[:-1]
        counts = _step_counts(times, step_size)
        h = max(float(w) / c for w, c in zip(widths.detach().tolist(), counts, strict=True))
        rate = _dominant_rate(func, times[0].detach(), y0.detach())
        limit = _STABILITY_LIMIT[method]
        if rate < 0 and h * -rate > limit:
            return DivergenceError(
                f"{where}: the system is stiff and stable, but its fastest rate at the start, "
                f"{rate:.3g}, makes {method} steps of {h:.3g} unstable (step x rate = "
                f"{h * -rate:.3g}; {method} is stable up to {limit}). Use a step_size below "
                f"{limit / -rate:.3g}, an adaptive method, or a larger tau"
            )
    return DivergenceError(f"{where}: the dynamics diverge")


# -- the solve ----------------------------------------------------------------------------------


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
    stats: SolverStats | None = None,
) -> tuple[torch.Tensor, int]:
    """Solve dy/dt = func(t, y), y(times[0]) = y0, returning y at ``times`` and the NFE.

    Arguments:
        func: module mapping (t, y) to dy/dt, y of shape (batch, state).
        y0: (batch, state) initial state.
        times: (T + 1,) strictly increasing output times; the first is the start time.
        method: one of ``METHODS``.
        step_size: largest fixed step (fixed-step methods only; None = one step per interval).
        rtol, atol: tolerances of adaptive methods.
        discontinuous: the vector field jumps at ``times`` (a held input).
        adjoint: fixed-step methods: the discrete adjoint (the exact gradient of the steps,
            recomputed interval by interval in the backward pass so that only the states at
            ``times`` are stored). Adaptive methods: torchdiffeq's continuous adjoint, one sample
            interval at a time; ``func`` must then offer ``segment(j)`` (itself on interval j)
            and ``path_tensors()`` (the tensors besides its parameters that it reads).
        options: ``max_num_steps`` (the step budget of the whole solve, default
            ``max(MAX_STEPS, 100 * T)``); adaptive methods: ``first_step``, ``max_step``,
            ``safety``, ``ifactor``, ``dfactor``, and with ``adjoint=True`` torchdiffeq's
            ``adjoint_rtol``, ``adjoint_atol``, ``adjoint_method``, ``adjoint_options``;
            ``scipy_solver``: ``solver``. Anything else raises a ValueError.
        probes: zeros of shape (T + 1, batch, state) requiring grad, added to the state at each
            output time so that gradients with respect to them are dLoss/dy(t_k) (fixed-step
            methods only).
        stats: a ``SolverStats`` to add this solve's counts to.

    Returns:
        ``(trajectory, nfe)``: trajectory (T + 1, batch, state), and the number of forward
        evaluations of ``func``.

    Raises:
        ValueError: a bad argument or option, a method rnnode does not support, a fixed grid
            with more steps than the budget, or ``scipy_solver`` where gradients are needed.
        StepBudgetError: an adaptive method used up the step budget (the message says "stiff"
            when its steps had fallen far below the sample intervals) or its step underflowed.
        DivergenceError: the state became non-finite (the message says "stiff" when a fixed
            step exceeds the method's stability limit for a stable field).
    """
    check_method(method)
    opts, budget, adjoint_kw = _check_options(method, options, adjoint)
    _check_arguments(func, y0, times, method, step_size, rtol, atol)
    num_intervals = times.shape[0] - 1
    user_set = budget is not None
    budget = budget if user_set else default_budget(num_intervals)
    fixed = method in FIXED_METHODS or method in FUSED_METHODS
    if probes is not None and not fixed:
        raise ValueError(
            f"method: state gradients need a fixed-step method {FIXED_METHODS}; "
            f"got method={method!r}"
        )

    def on_budget(t, y=None, dt=None):
        return _out_of_budget(method, budget, user_set, times, t, dt, func=func, y=y, rtol=rtol)

    # Evaluations bound scipy's loop (its steps are its own); rnnode's loops and the adjoint's
    # (through torchdiffeq's step callbacks) count steps.
    tally = _Tally(stats, budget * _EVALS_PER_STEP if method == "scipy_solver" else None, on_budget)
    # scipy's loop would shrink its step to underflow on a non-finite state: check each
    # evaluation. rnnode's loops check once per step (fixed: at the end; adaptive: the error).
    counted = _Counted(func, tally, check_finite=method == "scipy_solver")
    # A field that can be told the sample interval of its evaluations reads its input there,
    # without looking the interval up on the host.
    enter = getattr(func, "at_interval", None)
    per_interval: list[int] | None = None
    rejected = 0
    if fixed:
        grid, counts = step_grid(times, step_size)
        _check_fixed_budget(method, step_size, counts, budget, user_set, times)
        _check_fixed_stability(func, method, times, counts, step_size)
        # Stages at a step's end must see the interval the step belongs to, not the next sample;
        # Euler has no such stage (it evaluates at the step's start only). A field told each
        # step's interval (``enter``) reads it from there, at any t.
        perturb = discontinuous and method != "euler" and enter is None
        if method in FUSED_METHODS:
            step = FusedStepper(func, tally, opts.get("unfolds", DEFAULT_UNFOLDS))
            step.tensor_widths = grid.requires_grad and torch.is_grad_enabled()
        elif grid.requires_grad and torch.is_grad_enabled():
            step = _TensorStepper(method, _Perturbed(counted), y0, perturb)
        else:
            step = _LeanStepper(method, _Perturbed(counted), perturb)
        recompute = adjoint and torch.is_grad_enabled()
        trajectory = _run_fixed(step, y0, grid, counts, probes, recompute=recompute, enter=enter)
        per_interval = counts
    elif method == "scipy_solver":
        trajectory = _td.scipy_solve(counted, y0, times, rtol, atol, **opts)
    elif adjoint:
        trajectory, per_interval = _adjoint_by_interval(
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
        rejected = tally.rejected
    else:
        # Step exactly onto every sample time: the input is only piecewise smooth (its knots,
        # and the constant extension past t_T), and the dense output of a step straddling a
        # knot loses accuracy (seen: 13x the tolerance with dopri5 and a cubic input).
        jumps = discontinuous and times.shape[0] > 2
        stepper = AdaptiveRungeKutta(method, _Perturbed(counted), y0, rtol, atol, **opts)
        try:
            trajectory, per_interval = _run_adaptive(
                stepper, y0, times, budget, user_set, method, jumps, enter, field=func
            )
        finally:
            if enter is not None:
                enter(None)
        rejected = stepper.rejected
    tally.phase = "backward"
    if stats is not None:
        stats.nfe += tally.nfe
        if per_interval is not None:
            stats._add_steps(per_interval, rejected)
    # One reduction on the hot path: a sum is finite when every entry is; only when it is not
    # (a non-finite entry, or finite ones summing past the float's range) look closer.
    finite = torch.isfinite(trajectory.detach().sum())
    # After fixed steps, a field whose exact flow stays in a box (``box_excess``) is checked in
    # the same synchronisation: a state outside it means the steps were unstable.
    excess = func.box_excess(trajectory) if fixed and hasattr(func, "box_excess") else None
    ok = finite if excess is None else finite & (excess <= 1 + _BOX_SLACK)
    if bool(ok):
        return trajectory, tally.nfe
    if bool(finite):
        raise _box_error(func, trajectory, times, method, step_size)
    finite = torch.isfinite(trajectory.detach()).flatten(1).all(dim=1)
    if not bool(finite.all()):
        raise _nonfinite_error(func, y0, times, trajectory, method, step_size)
    raise _box_error(func, trajectory, times, method, step_size)
