"""Why a solve failed, said in the solver's words: the errors and their messages.

``DivergenceError``: the state became non-finite, or a fixed-step solve left the box the exact
flow never leaves (the step was unstable). ``StepBudgetError``: the steps ran out; the message
tells stiffness (a fast decay holds an explicit step at the edge of its stability region) from
a tolerance too tight for the method's order (the step far inside it), by the field's dominant
rate where the budget ran out. Fixed steps are also checked before solving: against the step
budget, and against the method's stability limit for the field's fastest decay rate 1/tau.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "DivergenceError",
    "StepBudgetError",
    "box_error",
    "budget_source",
    "check_fixed_budget",
    "check_fixed_stability",
    "nonfinite_error",
    "out_of_budget",
]

#: Default step budget of a whole solve: ``max(MAX_STEPS, 100 * T)`` steps over T sample
#: intervals (accepted and rejected steps of adaptive methods, grid steps of fixed-step ones).
MAX_STEPS = 1_000
STEPS_PER_INTERVAL = 100

#: Where each fixed-step method's stability region ends on the negative real axis: the largest
#: x = h * rate with |R(-x)| <= 1, R the stability polynomial of an s-stage method of order s
#: (s <= 4), 1 + z + ... + z^s / s!, whose root is found numerically (Hairer & Wanner, Solving
#: ODEs II, Sec. IV.2).
STABILITY_LIMIT = {
    "euler": 2.0,
    "midpoint": 2.0,
    "heun3": 2.512745326618329,
    "rk4": 2.7852935634052822,
}
#: The relative slack of the box check after a fixed-step solve: rounding only.
BOX_SLACK = 1e-6
#: The order of each embedded pair's propagated solution: the error per step shrinks as
#: step^(order + 1), so a low order needs many steps at a tight tolerance.
ORDER = {"dopri5": 5, "dopri8": 8, "bosh3": 3, "fehlberg2": 2, "adaptive_heun": 2}
#: Below this step x fastest rate, an explicit step is far inside its stability region: what
#: limits it is the tolerance, not stiffness (the pairs' real-axis limits lie between 2 and 6).
_ACCURACY_LIMITED = 0.5


class DivergenceError(RuntimeError):
    """The dynamics blew up: the state became non-finite."""


class StepBudgetError(RuntimeError):
    """A solve used up its step budget (``max_num_steps``) or its step size underflowed."""


def budget_source(budget: int, user_set: bool, num_intervals: int) -> str:
    if user_set:
        return f"the step budget max_num_steps={budget} set in options"
    return (
        f"the default step budget of {budget} steps (max(MAX_STEPS, {STEPS_PER_INTERVAL} x "
        f"{num_intervals} sample intervals); raise it with options={{'max_num_steps': ...}})"
    )


def out_of_budget(
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
        f"{method}{what} used up {budget_source(budget, user_set, times.shape[0] - 1)} at "
        f"t = {float(t_now):.6g} of [{float(times[0]):.6g}, {float(times[-1]):.6g}]"
    )
    dt = None if dt is None else abs(float(dt))
    if dt is not None and dt < 1e-2 * shortest and func is not None and y is not None:
        rate = abs(_dominant_rate(func, torch.as_tensor(t_now).to(y.dtype), y.detach()))
        if math.isfinite(rate) and dt * rate < _ACCURACY_LIMITED:
            order = ORDER.get(method)
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


def check_fixed_stability(func, method, times, counts, step_size):
    """Refuse fixed steps beyond ``method``'s stability limit for the field's fastest leak.

    ``func.decay_rate()`` (where the field offers it) is the fastest decay rate 1/tau of a
    leak -h/tau; a step h with h / tau beyond the method's real-axis limit amplifies that
    decay's error at every step instead of damping it (explicit Euler: |1 - h / tau| > 1).
    """
    if method not in STABILITY_LIMIT:  # a fused step is implicit in the leak
        return
    rate_of = getattr(func, "decay_rate", None)
    rate = rate_of() if rate_of is not None else None
    if rate is None:
        return
    rate = float(rate)
    widths = (times[1:] - times[:-1]).detach().abs()
    if step_size is None:  # one step per interval (the bridge): no host copy of the widths
        h = float(widths.max())
    else:
        h = max(w / c for w, c in zip(widths.tolist(), counts, strict=True))
    limit = STABILITY_LIMIT[method]
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


def box_error(func, trajectory, times, method, step_size) -> DivergenceError:
    """The error of a fixed-step trajectory outside the box its field's exact flow keeps
    (``func.box_excess``), naming the first sample time where it is out."""
    times = times.detach()
    excess = func.box_excess(trajectory)
    # The first sample time whose state is out of the box (the error path: host reads are fine).
    k = next(
        k
        for k in range(1, trajectory.shape[0])
        if float(func.box_excess(trajectory[[0, k]])) > 1 + BOX_SLACK
    )
    step = "one step per sample interval" if step_size is None else f"step_size={step_size}"
    return DivergenceError(
        f"the {method} solve with {step} left the bounded set that the exact flow never leaves "
        f"(|h| <= max(1, |h(0)|)), reaching {float(excess):.4g} times the bound by "
        f"t = {float(times[k]):.6g}: the step is unstable for this field (its fastest rate, "
        "set by the recurrent weights as well as by tau, exceeds the method's stability "
        "limit), or too large to keep the bound (an Euler step beyond tau overshoots it). Use "
        "a smaller step_size (at most the smallest tau), a larger tau, or an adaptive method"
    )


def check_fixed_budget(method, step_size, counts, budget, user_set, times):
    total = sum(counts)
    if total > budget:
        times = times.detach()
        raise ValueError(
            f"step_size: {step_size} makes {total} {method} steps over "
            f"[{float(times[0]):.6g}, {float(times[-1]):.6g}], more than "
            f"{budget_source(budget, user_set, len(counts))}; use a larger step_size or set "
            f"options={{'max_num_steps': {total}}}"
        )


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


def nonfinite_error(func, y0, times, trajectory, method, counts) -> DivergenceError:
    """The error of a trajectory with a non-finite state; ``counts``: the fixed steps per sample
    interval (None for an adaptive method). A fixed step beyond the stability limit of the
    field's fastest rate at the start is called stiff, anything else diverging."""
    times = times.detach()
    finite = torch.isfinite(trajectory.detach()).flatten(1).all(dim=1)
    k = int(torch.nonzero(~finite)[0])
    where = (
        f"the state became non-finite between t = {float(times[k - 1])} and "
        f"t = {float(times[k])} ({method})"
    )
    if counts is not None and method in STABILITY_LIMIT:
        widths = times[1:] - times[:-1]
        h = max(float(w) / c for w, c in zip(widths.tolist(), counts, strict=True))
        rate = _dominant_rate(func, times[0], y0.detach())
        limit = STABILITY_LIMIT[method]
        if rate < 0 and h * -rate > limit:
            return DivergenceError(
                f"{where}: the system is stiff and stable, but its fastest rate at the start, "
                f"{rate:.3g}, makes {method} steps of {h:.3g} unstable (step x rate = "
                f"{h * -rate:.3g}; {method} is stable up to {limit:.4g}). Use a step_size below "
                f"{limit / -rate:.3g}, an adaptive method, or a larger tau"
            )
    return DivergenceError(f"{where}: the dynamics diverge")
