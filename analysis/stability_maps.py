"""Stability maps: the stability of a stack's fixed point over a grid of two parameters.

For every (p, q) on the grid the fixed point h* of dh/dt = F(h, x) is found by Newton's method
and the eigenvalues lambda of J = dF/dh there give max Re lambda (negative: locally stable) and the
spectral radius max |R(dt lambda)| of a step method's map (below 1: the discretized stack is
stable too); see ``rnnode.analysis.jacobians``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.func import functional_call, jacrev, vmap

from rnnode import ODERNN
from rnnode._validate import check_array, check_int, check_nonnegative, check_positive

from ._newton import _check_newton, _newton
from .jacobians import (
    _CHUNK,
    _block_eigenvalues,
    _check_model,
    _state_shape,
    _step_polynomial,
    spectral_radius,
)

__all__ = ["Parametrize", "StabilityMap", "scale_recurrent_and_input", "stability_map"]

Parametrize = Callable[
    [dict[str, torch.Tensor], torch.Tensor, torch.Tensor],
    tuple[dict[str, torch.Tensor], torch.Tensor],
]


class _JointField(nn.Module):
    """``model.joint_field`` as a module's forward, so that functional_call can swap weights."""

    def __init__(self, model: ODERNN):
        super().__init__()
        self.model = model

    def forward(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.model.joint_field(state, x)


def scale_recurrent_and_input(
    params: dict[str, torch.Tensor], p: torch.Tensor, q: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The default map of the stability map's two parameters: every W_hh scaled by p, x = q.

    Arguments:
        params: the model's parameters by name (``model.named_parameters()``).
        p: recurrent weight scale (0-d).
        q: input level (0-d): every input channel equals q.

    Returns:
        ``(overrides, x)``: parameters to replace and the constant input (input_size,).
    """
    overrides = {k: p * v for k, v in params.items() if k.endswith("weight_hh")}
    # The first weight_ih in parameter order is the bottom layer's, which reads the input.
    size = next(v for k, v in params.items() if k.endswith("weight_ih")).shape[-1]
    return overrides, q * torch.ones(size, dtype=p.dtype, device=p.device)


@dataclass
class StabilityMap:
    """Stability of the fixed point over a 2-D parameter grid (detached torch tensors).

    Attributes:
        p, q: (P,) and (Q,) the parameter values (rows and columns of the maps).
        max_real: (P, Q) the largest real part of the eigenvalues of J at the fixed point
            (negative: locally stable continuous-time stack). NaN where Newton did not converge.
        spectral_radius: (P, Q) max |R(dt lambda)| of the step map of ``method`` at step ``dt``
            (below 1: the discretized stack is stable too).
        fixed_points: (P, Q, num_layers, state_size) the fixed points.
        converged: (P, Q) whether Newton's method converged.
        method, dt: the solver whose step map was analysed.
    """

    p: torch.Tensor
    q: torch.Tensor
    max_real: torch.Tensor
    spectral_radius: torch.Tensor
    fixed_points: torch.Tensor
    converged: torch.Tensor
    method: str
    dt: float

    def numpy(self) -> StabilityMap:
        """The same map with numpy arrays in place of the tensors."""
        fields = ("p", "q", "max_real", "spectral_radius", "fixed_points", "converged")
        # Any: the numpy twin holds arrays where this map holds tensors.
        arrays: dict[str, Any] = {k: np.asarray(getattr(self, k)) for k in fields}
        return dataclasses.replace(self, **arrays)


def stability_map(
    model: ODERNN,
    p_values: ArrayLike,
    q_values: ArrayLike,
    parametrize: Parametrize | None = None,
    *,
    method: str = "euler",
    dt: float = 1.0,
    h0: torch.Tensor | None = None,
    num_starts: int = 8,
    radius: float = 1.0,
    tol: float | None = None,
    max_iter: int = 30,
    seed: int = 0,
) -> StabilityMap:
    """Largest real part of the eigenvalues of J at the fixed point over a grid of (p, q).

    For every grid point, ``parametrize(params, p, q)`` gives the parameter overrides and the
    constant input x; the fixed point is found by Newton's method from ``h0`` (default: the zero
    state, so the map follows the resting state that the input moves). Where that start stalls
    in a minimum of ||F|| that is no root, Newton restarts from the fixed points of converged
    neighbours on the grid (natural continuation: lower p first, then lower q, higher q,
    higher p), round after round, and as a last resort from ``num_starts - 1`` random states in
    [-radius, radius]^n, keeping the root closest to the point's start. The eigenvalues of J
    there give max Re lambda and the step map's spectral radius max |R(dt lambda)|. Everything
    runs batched over the grid: fields and Jacobians under ``torch.func.vmap`` with
    ``functional_call``, eigenvalues per diagonal block in one ``torch.linalg.eigvals``.

    Arguments:
        model: a unidirectional ``ODERNN``.
        p_values: (P,) values of the first parameter.
        q_values: (Q,) values of the second parameter.
        parametrize: ``(params, p, q) -> (overrides, x)``, vmappable (tensor operations only);
            default ``scale_recurrent_and_input`` (p scales every W_hh, q is the input level).
        method: solver of the step map (a key of ``STEP_POLYNOMIALS``).
        dt: its step size.
        h0: (num_layers, state_size) Newton's starting state (default zeros), or one per grid
            point, (P, Q, num_layers, state_size): for example a previous map's
            ``fixed_points``, to redo the spectra for another ``method`` or ``dt`` (Newton then
            stops at once).
        num_starts, radius, seed: the restarts where the start from h0 fails (seeded).
        tol, max_iter: Newton's residual tolerance (default 1e-10 in float64, 50 eps in other
            dtypes, so that float32 maps converge) and step budget.

    Returns:
        ``StabilityMap`` of detached torch tensors.
    """
    _check_model(model)
    _step_polynomial(method)
    dt = check_positive("dt", dt)
    if parametrize is None and not any(
        k.endswith("weight_hh") for k, _ in model.named_parameters()
    ):
        raise ValueError(
            "parametrize: the default scales every weight_hh, and this model has none (its "
            f"cell is {model.cell!r}); pass a parametrize(params, p, q) of its own"
        )
    parametrize = scale_recurrent_and_input if parametrize is None else parametrize
    if not callable(parametrize):
        raise TypeError(
            f"parametrize: expected a function (params, p, q) -> (overrides, x), "
            f"got {type(parametrize).__name__}"
        )
    dtype = model.layers[0].weight_ih.dtype
    tol, max_iter = _check_newton(tol, max_iter, dtype)
    radius = check_nonnegative("radius", radius)
    num_starts = check_int("num_starts", num_starts, minimum=1)
    seed = check_int("seed", seed)
    p = torch.as_tensor(check_array("p_values", p_values), dtype=dtype)
    q = torch.as_tensor(check_array("q_values", q_values), dtype=dtype)
    for name, v in (("p_values", p), ("q_values", q)):
        if v.dim() != 1 or v.numel() == 0 or not bool(torch.isfinite(v).all()):
            raise ValueError(
                f"{name}: expected a 1-D sequence of finite values, got {tuple(v.shape)}"
            )
    L, S = _state_shape(model)
    P, Q = p.shape[0], q.shape[0]
    h0 = torch.zeros(L, S, dtype=dtype) if h0 is None else torch.as_tensor(h0, dtype=dtype)
    if tuple(h0.shape) not in ((L, S), (P, Q, L, S)):
        raise ValueError(
            f"h0: expected shape (num_layers, state_size) = ({L}, {S}) or (P, Q, num_layers, "
            f"state_size) = ({P}, {Q}, {L}, {S}), got {tuple(h0.shape)}"
        )
    pp, qq = (g.reshape(-1) for g in torch.meshgrid(p, q, indexing="ij"))
    base = {k: v.detach() for k, v in model.named_parameters()}
    wrapper = _JointField(model)

    def field(h: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        overrides, x = parametrize(base, p, q)
        named = {f"model.{k}": v for k, v in overrides.items()}
        return functional_call(wrapper, named, (h.reshape(L, S), x)).reshape(-1)

    batched_field = vmap(field)
    batched_jac = vmap(jacrev(field), chunk_size=_CHUNK)
    with torch.no_grad():
        start = h0.detach().reshape(-1, L * S).expand(pp.shape[0], -1)
        h, converged = _newton(
            batched_field, batched_jac, start, pp, qq, tol=tol, max_iter=max_iter
        )
        solve = functools.partial(_newton, batched_field, batched_jac, tol=tol, max_iter=max_iter)
        _continue_from_neighbours(solve, h, converged, pp, qq, (P, Q))
        bad = torch.nonzero(~converged).squeeze(-1)
        if bad.numel() and num_starts > 1:
            tries = num_starts - 1
            generator = torch.Generator().manual_seed(seed)
            starts = 2 * torch.rand(bad.numel() * tries, L * S, generator=generator, dtype=dtype)
            again, ok = solve(
                (starts - 1) * radius,
                pp[bad].repeat_interleave(tries),
                qq[bad].repeat_interleave(tries),
            )
            again, ok = again.reshape(-1, tries, L * S), ok.reshape(-1, tries)
            distance = (again - start[bad, None]).norm(dim=-1).masked_fill(~ok, float("inf"))
            best = distance.argmin(dim=-1)
            found = ok.any(dim=-1)
            h[bad[found]] = again[found, best[found]]
            converged[bad[found]] = True
        jac = batched_jac(torch.nan_to_num(h), pp, qq)
        eig = _block_eigenvalues(jac, L)
        max_real = eig.real.amax(-1)
        step_radius = spectral_radius(eig, method, dt)
    nan = torch.tensor(float("nan"), dtype=dtype)
    shape = (P, Q)
    return StabilityMap(
        p=p,
        q=q,
        max_real=torch.where(converged, max_real, nan).reshape(shape),
        spectral_radius=torch.where(converged, step_radius, nan).reshape(shape),
        fixed_points=h.reshape(*shape, L, S),
        converged=converged.reshape(shape),
        method=method,
        dt=float(dt),
    )


def _continue_from_neighbours(solve, h, converged, pp, qq, shape) -> None:
    """Restart failed grid points from their converged neighbours' fixed points, in place.

    One batched Newton solve per round over every (failed point, converged neighbour) pair; a
    point takes the first neighbour in the order (p - 1, q - 1, q + 1, p + 1) whose start
    converged. Rounds repeat while they add points, so the solved region grows into the
    failed one.
    """
    P, Q = shape
    offsets = ((-1, 0), (0, -1), (0, 1), (1, 0))
    rows = torch.arange(P).repeat_interleave(Q)
    cols = torch.arange(Q).repeat(P)
    for _ in range(P + Q):
        failed = ~converged
        if not bool(failed.any()) or not bool(converged.any()):
            return
        targets, sources = [], []
        for di, dj in offsets:
            i, j = rows + di, cols + dj
            inside = (i >= 0) & (i < P) & (j >= 0) & (j < Q)
            neighbour = (i.clamp(0, P - 1) * Q + j.clamp(0, Q - 1)).where(inside, 0)
            pick = torch.nonzero(failed & inside & converged[neighbour]).squeeze(-1)
            targets.append(pick)
            sources.append(neighbour[pick])
        target, source = torch.cat(targets), torch.cat(sources)
        found, ok = solve(h[source], pp[target], qq[target])
        # Per target, the first candidate (in neighbour order) that converged.
        none = target.numel()
        key = torch.where(ok, torch.arange(none), none)
        first = torch.full((P * Q,), none).scatter_reduce(0, target, key, "amin")
        chosen = first[first < none]
        if not chosen.numel():
            return
        h[target[chosen]] = found[chosen]
        converged[target[chosen]] = True
