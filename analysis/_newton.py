"""Batched damped Newton's method for roots of a field (private; fixed points, stability maps)."""

from __future__ import annotations

import torch

from rnnode._validate import check_int, check_positive


def _newton(field, jac, h: torch.Tensor, *args, tol: float, max_iter: int, halvings: int = 8):
    """Batched damped Newton's method for field(h, *args) = 0 from the rows of h (B, n).

    Each step h <- h - alpha J^{-1} F halves alpha (from 1, at most ``halvings`` times) until
    ||F||_2 decreases (the Newton direction is a descent direction of ||F||^2), so starts far
    from a root do not overshoot into another basin or diverge. Rows stop moving once their
    residual max |F| is below ``tol``, or once no step decreases ||F|| (a minimum of ||F|| that
    is no root). Returns (h, converged).
    """
    h = h.clone()
    residual = field(h, *args)
    stalled = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
    for _ in range(max_iter):
        active = torch.nonzero((residual.abs().amax(-1) >= tol) & ~stalled).squeeze(-1)
        if not active.numel():
            break
        sub = [a[active] for a in args]
        J, rhs = jac(h[active], *sub), residual[active].unsqueeze(-1)
        try:
            step = torch.linalg.solve(J, rhs).squeeze(-1)
        except torch.linalg.LinAlgError:
            # A singular Jacobian somewhere: the minimum-norm least-squares step, by the
            # pseudo-inverse (SVD). Not lstsq: its default CPU driver (gelsy) returned zero
            # steps for rank-deficient batches, and CUDA's gels needs full rank.
            step = (torch.linalg.pinv(J) @ rhs).squeeze(-1)
        old = residual[active].norm(dim=-1)
        alpha = 1.0
        pending = torch.arange(active.numel(), device=h.device)
        for _ in range(halvings + 1):
            rows = active[pending]
            trial = h[rows] - alpha * step[pending]
            trial_residual = field(trial, *[a[pending] for a in sub])
            better = trial_residual.norm(dim=-1) < old[pending]
            h[rows[better]] = trial[better]
            residual[rows[better]] = trial_residual[better]
            pending = pending[~better]
            if not pending.numel():
                break
            alpha /= 2
        stalled[active[pending]] = True
    return h, residual.abs().amax(-1) < tol


def _check_newton(tol, max_iter, dtype) -> tuple[float, int]:
    """Newton's tolerance (default: reachable in ``dtype``) and step budget, checked."""
    if tol is None:
        tol = 1e-10 if dtype == torch.float64 else 50 * torch.finfo(dtype).eps
    return check_positive("tol", tol), check_int("max_iter", max_iter, minimum=1)
