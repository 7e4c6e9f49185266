"""Local stability of a continuously coupled stack: Jacobians, fixed points, maps, Lyapunov.

The stack dh/dt = F(h, x) (``ODERNN.joint_field``, ``coupling="continuous"``) is locally stable at
a fixed point h* (F(h*, x) = 0) when every eigenvalue of the Jacobian J = dF/dh has a negative
real part, and unstable when one has a positive real part. A one-step method with step dt maps
h_{n+1} = Psi(h_n), linearized at h* to the stability polynomial R(dt J) (explicit Euler:
I + dt J; RK4: I + dt J + (dt J)^2 / 2 + (dt J)^3 / 6 + (dt J)^4 / 24), whose spectral radius
max |R(dt lambda)| must stay below 1: the discretization adds its own stability region.

Every layer is driven only by layers below it, so J is block lower triangular and its eigenvalues
are those of the L diagonal blocks dF_l/dh_l; ``eigenvalues`` uses this to solve L small
eigenproblems instead of one large one. Lyapunov exponents follow the QR method of Benettin et
al. (1980), Meccanica 15, 9-20.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from numpy.typing import ArrayLike
from torch import nn
from torch.func import functional_call, jacrev, vmap

from rnnode import FIXED_METHODS, ODERNN, DivergenceError, integrate

from ._common import check_real

__all__ = [
    "FixedPoints",
    "STEP_POLYNOMIALS",
    "Parametrize",
    "StabilityMap",
    "eigenvalues",
    "find_fixed_points",
    "fixed_points",
    "jacobian",
    "lyapunov_exponents",
    "scale_recurrent_and_input",
    "spectral_radius",
    "stability_map",
]

#: Coefficients of the stability polynomial R(z) = sum_k c_k z^k of the explicit Runge-Kutta
#: methods with as many stages as their order (torchdiffeq names): the Taylor polynomial of e^z.
#: Only methods that the installed torchdiffeq provides (``rnnode.FIXED_METHODS``) are listed.
STEP_POLYNOMIALS: dict[str, tuple[float, ...]] = {
    name: tuple(1.0 / math.factorial(k) for k in range(order + 1))
    for name, order in (("euler", 1), ("midpoint", 2), ("heun2", 2), ("heun3", 3), ("rk4", 4))
    if name in FIXED_METHODS
}

#: Points per vectorized Jacobian call: (chunk, n, n) intermediates stay in cache-sized memory,
#: where one call over a whole 64 x 64 grid would be bound by memory traffic.
_CHUNK = 512

Parametrize = Callable[
    [dict[str, torch.Tensor], torch.Tensor, torch.Tensor],
    tuple[dict[str, torch.Tensor], torch.Tensor],
]


def _check_model(model: ODERNN) -> None:
    if not isinstance(model, ODERNN):
        raise TypeError(
            f"model: expected an rnnode.ODERNN (convert a torch.nn.RNN, GRU or LSTM with "
            f"rnnode.from_torch), got {type(model).__name__}"
        )
    if model.bidirectional:
        raise ValueError(
            "model: stability analysis needs the joint field of a unidirectional stack; "
            "got bidirectional=True"
        )


def _state_shape(model: ODERNN) -> tuple[int, int]:
    return model.num_layers, model.layers[0].state_size


def _broadcast(model: ODERNN, h: torch.Tensor, x: torch.Tensor):
    """Broadcast h (..., L, S) against x (..., input_size), then flatten the leading dimensions."""
    L, S = _state_shape(model)
    if not isinstance(h, torch.Tensor) or h.dim() < 2 or tuple(h.shape[-2:]) != (L, S):
        got = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(
            f"h: expected a tensor of shape (..., num_layers, state_size) = (..., {L}, {S}), "
            f"got {got}"
        )
    x = torch.as_tensor(x, dtype=h.dtype, device=h.device)
    if x.dim() < 1 or x.shape[-1] != model.input_size:
        raise ValueError(
            f"x: expected shape (..., input_size) = (..., {model.input_size}), got {tuple(x.shape)}"
        )
    lead = torch.broadcast_shapes(h.shape[:-2], x.shape[:-1])
    h = h.expand(*lead, L, S).reshape(-1, L, S)
    x = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])
    return h, x, lead


def jacobian(
    model: ODERNN, h: torch.Tensor, x: torch.Tensor, *, create_graph: bool = False
) -> torch.Tensor:
    """J = dF/dh of the joint vector field dh/dt = F(h, x) of the continuously coupled stack.

    Row and column index ``layer * state_size + unit``; computed by forward-mode automatic
    differentiation of ``model.joint_field``, all n columns J e_j in one batched evaluation
    (the states repeated n times, each carrying one unit tangent).

    Arguments:
        model: a unidirectional ``ODERNN``.
        h: (..., num_layers, state_size) the stacked states (LSTM: state_size = 2 * hidden).
        x: (..., input_size) the constant input, broadcast against h's leading dimensions.
        create_graph: keep the graph to the parameters, h and x (default: detached).

    Returns:
        (..., num_layers * state_size, num_layers * state_size).
    """
    _check_model(model)
    flat_h, flat_x, lead = _broadcast(model, h, x)
    n = flat_h.shape[-2] * flat_h.shape[-1]
    eye = torch.eye(n, dtype=flat_h.dtype, device=flat_h.device)
    with torch.set_grad_enabled(create_graph):
        jac = torch.cat(
            [
                _tangents(model, flat_h[i : i + _CHUNK], flat_x[i : i + _CHUNK], eye)[1]
                for i in range(0, flat_h.shape[0], _CHUNK)
            ]
        )
    return jac.reshape(*lead, n, n)


def _tangents(model: ODERNN, h: torch.Tensor, x: torch.Tensor, V: torch.Tensor):
    """F(h, x) and the directional derivatives J V, by forward-mode AD in one evaluation.

    h: (B, L, S), x: (B, input_size), V: (B, n, k) or (n, k) tangents. Returns F (B, n) and
    J V (B, n, k).
    """
    B, L, S = h.shape
    k = V.shape[-1]
    with warnings.catch_warnings(), fwAD.dual_level():
        # torch's first forward-AD call loads decompositions written with the deprecated
        # torch.jit.script; the warning is about torch's internals, not about this call.
        warnings.filterwarnings("ignore", "`torch.jit.script`", DeprecationWarning)
        # make_dual needs memory of its own for every element, so no expanded views.
        tangent = V.expand(B, L * S, k).transpose(1, 2).reshape(B, k, L, S).contiguous()
        dual = fwAD.make_dual(h.unsqueeze(1).expand(B, k, L, S).contiguous(), tangent)
        out = fwAD.unpack_dual(model.joint_field(dual, x.unsqueeze(1)))
    rate = out.primal[:, 0].reshape(B, L * S)
    return rate, out.tangent.reshape(B, k, L * S).transpose(1, 2)


def eigenvalues(
    model: ODERNN, h: torch.Tensor, x: torch.Tensor, *, create_graph: bool = False
) -> torch.Tensor:
    """Eigenvalues of the Jacobian J of the joint field at (h, x), from its diagonal blocks.

    J is block lower triangular (layer l depends on layers below it only), so its spectrum is
    the union of the spectra of the blocks dF_l/dh_l.

    Arguments:
        model, h, x, create_graph: as for ``jacobian``.

    Returns:
        (..., num_layers * state_size) complex, layer by layer (within a layer in
        ``torch.linalg.eigvals`` order; state_size 2: + root first, then - root).
    """
    jac = jacobian(model, h, x, create_graph=create_graph)
    with torch.set_grad_enabled(create_graph):
        return _block_eigenvalues(jac, model.num_layers)


def _block_eigenvalues(jac: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Eigenvalues of the diagonal blocks of J (..., n, n), layer by layer: (..., n) complex.

    1 x 1 blocks are their own eigenvalue and 2 x 2 blocks use the closed form
    lambda = tr / 2 +- sqrt(tr^2 / 4 - det) (complex square root); larger blocks go to
    LAPACK's batched ``torch.linalg.eigvals``, split over ``_EIG_THREADS`` threads when the
    batch is large (torch releases the GIL inside LAPACK, so the threads run in parallel).
    """
    S = jac.shape[-1] // num_layers
    blocks = torch.stack(
        [jac[..., l * S : (l + 1) * S, l * S : (l + 1) * S] for l in range(num_layers)], dim=-3
    )
    if S == 1:
        return torch.complex(blocks[..., 0, 0], torch.zeros_like(blocks[..., 0, 0]))
    if S == 2:
        a, b = blocks[..., 0, 0], blocks[..., 0, 1]
        c, d = blocks[..., 1, 0], blocks[..., 1, 1]
        half = (a + d) / 2
        # tr^2 / 4 - det = ((a - d) / 2)^2 + b c: no cancellation of two large squares.
        disc = torch.complex((a - d).square() / 4 + b * c, torch.zeros_like(a)).sqrt()
        mid = torch.complex(half, torch.zeros_like(half))
        return torch.stack([mid + disc, mid - disc], dim=-1).flatten(-2)
    return _threaded_eigvals(blocks).flatten(-2)


