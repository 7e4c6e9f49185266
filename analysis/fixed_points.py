"""Fixed points and slow points of a stack, by optimisation and Newton's method from many starts.

A fixed point h* of the continuous field dh/dt = F(h, x) has F(h*, x) = 0; of the discrete map
h <- step(h, x), step(h*, x) = h*, i.e. F(h) = step(h, x) - h = 0. Slow points are local minima
of q(h) = |F(h, x)|^2 / 2 above zero (Sussillo & Barak 2013, Neural Computation 25, 626-649).
Stability follows from the Jacobian's eigenvalues (``rnnode.analysis.jacobians``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import vmap

from rnnode import ODERNN
from rnnode._validate import check_finite

from ._common import check_real
from ._newton import _check_newton, _newton
from .jacobians import _block_eigenvalues, _check_model, _state_shape, eigenvalues, jacobian

__all__ = ["FixedPoints", "find_fixed_points"]


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
    starts: torch.Tensor | int = 64,
    *,
    kind: str = "continuous",
    dt: float = 1.0,
    radius: float = 1.0,
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

    From every start (states sampled on the network's own trajectories, or a number of
    states: the zero state and random states in a box; optionally jittered by Gaussian
    ``noise``), minimise q(h) = |F(h, x)|^2 / 2 with Adam (``opt_steps`` steps,
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
        starts: (K, num_layers, state_size) starting states, e.g. states on the network's
            own trajectories; or an integer K: the zero state and K - 1 states uniform in
            [-radius, radius]^n (seeded).
        kind: ``"continuous"`` or ``"discrete"``.
        dt: the Euler step of the discrete map.
        radius: half-width of the box of random starts (integer ``starts`` only).
        noise: standard deviation of Gaussian jitter added to the starts (seeded).
        opt_steps, lr: the Adam phase (``opt_steps=0`` skips it).
        q_tol: the largest q kept (slow points included).
        tol: Newton's tolerance on max |F| (default 1e-10 in float64, 50 eps otherwise); also
            the line between fixed (``is_fixed``) and slow points.
        max_iter: Newton steps.
        dedup_tol: distance below which two points are the same.
        seed: seed of the random starts and of the jitter (same seed, same points).

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
    if x.shape != (model.input_size,):
        raise ValueError(
            f"x: expected shape (input_size,) = ({model.input_size},), got {tuple(x.shape)}"
        )
    check_finite("x", x)
    radius = check_real("radius", radius, inclusive=True)
    generator = torch.Generator().manual_seed(seed)
    if isinstance(starts, int) and not isinstance(starts, bool):
        if starts < 1:
            raise ValueError(f"starts: expected a positive number of starts, got {starts!r}")
        box = (2 * torch.rand(starts, L, S, generator=generator, dtype=dtype) - 1) * radius
        starts = torch.cat([torch.zeros(1, L, S, dtype=dtype), box[1:]])
    if not isinstance(starts, torch.Tensor):
        raise TypeError(
            f"starts: expected a torch.Tensor or a number of starts, got {type(starts).__name__}"
        )
    if starts.dim() != 3 or tuple(starts.shape[1:]) != (L, S) or starts.shape[0] < 1:
        raise ValueError(
            f"starts: expected shape (K, num_layers, state_size) = (K, {L}, {S}) with K >= 1, "
            f"got {tuple(starts.shape)}"
        )
    if not bool(torch.isfinite(starts).all()):
        raise ValueError("starts: expected finite values, got NaN or inf entries")
    h = starts.detach().to(dtype).reshape(-1, n).clone()
    if noise > 0:
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
