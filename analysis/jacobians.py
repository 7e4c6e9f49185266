"""Jacobians and eigenvalues of the joint field of a continuously coupled stack.

The stack dh/dt = F(h, x) (``ODERNN.joint_field``, ``coupling="continuous"``) is locally stable at
a fixed point h* (F(h*, x) = 0) when every eigenvalue of the Jacobian J = dF/dh has a negative
real part, and unstable when one has a positive real part. A one-step method with step dt maps
h_{n+1} = Psi(h_n), linearized at h* to the stability polynomial R(dt J) (explicit Euler:
I + dt J; RK4: I + dt J + (dt J)^2 / 2 + (dt J)^3 / 6 + (dt J)^4 / 24), whose spectral radius
max |R(dt lambda)| must stay below 1: the discretization adds its own stability region.

Every layer is driven only by layers below it, so J is block lower triangular and its eigenvalues
are those of the L diagonal blocks dF_l/dh_l; ``eigenvalues`` uses this to solve L small
eigenproblems instead of one large one.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.autograd.forward_ad as fwAD

from rnnode import FIXED_METHODS, ODERNN
from rnnode._validate import check_array, check_choice, check_positive

from ._common import check_model

__all__ = ["STEP_POLYNOMIALS", "eigenvalues", "jacobian", "spectral_radius"]

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


def _check_model(model: object) -> ODERNN:
    return check_model(model, unidirectional=True)


def _state_shape(model: ODERNN) -> tuple[int, int]:
    return model.num_layers, model.layers[0].state_size


def _broadcast(model: ODERNN, h: torch.Tensor, x: torch.Tensor, name: str = "h"):
    """Broadcast h (..., L, S) against x (..., input_size), then flatten the leading dimensions."""
    L, S = _state_shape(model)
    if not isinstance(h, torch.Tensor):
        raise TypeError(
            f"{name}: expected a tensor of shape (..., num_layers, state_size) = (..., {L}, {S}), "
            f"got {type(h).__name__}"
        )
    if h.dim() < 2 or tuple(h.shape[-2:]) != (L, S):
        raise ValueError(
            f"{name}: expected a tensor of shape (..., num_layers, state_size) = (..., {L}, {S}), "
            f"got {tuple(h.shape)}"
        )
    x = _as_input(x, h.dtype, h.device)
    if x.dim() < 1 or x.shape[-1] != model.input_size:
        raise ValueError(
            f"x: expected shape (..., input_size) = (..., {model.input_size}), got {tuple(x.shape)}"
        )
    lead = torch.broadcast_shapes(h.shape[:-2], x.shape[:-1])
    h = h.expand(*lead, L, S).reshape(-1, L, S)
    x = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])
    return h, x, lead


def _as_input(x: object, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """The input x (a tensor, array or sequence of reals) as a tensor of ``dtype``."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device)
    array = check_array("x", x, expected="a tensor or array of real numbers")
    return torch.as_tensor(array, dtype=dtype, device=device)


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
    dt = check_positive("dt", dt)
    if not isinstance(eigvals, torch.Tensor):
        raise TypeError(f"eigvals: expected a tensor (..., n), got {type(eigvals).__name__}")
    z = dt * eigvals
    value = torch.zeros_like(z)
    for c in reversed(coefficients):  # Horner
        value = value * z + c
    return value.abs().amax(dim=-1)


def _step_polynomial(method: str) -> tuple[float, ...]:
    return STEP_POLYNOMIALS[check_choice("method", method, tuple(STEP_POLYNOMIALS))]
