"""``method="scipy_solver"``: ``scipy.integrate.solve_ivp`` on the flattened state, no gradients.

The state is handed to scipy as a float64 vector, the field evaluated under ``torch.no_grad()``
in the state's dtype and device, and the solution read at the sample times (``t_eval``), as
torchdiffeq's ``scipy_solver`` does.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp

__all__ = ["scipy_solve"]


def scipy_solve(func, y0: torch.Tensor, times: torch.Tensor, rtol: float, atol: float,
                solver: str = "LSODA") -> torch.Tensor:  # fmt: skip
    """Solve dy/dt = func(t, y) with ``solve_ivp(method=solver)`` and return y at ``times``,
    (T + 1, *y0.shape) in y0's dtype and device."""
    dtype, device, shape = y0.dtype, y0.device, y0.shape

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        t_ = torch.tensor(t).to(device, dtype)
        y_ = torch.reshape(torch.tensor(y).to(device, dtype), shape)
        with torch.no_grad():
            f = func(t_, y_)
        return f.detach().cpu().numpy().reshape(-1)

    t = times.detach().cpu().numpy()
    solution = solve_ivp(  # solver: one of SCIPY_SOLVERS
        rhs,
        t_span=[t.min(), t.max()],
        y0=y0.detach().cpu().numpy().reshape(-1),
        t_eval=t,
        method=solver,
        rtol=rtol,
        atol=atol,
    )
    if not solution.success:
        from ._diagnostics import StepBudgetError

        raise StepBudgetError(f"scipy_solver ({solver}): scipy stopped: {solution.message}")
    return torch.tensor(solution.y).T.to(device, dtype).reshape(-1, *shape)
