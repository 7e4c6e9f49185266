"""The methods rnnode solves with, and the checks of a solve's arguments and options.

Every option is honoured or refused: unknown names, names that do not apply to the method, and
values of the wrong type or value raise (wrong type: TypeError; wrong value: ValueError, through
``rnnode._validate``), naming the option, what was expected and what came.
"""

from __future__ import annotations

import torch

from ._diagnostics import MAX_STEPS, ORDER, STEPS_PER_INTERVAL
from ._semi_implicit import FUSED_METHODS, FUSED_OPTIONS
from ._validate import check_choice, check_int, check_positive

__all__ = [
    "ADAPTIVE_METHODS",
    "ENGINES",
    "FIXED_METHODS",
    "METHODS",
    "SCIPY_SOLVERS",
    "check_engine",
    "check_method",
    "default_budget",
]

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

#: Who steps a solve: rnnode's own loops (the default), or the same solve through torchdiffeq's
#: public ``odeint`` / ``odeint_adjoint`` (the oracle of rnnode's steps, slower).
ENGINES: tuple[str, ...] = ("rnnode", "torchdiffeq")
#: Most evaluations one adaptive step may take (dopri8: 13 stages and a re-evaluation at a
#: jump): the bound on evaluations inside scipy's loop.
EVALS_PER_STEP = 16

#: The options each kind of method takes besides ``max_num_steps`` (torchdiffeq's names).
_ADAPTIVE_OPTIONS = ("first_step", "max_step", "safety", "ifactor", "dfactor")
_ADJOINT_OPTIONS = ("adjoint_rtol", "adjoint_atol", "adjoint_method", "adjoint_options")
#: The methods scipy.integrate.solve_ivp offers (``options={"solver": ...}``).
SCIPY_SOLVERS: tuple[str, ...] = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")


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
    return method


def default_budget(num_intervals: int) -> int:
    """The default step budget of a solve over ``num_intervals`` sample intervals."""
    return max(MAX_STEPS, STEPS_PER_INTERVAL * num_intervals)


def check_engine(engine: object) -> str:
    """``engine`` if it is one of ``ENGINES`` (TypeError: not a string; ValueError: another)."""
    return check_choice("engine", engine, ENGINES)


def _check_number(name, value, *, integer=False):
    """A positive integer (``integer``) or a positive finite number (``rnnode._validate``'s rule:
    wrong type TypeError, wrong value ValueError)."""
    if integer:
        return check_int(name, value, minimum=1)
    return check_positive(name, value)


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
        pairs = tuple(ORDER)
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
            + (f" (and with adjoint=True {_ADJOINT_OPTIONS})" if method in ORDER else "")
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
