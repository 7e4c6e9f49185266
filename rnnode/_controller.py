"""The step-size control of rnnode's adaptive solves, apart from the stepper: the first step,
the error ratio that accepts or rejects an attempt, and the next step's size.

An attempt from t0 by h with error estimate err (``rnnode._rk``, ``Tableau.e``) is accepted when

    r = rms(err / (atol + rtol max(|y0|, |y1|))) <= 1,

and the next attempt is h min(ifactor, max(safety r^(-1/order), dfactor)), with dfactor 1 after
an accepted step and h ifactor when r = 0 (Hairer, Norsett & Wanner, Solving ODEs I, 2nd ed.,
Sec. II.4, eqs. 4.11-4.13). The first step is chosen as in that section ("Starting step size"),
from the size of y0, of f(t0, y0) and of f's change over a trial Euler step. The constants
and the arithmetic (dtypes included) are torchdiffeq's, so that rnnode takes the steps
``torchdiffeq.odeint`` takes (tests/test_solve_contract.py).

Control runs on the host: times and step sizes are Python floats (doubles, as torchdiffeq's
float64 time tensors), and an attempt reads one number from the device, its error ratio.
"""

from __future__ import annotations

import math

import torch

__all__ = ["StepSizeController", "rms_norm"]


def rms_norm(tensor: torch.Tensor) -> torch.Tensor:
    """The root mean square over all entries (a 0-dimensional tensor)."""
    return tensor.abs().pow(2).mean().sqrt()


class StepSizeController:
    """The step-size rule of an embedded pair whose propagated solution has ``order``.

    Arguments:
        order: the order of the pair's solution (``Tableau.order``).
        rtol, atol: relative and absolute tolerances.
        first_step: the first attempt's size (None: chosen by ``initial_step``).
        max_step: the largest attempt.
        safety, ifactor, dfactor: the rule's safety factor, largest growth and largest
            shrinking (torchdiffeq's options of the same names).
    """

    def __init__(
        self,
        order: int,
        rtol: float,
        atol: float,
        *,
        first_step: float | None = None,
        max_step: float = math.inf,
        safety: float = 0.9,
        ifactor: float = 10.0,
        dfactor: float = 0.2,
    ):
        self.order = order
        self.rtol, self.atol = rtol, atol
        self.first_step, self.max_step = first_step, max_step
        self.safety, self.ifactor, self.dfactor = safety, ifactor, dfactor

    @torch.no_grad()
    def initial_step(self, func, t0: torch.Tensor, y0: torch.Tensor, f0: torch.Tensor) -> float:
        """The first attempt's size: ``first_step`` where given, else Hairer, Norsett & Wanner's
        choice for a method of order ``order - 1`` (torchdiffeq's convention); one more
        evaluation of ``func``."""
        if self.first_step is not None:
            return float(self.first_step)
        dtype, device = y0.dtype, y0.device
        scale = self.atol + torch.abs(y0) * self.rtol
        d0 = rms_norm(y0 / scale).abs()
        d1 = rms_norm(f0 / scale).abs()
        if d0 < 1e-5 or d1 < 1e-5:
            h0 = torch.tensor(1e-6, dtype=dtype, device=device)
        else:
            h0 = 0.01 * d0 / d1
        h0 = h0.abs()
        f1 = func(t0 + h0, y0 + h0 * f0)
        d2 = torch.abs(rms_norm((f1 - f0) / scale) / h0)
        if d1 <= 1e-15 and d2 <= 1e-15:
            h1 = torch.max(torch.tensor(1e-6, dtype=dtype, device=device), h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1.0 / float(self.order))
        h1 = h1.abs()
        return float(torch.min(100 * h0, h1).to(torch.float64))

    def error_ratio(self, error: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor) -> torch.Tensor:
        """r = rms(error / (atol + rtol max(|y0|, |y1|))), a 0-dimensional tensor (on the
        state's device: reading it is the attempt's one synchronisation)."""
        tolerance = self.atol + self.rtol * torch.maximum(y0.abs(), y1.abs())
        return rms_norm(error / tolerance)

    def next_step(self, dt: float, ratio: float) -> float:
        """The next attempt's size after an attempt of ``dt`` with error ratio ``ratio``,
        within [0, max_step]."""
        if ratio == 0.0:
            proposal = dt * self.ifactor
        else:
            dfactor = 1.0 if ratio < 1.0 else self.dfactor
            factor = min(self.ifactor, max(self.safety / ratio ** (1.0 / self.order), dfactor))
            proposal = dt * factor
        return min(max(proposal, 0.0), self.max_step)