#: Threads for large batched eigenvalue problems (each runs LAPACK on its share).
_EIG_THREADS = 2
#: Below this many blocks one call is faster than starting threads.
_EIG_SPLIT = 256


def _threaded_eigvals(blocks: torch.Tensor) -> torch.Tensor:
    lead = blocks.shape[:-2]
    flat = blocks.reshape(-1, *blocks.shape[-2:])
    if _EIG_THREADS < 2 or flat.shape[0] < _EIG_SPLIT or flat.requires_grad:
        return torch.linalg.eigvals(blocks)
    parts = flat.tensor_split(_EIG_THREADS)
    with ThreadPoolExecutor(max_workers=_EIG_THREADS) as pool:
        done = list(pool.map(torch.linalg.eigvals, parts))
    return torch.cat(done).reshape(*lead, blocks.shape[-1])


def spectral_radius(eigvals: torch.Tensor, method: str = "euler", dt: float = 1.0) -> torch.Tensor:
    """max |R(dt lambda)| over the eigenvalues lambda of J: the step map's spectral radius.

    By the spectral mapping theorem the eigenvalues of R(dt J) are R(dt lambda), so this is the
    spectral radius of the linearized step map of ``method`` at a fixed point.

    Arguments:
        eigvals: (..., n) eigenvalues of J (complex).
        method: a key of ``STEP_POLYNOMIALS`` (``"euler"``, ``"midpoint"``, ``"heun2"``,
            ``"heun3"``, ``"rk4"``).
        dt: the step size.

    Returns:
        (...,) real tensor.
    """
    coefficients = _step_polynomial(method)
    if not (isinstance(dt, (int, float)) and 0 < dt < float("inf")):
        raise ValueError(f"dt: expected a positive finite step, got {dt!r}")
    z = dt * eigvals
    value = torch.zeros_like(z)
    for c in reversed(coefficients):  # Horner
        value = value * z + c
    return value.abs().amax(dim=-1)


