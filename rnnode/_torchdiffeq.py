"""rnnode's one contract with torchdiffeq: every use of it, in one place.

What rnnode takes from torchdiffeq is its Runge-Kutta arithmetic (tableaus, step functions, error
estimates, step-size control, dense output), its continuous adjoint and its scipy wrapper. The
loops around them are rnnode's own (``rnnode._solve``): they count the steps and the evaluations,
hold the step budget (also under ``python -O``, where torchdiffeq's ``assert``-based budget is
gone) and collect the solution.

Private names used here, pinned by the dependency range in pyproject.toml (``>=0.2.4,<0.3``)
and by tests/test_solve_contract.py, which compares rnnode's solves with ``torchdiffeq.odeint``
on held, linear and cubic inputs for every method in ``rnnode.METHODS``:

- the solver classes in ``torchdiffeq._impl`` and their ``_step_func`` (fixed grid),
  ``_before_integrate``, ``_adaptive_step`` and ``rk_state`` (adaptive Runge-Kutta);
- ``torchdiffeq._impl.interp._interp_evaluate`` (dense output inside the last step);
- ``torchdiffeq._impl.misc.Perturb`` (evaluate just after or before a knot).
"""

from __future__ import annotations

import torch
import torchdiffeq
from torchdiffeq import odeint_adjoint
from torchdiffeq._impl.adaptive_heun import AdaptiveHeunSolver
from torchdiffeq._impl.bosh3 import Bosh3Solver
from torchdiffeq._impl.dopri5 import Dopri5Solver
from torchdiffeq._impl.dopri8 import Dopri8Solver
from torchdiffeq._impl.fehlberg2 import Fehlberg2
from torchdiffeq._impl.fixed_grid import RK4, Euler, Heun3, Midpoint
from torchdiffeq._impl.interp import _interp_evaluate
from torchdiffeq._impl.misc import Perturb
from torchdiffeq._impl.scipy_wrapper import ScipyWrapperODESolver

__all__ = [
    "ADAPTIVE_SOLVERS",
    "FIXED_SOLVERS",
    "VERSION",
    "AdaptiveStepper",
    "FixedStepper",
    "Perturb",
    "odeint_adjoint",
    "scipy_solve",
]

VERSION: str = torchdiffeq.__version__

#: Fixed-grid methods and the number of field evaluations one step takes.
FIXED_SOLVERS = {"euler": Euler, "midpoint": Midpoint, "heun3": Heun3, "rk4": RK4}
#: Embedded Runge-Kutta pairs with error control.
ADAPTIVE_SOLVERS = {
    "dopri5": Dopri5Solver,
    "dopri8": Dopri8Solver,
    "bosh3": Bosh3Solver,
    "fehlberg2": Fehlberg2,
    "adaptive_heun": AdaptiveHeunSolver,
}


def _rms_norm(tensor: torch.Tensor) -> torch.Tensor:
    # torchdiffeq's default error norm (root mean square over all entries).
    return tensor.abs().pow(2).mean().sqrt()


class FixedStepper:
    """One step of a fixed-grid method: ``dy = stepper(t0, dt, t1, y)``.

    ``func(t, y, perturb=Perturb...)`` is the field; with ``perturb=True`` the first stage is
    evaluated just after t0 and a stage on t1 just before it (a field that jumps at the knots).
    """

    def __init__(self, method: str, func, y0: torch.Tensor, perturb: bool):
        self._solver = FIXED_SOLVERS[method](func=func, y0=y0, atol=0.0, perturb=perturb)

    def __call__(self, t0, dt, t1, y):
        dy, _ = self._solver._step_func(self._solver.func, t0, dt, t1, y)
        return dy


class _Callbacks:
    """The field as torchdiffeq's adaptive solvers call it, counting accepted and rejected steps."""

    def __init__(self, func):
        self.func = func
        self.accepted = 0
        self.rejected = 0

    def __call__(self, t, y, perturb=Perturb.NONE):
        return self.func(t, y, perturb=perturb)

    def callback_step(self, t0, y0, dt):
        pass

    def callback_accept_step(self, t0, y0, dt):
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt):
        self.rejected += 1


class AdaptiveStepper:
    """An adaptive Runge-Kutta solve driven step by step.

    ``start(times)`` evaluates the field at the start and picks the first step; each ``step()``
    attempts one step (accepted or rejected); ``t`` is the time reached, ``dt`` the size of the
    next attempt; ``value_at(t)`` is the dense output inside the last accepted step.

    Arguments:
        func: the field, called as ``func(t, y, perturb=Perturb...)``.
        step_t: times to step exactly onto (the field is smooth across them).
        jump_t: times where the field jumps (the solver steps onto them and re-evaluates after).
        options: the solver's own options (first_step, max_step, safety, ifactor, dfactor).
    """

    def __init__(self, method, func, y0, rtol, atol, step_t=None, jump_t=None, **options):
        self._func = _Callbacks(func)
        self._solver = ADAPTIVE_SOLVERS[method](
            func=self._func,
            y0=y0,
            rtol=rtol,
            atol=atol,
            norm=_rms_norm,
            step_t=step_t,
            jump_t=jump_t,
            **options,
        )
        self.time_dtype = self._solver.dtype

    @property
    def accepted(self) -> int:
        return self._func.accepted

    @property
    def rejected(self) -> int:
        return self._func.rejected

    def start(self, times: torch.Tensor) -> None:
        self._solver._before_integrate(times.to(self.time_dtype))

    @property
    def t(self) -> torch.Tensor:
        return self._solver.rk_state.t1

    @property
    def dt(self) -> torch.Tensor:
        return self._solver.rk_state.dt

    def step(self) -> None:
        self._solver.rk_state = self._solver._adaptive_step(self._solver.rk_state)

    def value_at(self, t: torch.Tensor) -> torch.Tensor:
        rk = self._solver.rk_state
        return _interp_evaluate(rk.interp_coeff, rk.t0, rk.t1, t.to(self.time_dtype))


def scipy_solve(func, y0, times, rtol, atol, solver: str = "LSODA") -> torch.Tensor:
    """``scipy.integrate.solve_ivp`` through torchdiffeq's wrapper (no gradients)."""
    return ScipyWrapperODESolver(func=func, y0=y0, rtol=rtol, atol=atol, solver=solver).integrate(
        times
    )
