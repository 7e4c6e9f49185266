"""rnnode's one contract with torchdiffeq: every use of it, in one place.

What rnnode takes from torchdiffeq is its Runge-Kutta arithmetic (tableaus, the fixed-grid step
functions, the first step of an adaptive solve), its continuous adjoint and its scipy wrapper.
The loops around them are rnnode's own (``rnnode._solve``, and ``rnnode._adaptive`` for the
adaptive steps themselves): they count the steps and the evaluations, hold the step budget (also
under ``python -O``, where torchdiffeq's ``assert``-based budget is gone) and collect the
solution.

Private names used here, pinned by the dependency range in pyproject.toml (``>=0.2.4,<0.3``)
and by tests/test_solve_contract.py, which compares rnnode's solves with ``torchdiffeq.odeint``
on held, linear and cubic inputs for every method in ``rnnode.METHODS``:

- the solver classes in ``torchdiffeq._impl``: their ``_step_func`` (fixed grid), and the
  ``tableau`` and ``order`` of the adaptive pairs;
- ``torchdiffeq._impl.misc._select_initial_step`` (the first step of an adaptive solve);
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
from torchdiffeq._impl.misc import Perturb, _select_initial_step
from torchdiffeq._impl.scipy_wrapper import ScipyWrapperODESolver

__all__ = [
    "ADAPTIVE_SOLVERS",
    "FIXED_SOLVERS",
    "VERSION",
    "FixedStepper",
    "Perturb",
    "adaptive_tableau",
    "odeint_adjoint",
    "scipy_solve",
    "select_initial_step",
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


def adaptive_tableau(method: str) -> tuple[int, tuple, tuple, tuple, tuple]:
    """An embedded pair's ``(order, c, a, b, e)`` as numbers: stage times c_2..c_s, stage
    weights a (row i: the weights of stages 1..i in stage i + 1), solution weights b and error
    weights e (torchdiffeq's ``alpha``, ``beta``, ``c_sol``, ``c_error``)."""
    solver = ADAPTIVE_SOLVERS[method]
    tableau = solver.tableau
    return (
        solver.order,
        tuple(tableau.alpha.tolist()),
        tuple(tuple(row.tolist()) for row in tableau.beta),
        tuple(tableau.c_sol.tolist()),
        tuple(tableau.c_error.tolist()),
    )


def select_initial_step(func, t0, y0, order, rtol, atol, f0) -> torch.Tensor:
    """torchdiffeq's first step (Hairer, Norsett & Wanner, Sec. II.4) for a pair of ``order``."""
    return _select_initial_step(func, t0, y0, order - 1, rtol, atol, _rms_norm, f0=f0)


def scipy_solve(func, y0, times, rtol, atol, solver: str = "LSODA") -> torch.Tensor:
    """``scipy.integrate.solve_ivp`` through torchdiffeq's wrapper (no gradients)."""
    return ScipyWrapperODESolver(func=func, y0=y0, rtol=rtol, atol=atol, solver=solver).integrate(
        times
    )