def _step_polynomial(method: str) -> tuple[float, ...]:
    if method not in STEP_POLYNOMIALS:
        raise ValueError(f"method: expected one of {tuple(STEP_POLYNOMIALS)}, got {method!r}")
    return STEP_POLYNOMIALS[method]


class _JointField(nn.Module):
    """``model.joint_field`` as a module's forward, so that functional_call can swap weights."""

    def __init__(self, model: ODERNN):
        super().__init__()
        self.model = model

    def forward(self, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.model.joint_field(state, x)


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
        except torch.linalg.LinAlgError:  # a singular Jacobian somewhere: least squares
            step = torch.linalg.lstsq(J, rhs).solution.squeeze(-1)
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
    tol = check_real("tol", tol)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int):
        raise TypeError(f"max_iter: expected an integer, got {type(max_iter).__name__}")
    if max_iter < 1:
        raise ValueError(f"max_iter: expected a positive integer, got {max_iter!r}")
    return tol, max_iter


def fixed_points(
    model: ODERNN,
    x: torch.Tensor,
    *,
    num_starts: int = 64,
    radius: float = 1.0,
    tol: float | None = None,
    max_iter: int = 50,
    dedup_tol: float = 1e-6,
    seed: int = 0,
) -> torch.Tensor:
    """Fixed points h* with F(h*, x) = 0, by Newton's method from many starts, de-duplicated.

    Newton's iteration h <- h - J(h)^{-1} F(h) runs batched from the zero state and
    ``num_starts - 1`` states uniform in [-radius, radius]^n; starts whose residual max |F| is
    below ``tol`` within ``max_iter`` steps count, and converged points closer than ``dedup_tol``
    (max norm) are merged.

    Arguments:
        model: a unidirectional ``ODERNN``.
        x: (input_size,) the constant input.
        num_starts: number of starting states.
        radius: half-width of the box of random starts.
        tol: residual tolerance (default 1e-10 in float64, 50 eps in other dtypes: reachable).
        max_iter: Newton steps per start.
        dedup_tol: distance below which two fixed points are the same.
        seed: seed of the random starts (same seed, same points).

    Returns:
        (K, num_layers, state_size) detached tensor: the distinct fixed points, ordered by their
        distance from the origin.
    """
    _check_model(model)
    if isinstance(num_starts, bool) or not isinstance(num_starts, int) or num_starts < 1:
        raise ValueError(f"num_starts: expected a positive integer, got {num_starts!r}")
    L, S = _state_shape(model)
    dtype = model.layers[0].weight_ih.dtype
    tol, max_iter = _check_newton(tol, max_iter, dtype)
    radius = check_real("radius", radius, inclusive=True)
    dedup_tol = check_real("dedup_tol", dedup_tol, inclusive=True)
    x = torch.as_tensor(x, dtype=dtype)
    if x.shape != (model.input_size,):
        raise ValueError(
            f"x: expected shape (input_size,) = ({model.input_size},), got {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"x: expected finite values, got {x.tolist()}")
    generator = torch.Generator().manual_seed(seed)
    starts = (2 * torch.rand(num_starts, L * S, generator=generator, dtype=dtype) - 1) * radius
    starts[0] = 0.0
    xs = x.expand(num_starts, -1)

    def field(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return model.joint_field(h.reshape(-1, L, S), x).reshape(h.shape)

    def jac(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return jacobian(model, h.reshape(-1, L, S), x)

    with torch.no_grad():
        found, ok = _newton(
            field,
            jac,
            starts,
            xs,
            tol=tol,
            max_iter=max_iter,
        )
    points = found[ok]
    points = points[torch.argsort(points.norm(dim=-1), stable=True)]
    unique: list[torch.Tensor] = []
    for p in points:
        if all(float((p - q).abs().max()) >= dedup_tol for q in unique):
            unique.append(p)
    if not unique:
        return points.new_zeros(0, L, S)
    return torch.stack(unique).reshape(-1, L, S)


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
        return dataclasses.replace(self, **{k: np.asarray(getattr(self, k)) for k in fields})


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
    parametrize = scale_recurrent_and_input if parametrize is None else parametrize
    dtype = model.layers[0].weight_ih.dtype
    tol, max_iter = _check_newton(tol, max_iter, dtype)
    radius = check_real("radius", radius, inclusive=True)
    if isinstance(num_starts, bool) or not isinstance(num_starts, int) or num_starts < 1:
        raise ValueError(f"num_starts: expected a positive integer, got {num_starts!r}")
    p = torch.as_tensor(np.asarray(p_values, dtype=np.float64), dtype=dtype)
    q = torch.as_tensor(np.asarray(q_values, dtype=np.float64), dtype=dtype)
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


def _steps(name: str, span: float, step_size: float | None) -> int:
    """Number of equal steps of rnnode's grid over ``span``: span / step_size, an integer."""
    if step_size is None:
        return 1
    ratio = span / step_size
    count = round(ratio)
    if count < 1 or abs(ratio - count) > 1e-9 * max(1.0, ratio):
        raise ValueError(
            f"{name}: expected a multiple of step_size = {step_size!r}, got {span!r} "
            f"({ratio:.6g} steps)"
        )
    return count


def _on_grid(func, y0: torch.Tensor, grid: torch.Tensor, method: str) -> torch.Tensor:
    """The state at ``grid[-1]``: one fixed step of ``method`` per grid interval."""
    trajectory = integrate(
        func, y0, grid, method=method, step_size=None, rtol=1e-6, atol=1e-8, discontinuous=False
    )
    return trajectory[-1]


def lyapunov_exponents(
    model: ODERNN,
    h0: torch.Tensor,
    x: torch.Tensor,
    *,
    duration: float = 100.0,
    interval: float = 1.0,
    transient: float = 0.0,
    num_exponents: int | None = None,
    method: str = "rk4",
    step_size: float | None = 0.1,
) -> torch.Tensor:
    """Lyapunov exponents of the joint flow dh/dt = F(h, x) by the QR method.

    Along a trajectory, the tangent vectors V (n, k) follow the variational equation
    dV/dt = J(h) V. Every ``interval`` they are re-orthonormalised, V = Q R, and
    lambda_i = (1 / duration) sum log |R_ii|. Each interval is stepped on rnnode's fixed grid
    (``interval / step_size`` equal steps of torchdiffeq's ``method``, as ``model.solve``
    steps a sample interval); for a Runge-Kutta method this is the exact linearization of its
    step map (the method commutes with linearization), so ``method="euler", step_size=1``
    gives the exponents of the discrete RNN.

    Arguments:
        model: a unidirectional ``ODERNN``.
        h0: (..., num_layers, state_size) initial states (a batch of trajectories), finite.
        x: (..., input_size) the constant input, broadcast against h0, finite.
        duration: time over which the exponents are averaged (after the transient); a
            multiple of ``interval``.
        interval: time between re-orthonormalisations; a multiple of ``step_size``.
        transient: time integrated first, to reach the attractor, and not averaged; a multiple
            of ``step_size``.
        num_exponents: k, the number of leading exponents (default all n = L * state_size).
        method: a fixed-step torchdiffeq method.
        step_size: its step (None: one step per interval).

    Returns:
        (..., k) detached tensor of exponents per unit time, in decreasing order of the QR
        method.

    Raises:
        rnnode.DivergenceError: the trajectory or its tangents became non-finite (the flow
            explodes at this input, or the step is outside the method's stability region).
    """
    _check_model(model)
    flat_h, flat_x, lead = _broadcast(model, h0, x)
    for name, value in (("h0", flat_h), ("x", flat_x)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: expected finite values, got NaN or inf entries")
    B = flat_h.shape[0]
    n = flat_h.shape[1] * flat_h.shape[2]
    k = n if num_exponents is None else num_exponents
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"num_exponents: expected an integer in [1, {n}], got {num_exponents!r}")
    duration = check_real("duration", duration)
    interval = check_real("interval", interval)
    transient = check_real("transient", transient, inclusive=True)
    if step_size is not None:
        step_size = check_real("step_size", step_size)
    if method not in FIXED_METHODS:
        raise ValueError(f"method: expected a fixed-step method {FIXED_METHODS}, got {method!r}")
    per_interval = _steps("interval", interval, step_size)
    count = _steps("duration", duration, interval)
    shape = flat_h.shape
    dtype = flat_h.dtype

    def grid(span: float, steps: int) -> torch.Tensor:
        return torch.linspace(0.0, span, steps + 1, dtype=dtype)

    def field(t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return model.joint_field(h.reshape(shape), flat_x).reshape(B, n)

    def tangent_flow(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, V = y[:, :n].reshape(shape), y[:, n:].reshape(B, n, k)
        rate, JV = _tangents(model, h, flat_x, V)
        return torch.cat([rate, JV.reshape(B, -1)], dim=-1)

    def check(y: torch.Tensor, where: str) -> None:
        if not bool(torch.isfinite(y).all()):
            raise DivergenceError(
                f"the trajectory or its tangent vectors became non-finite {where}: the flow "
                "explodes at this input (or the step is outside the method's stability region); "
                "Lyapunov exponents need a bounded trajectory"
            )

    span = grid(float(interval), per_interval)
    h = flat_h.reshape(B, n)
    with torch.no_grad():
        if transient > 0:
            # One step per grid interval: rnnode's own fixed-step solve on the grid.
            span0 = grid(float(transient), _steps("transient", transient, step_size))
            h = _on_grid(field, h, span0, method)
            check(h, f"during the transient (t <= {transient:g})")
        V = torch.eye(n, k, dtype=dtype).expand(B, n, k)
        total = torch.zeros(B, k, dtype=dtype)
        for i in range(count):
            y = torch.cat([h, V.reshape(B, -1)], dim=-1)
            y = _on_grid(tangent_flow, y, span, method)
            check(y, f"by t = {transient + (i + 1) * interval:g}")
            h = y[:, :n]
            V, R = torch.linalg.qr(y[:, n:].reshape(B, n, k))
            total += R.diagonal(dim1=-2, dim2=-1).abs().log()
        check(total, "(a tangent direction collapsed to zero: log 0)")
    return (total / (count * interval)).reshape(*lead, k)


@dataclass
class FixedPoints:
    """Fixed points and slow points of a stack (``find_fixed_points``), detached tensors.

    Attributes:
        points: (K, num_layers, state_size) the points, by increasing q.
        q: (K,) q(h) = |F(h, x)|^2 / 2 at each point (F: the field, or step(h) - h).
        is_fixed: (K,) True where max |F| is below Newton's tolerance (a fixed point), False
            for a slow point (a local minimum of q above it, kept by ``q_tol``).
        eigenvalues: (K, n) complex eigenvalues of the Jacobian (continuous: of J = dF/dh;
            discrete: of the step map's Jacobian, the multipliers), layer by layer.
        num_unstable: (K,) the number of unstable directions (continuous: Re lambda > 0;
            discrete: |mu| > 1), counted with multiplicity.
        classification: one of ``"stable"`` (none unstable), ``"saddle"`` (some),
            ``"unstable"`` (all) per point.
        kind: ``"continuous"`` or ``"discrete"``.
    """

    points: torch.Tensor
    q: torch.Tensor
    is_fixed: torch.Tensor
    eigenvalues: torch.Tensor
    num_unstable: torch.Tensor
    classification: list[str]
    kind: str


def _adam(loss_fn, h: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """Adam (Kingma & Ba 2015; betas 0.9, 0.999, eps 1e-8) on the rows of h, by hand:
    ``torch.optim`` imports torch's compiler stack on first use (seconds)."""
    m = torch.zeros_like(h)
    v = torch.zeros_like(h)
    for k in range(1, steps + 1):
        h = h.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(h), h)
        with torch.no_grad():
            m.mul_(0.9).add_(grad, alpha=0.1)
            v.mul_(0.999).addcmul_(grad, grad, value=0.001)
            step = (m / (1 - 0.9**k)) / ((v / (1 - 0.999**k)).sqrt() + 1e-8)
            h = h - lr * step
    return h.detach()


def find_fixed_points(
    model: ODERNN,
    x: torch.Tensor,
    starts: torch.Tensor,
    *,
    kind: str = "continuous",
    dt: float = 1.0,
    noise: float = 0.0,
    opt_steps: int = 200,
    lr: float = 1e-2,
    q_tol: float = 1e-8,
    tol: float | None = None,
    max_iter: int = 20,
    dedup_tol: float = 1e-6,
    seed: int = 0,
) -> FixedPoints:
    """Fixed points *and slow points* of a stack from many starts (Sussillo & Barak 2013).

    From every start (states sampled on the network's own trajectories, optionally jittered
    by Gaussian ``noise``), minimise q(h) = |F(h, x)|^2 / 2 with Adam (``opt_steps`` steps,
    learning rate ``lr``, all starts batched: q summed over starts has the per-start
    gradients J^T F), then polish with damped Newton (``max_iter`` steps; only steps that
    lower |F| are taken, so slow points stay put). Points with q below ``q_tol`` are kept and
    merged where closer than ``dedup_tol`` (max norm); each gets its Jacobian's eigenvalues,
    its number of unstable directions and a class. F is the continuous field dh/dt = F(h, x)
    (``kind="continuous"``) or the discrete map's displacement F(h) = step(h, x) - h with
    the Euler step ``dt`` of the solve (sampled coupling; ``kind="discrete"``, with ``dt=1``
    the torch RNN/GRU/LSTM).

    Arguments:
        model: a unidirectional ``ODERNN`` (any cell: Elman, GRU, LSTM, ...; float64 advised).
        x: (input_size,) the constant input.
        starts: (K, num_layers, state_size) starting states, e.g. ``solution.states`` of a
            batch, reshaped: ``states[:, 0].permute(1, 3, 0, 2)``... flattened to (K, L, S).
        kind: ``"continuous"`` or ``"discrete"``.
        dt: the Euler step of the discrete map.
        noise: standard deviation of Gaussian jitter added to the starts (seeded).
        opt_steps, lr: the Adam phase (``opt_steps=0`` skips it).
        q_tol: the largest q kept (slow points included).
        tol: Newton's tolerance on max |F| (default 1e-10 in float64, 50 eps otherwise); also
            the line between fixed (``is_fixed``) and slow points.
        max_iter: Newton steps.
        dedup_tol: distance below which two points are the same.
        seed: seed of the jitter.

    Returns:
        ``FixedPoints``.
    """
    from .linear import _step_map, linearize

    _check_model(model)
    if kind not in ("continuous", "discrete"):
        raise ValueError(f"kind: expected one of ('continuous', 'discrete'), got {kind!r}")
    L, S = _state_shape(model)
    n = L * S
    dtype = model.layers[0].weight_ih.dtype
    tol, max_iter = _check_newton(tol, max_iter, dtype)
    q_tol = check_real("q_tol", q_tol)
    noise = check_real("noise", noise, inclusive=True)
    lr = check_real("lr", lr)
    dt = check_real("dt", dt)
    dedup_tol = check_real("dedup_tol", dedup_tol, inclusive=True)
    if isinstance(opt_steps, bool) or not isinstance(opt_steps, int) or opt_steps < 0:
        raise ValueError(f"opt_steps: expected a non-negative integer, got {opt_steps!r}")
    x = torch.as_tensor(x, dtype=dtype)
    if x.shape != (model.input_size,) or not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"x: expected a finite tensor of shape (input_size,) = ({model.input_size},), "
            f"got {tuple(x.shape)}"
        )
    if not isinstance(starts, torch.Tensor):
        raise TypeError(f"starts: expected a torch.Tensor, got {type(starts).__name__}")
    if starts.dim() != 3 or tuple(starts.shape[1:]) != (L, S) or starts.shape[0] < 1:
        raise ValueError(
            f"starts: expected shape (K, num_layers, state_size) = (K, {L}, {S}) with K >= 1, "
            f"got {tuple(starts.shape)}"
        )
    if not bool(torch.isfinite(starts).all()):
        raise ValueError("starts: expected finite values, got NaN or inf entries")
    h = starts.detach().to(dtype).reshape(-1, n).clone()
    if noise > 0:
        generator = torch.Generator().manual_seed(seed)
        h += noise * torch.randn(h.shape, generator=generator, dtype=dtype)
    xs = x.expand(h.shape[0], -1)
    t0 = torch.zeros((), dtype=dtype)
    step = vmap(_step_map(model, "sampled", float(dt), t0)) if kind == "discrete" else None

    def field(hv: torch.Tensor, xv: torch.Tensor) -> torch.Tensor:
        if kind == "continuous":
            return model.joint_field(hv.reshape(-1, L, S), xv).reshape(hv.shape)
        return step(hv, xv) - hv

    def jac(hv: torch.Tensor, xv: torch.Tensor) -> torch.Tensor:
        if kind == "continuous":
            return jacobian(model, hv.reshape(-1, L, S), xv)
        A = linearize(model, hv.reshape(-1, L, S), xv, dt=dt).A
        return A - torch.eye(n, dtype=dtype)

    frozen = [p.requires_grad_(False) for p in model.parameters() if p.requires_grad]
    try:
        if opt_steps:
            h = _adam(lambda v: 0.5 * field(v, xs).pow(2).sum(), h, opt_steps, lr)
        with torch.no_grad():
            h, _ = _newton(field, jac, h, xs, tol=tol, max_iter=max_iter)
            residual = field(h, xs)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    q = 0.5 * residual.pow(2).sum(-1)
    fixed = residual.abs().amax(-1) < tol
    keep = torch.nonzero(torch.isfinite(q) & ((q < q_tol) | fixed)).squeeze(-1)
    keep = keep[torch.argsort(q[keep], stable=True)]
    chosen: list[int] = []
    for i in keep.tolist():
        if all(float((h[i] - h[j]).abs().max()) >= dedup_tol for j in chosen):
            chosen.append(i)
    index = torch.tensor(chosen, dtype=torch.long)
    points = h[index]
    if points.shape[0]:
        if kind == "continuous":
            eig = eigenvalues(model, points.reshape(-1, L, S), xs[: points.shape[0]])
            unstable = (eig.real > 0).sum(-1)
        else:
            A = linearize(model, points.reshape(-1, L, S), x, dt=dt).A
            eig = _block_eigenvalues(A, L)
            unstable = (eig.abs() > 1).sum(-1)
    else:
        eig = torch.zeros(0, n, dtype=torch.complex128 if dtype == torch.float64 else torch.cfloat)
        unstable = torch.zeros(0, dtype=torch.long)
    names = [
        "stable" if k == 0 else ("unstable" if k == n else "saddle") for k in unstable.tolist()
    ]
    return FixedPoints(
        points=points.reshape(-1, L, S),
        q=q[index],
        is_fixed=fixed[index],
        eigenvalues=eig,
        num_unstable=unstable,
        classification=names,
        kind=kind,
    )
