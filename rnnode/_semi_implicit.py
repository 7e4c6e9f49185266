"""The fused semi-implicit Euler step of liquid time-constant networks (``method="ltc_fused"``).

For a field in conductance form, ``cm dv/dt = numerator(v) - denominator(v) * v`` (``cell="ltc"``,
``LTCField.conductances``), Hasani et al. (AAAI 2021) and ncps step it with the leak term
implicit and the conductances explicit:

    v_{n+1} = (cm / dt * v_n + numerator(v_n)) / (cm / dt + denominator(v_n) + epsilon),

``unfolds`` such steps of ``dt = h / unfolds`` per solver step h (ncps: ``ode_unfolds``, default
6, over each sample's ``elapsed_time``). With the default one solver step per sample interval,
this is ``ncps.torch.LTCCell``'s ``_ode_solver`` exactly. The step is first-order accurate:
against the ODE's solution (tests/test_ltc_continuous_limit.py, an AutoNCP(8, 2) LTC over five
irregular samples) the largest state error is 3.1e-2 at ncps's 6 unfolds, 1.6e-2 at 12, 2.1e-3
at 96, an observed order of 0.99. Unlike explicit Euler, it keeps v between the reversal
potentials whatever dt (a convex combination of v_n, vleak and the erevs when epsilon = 0).

Per-sample times (a shared clock s with dt_b/ds per sequence, see ``ODERNN``): the stack's
conductance form in s is ``(cm / speed) dv/ds = numerator - denominator * v``, so each sequence
steps with its own dt_b.
"""

from __future__ import annotations

import torch

from ._validate import check_int

__all__ = ["DEFAULT_UNFOLDS", "FUSED_METHODS", "FusedStepper", "stack_conductances"]

#: Methods that step a field by its own structure rather than by a Runge-Kutta tableau.
FUSED_METHODS: tuple[str, ...] = ("ltc_fused",)
#: The options each fused method takes (besides ``max_num_steps``).
FUSED_OPTIONS: dict[str, tuple[str, ...]] = {"ltc_fused": ("unfolds",)}
#: ncps's ``ode_unfolds`` default.
DEFAULT_UNFOLDS = 6


def check_unfolds(value: object) -> int:
    """A positive integer number of unfolds (TypeError for a non-integer)."""
    return check_int("options['unfolds']", value, minimum=1)


def stack_conductances(ode, s: torch.Tensor, y: torch.Tensor):
    """``(cm, numerator, denominator, epsilon)`` of a stack's ODE (``rnnode._stack_ode._StackODE``)
    at clock time s and state y (B, sum of states): every field's conductance form, concatenated
    in the ODE's layout; cm divided by the speed dt_b/ds under per-sample times."""
    fields = list(ode.fields)
    missing = [type(f).__name__ for f in fields if not hasattr(f, "conductances")]
    if missing:
        raise ValueError(
            f"method: 'ltc_fused' steps fields in conductance form (cell='ltc'); got fields "
            f"{sorted(set(missing))} without ``conductances``"
        )
    t = s if ode.clock is None else ode._read(ode.clock, s)
    if len(fields) == 1 and not ode.internal[0] and ode.raw_columns[0] is None:
        states, drives = [y], [ode._read(ode.paths[0], s)]
    else:
        states = list(ode.unpack(y))
        drives = ode.drives(s, states)
    parts = [f.conductances(t, v, u) for f, v, u in zip(fields, states, drives, strict=True)]
    cm, numerator, denominator = (
        p[0] if len(p) == 1 else torch.cat(torch.broadcast_tensors(*p), dim=-1)
        for p in zip(*parts, strict=True)
    )
    if len({f.epsilon for f in fields}) == 1:
        epsilon: float | torch.Tensor = fields[0].epsilon
    else:
        epsilon = torch.cat([denominator.new_full((f.hidden_size,), f.epsilon) for f in fields])
    if ode.speed is not None:
        cm = cm / ode._read(ode.speed, s)
    return cm, numerator, denominator, epsilon


class FusedStepper:
    """``y1 = stepper(t0, h, t1, y)``: ``unfolds`` fused semi-implicit steps of h / unfolds,
    each evaluating the conductances once at t0 (the input held on the step, as ncps holds each
    sample), counted in ``tally.nfe``.

    ``func`` offers ``conductances(s, y)`` returning ``(cm, numerator, denominator,
    epsilon)``, or is an ODERNN stack ODE (``stack_conductances``).
    """

    #: Whether the solve passes the step sizes as tensors (times that need a gradient).
    tensor_widths = False

    def __init__(self, func, tally, unfolds: int):
        self.func = func
        self.tally = tally
        self.unfolds = unfolds
        own = getattr(func, "conductances", None)
        if own is None and not hasattr(func, "fields"):
            raise ValueError(
                "method: 'ltc_fused' steps a field in conductance form (an ODERNN with "
                f"cell='ltc'); got {type(func).__name__}, which offers no conductances"
            )
        self._conductances = own or (lambda s, y: stack_conductances(func, s, y))

    def __call__(self, t0: torch.Tensor, h, t1: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        dt = h / self.unfolds
        cm_t = None
        for _ in range(self.unfolds):
            self.tally.nfe += 1
            cm, numerator, denominator, epsilon = self._conductances(t0, y)
            if cm_t is None:  # cm / dt is loop invariant (as in ncps)
                cm_t = cm / dt
            y = (cm_t * y + numerator) / (cm_t + denominator + epsilon)
        return y
