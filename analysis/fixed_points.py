"""Fixed points and slow points of a stack, by optimisation and Newton's method from many starts.

A fixed point h* of the continuous field dh/dt = F(h, x) has F(h*, x) = 0; of the discrete map
h <- step(h, x), step(h*, x) = h*, i.e. F(h) = step(h, x) - h = 0. Slow points are local minima
of q(h) = |F(h, x)|^2 / 2 above zero (Sussillo & Barak 2013, Neural Computation 25, 626-649).
Stability follows from the Jacobian's eigenvalues (``rnnode.analysis.jacobians``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch.func import vmap

from rnnode import ODERNN, Solution
from rnnode._validate import (
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
)

from ._newton import _check_newton, _newton
from .jacobians import (
    _as_input,
    _block_eigenvalues,
    _check_model,
    _state_shape,
    eigenvalues,
    jacobian,
)

__all__ = ["FixedPoints", "find_fixed_points", "trajectory_starts"]


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
        num_unstable: (K,) the number of unstable directions (continuous:
            Re lambda > boundary_tol; discrete: |mu| > 1 + boundary_tol), counted with
            multiplicity.
        num_neutral: (K,) the number of eigenvalues within ``boundary_tol`` of the stability
            boundary (continuous: |Re lambda| <= boundary_tol; discrete:
            ||mu| - 1| <= boundary_tol), counted with multiplicity.
        classification: per point, ``"non-hyperbolic"`` (some eigenvalue neutral), else
            ``"stable"`` (none unstable), ``"saddle"`` (some) or ``"unstable"`` (all).
        kind: ``"continuous"`` or ``"discrete"``.
    """

    points: torch.Tensor
    q: torch.Tensor
    is_fixed: torch.Tensor
    eigenvalues: torch.Tensor
    num_unstable: torch.Tensor
    num_neutral: torch.Tensor
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


#: Interior points of a segment at which the field is checked before two fixed points merge.
_SEGMENT_POINTS = 15
#: Field evaluations per batched call of the segment check.
_SEGMENT_CHUNK = 1 << 16


def _merge(field, h, keep, fixed, tol: float, dedup_tol: float) -> torch.Tensor:
    """The points that remain after merging, as indices into h, in the order of ``keep``.

    First, a point closer than ``dedup_tol`` (max norm) to an earlier kept one is dropped.
    Then two fixed points are one where max |F| < tol at every interior point s = k / 16
    (k = 1..15) of the segment between them (the midpoint first: most pairs stop there); the
    pairs that pass join clusters (single linkage), each represented by its earliest point.
    """
    chosen: list[int] = []
    for i in keep.tolist():
        if not chosen or bool(((h[chosen] - h[i]).abs().amax(-1) >= dedup_tol).all()):
            chosen.append(i)
    index = torch.tensor(chosen, dtype=torch.long, device=h.device)
    candidates = torch.nonzero(fixed[index]).squeeze(-1)  # positions in index
    if candidates.numel() < 2:
        return index
    a, b = torch.triu_indices(candidates.numel(), candidates.numel(), 1, device=h.device)
    a, b = candidates[a], candidates[b]
    fractions = torch.arange(1, _SEGMENT_POINTS + 1, dtype=h.dtype, device=h.device)
    fractions = fractions / (_SEGMENT_POINTS + 1)
    order = torch.argsort((fractions - 0.5).abs(), stable=True)  # the midpoint first
    for s in fractions[order].tolist():
        if not a.numel():
            return index
        passed = []
        for lo in range(0, a.numel(), _SEGMENT_CHUNK):
            ha, hb = h[index[a[lo : lo + _SEGMENT_CHUNK]]], h[index[b[lo : lo + _SEGMENT_CHUNK]]]
            passed.append(field(ha + s * (hb - ha)).abs().amax(-1) < tol)
        ok = torch.cat(passed)
        a, b = a[ok], b[ok]
    # Single linkage: every position points at the earliest position of its cluster.
    root = torch.arange(index.numel(), device=h.device)
    for _ in range(index.numel()):
        low = torch.minimum(root[a], root[b])
        new = root.clone()
        new.scatter_reduce_(0, a, low, "amin")
        new.scatter_reduce_(0, b, low, "amin")
        new = new[new]
        if bool((new == root).all()):
            break
        root = new
    return index[root == torch.arange(index.numel(), device=h.device)]


def trajectory_starts(
    states: Solution | torch.Tensor,
    num_starts: int,
    *,
    noise: float = 0.0,
    seed: int | torch.Generator = 0,
    return_indices: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Starts for ``find_fixed_points``: states sampled on a unidirectional stack's trajectories.

    Start i is the joint state of every layer at time index t_i and sequence b_i,
    ``states[:, 0, t_i, b_i]`` (num_layers, state_size), plus optional Gaussian jitter; the
    (t_i, b_i) are drawn without replacement among the (T + 1) * batch pairs (the initial state
    t = 0 included).

    Arguments:
        states: a ``Solution`` (its ``states``; an unbatched solve counts as batch 1) or a
            tensor (num_layers, directions, T + 1, batch, state_size) with directions = 1.
        num_starts: K, at most (T + 1) * batch.
        noise: standard deviation of Gaussian jitter added to every start (0: exact states).
        seed: an integer seed or a ``torch.Generator`` (its state advances) for the draw and
            the jitter.
        return_indices: also return the time and sequence indices t (K,) and b (K,).

    Returns:
        (K, num_layers, state_size) detached starts; with ``return_indices``, ``(starts, t, b)``.
    """
    if isinstance(states, Solution):
        states = states.states
        if states.dim() == 4:  # an unbatched solve: (num_layers, D, T + 1, state_size)
            states = states.unsqueeze(3)
    if not isinstance(states, torch.Tensor):
        raise TypeError(
            f"states: expected an rnnode.Solution or a tensor, got {type(states).__name__}"
        )
    if states.dim() != 5 or states.shape[1] != 1 or states.shape[2] * states.shape[3] == 0:
        raise ValueError(
            "states: expected shape (num_layers, directions, T + 1, batch, state_size) with "
            f"directions = 1 (a unidirectional stack) and a state, got {tuple(states.shape)}"
        )
    _, _, T1, B, _ = states.shape
    K = check_int("num_starts", num_starts, minimum=1)
    if K > T1 * B:
        raise ValueError(
            f"num_starts: expected at most (T + 1) * batch = {T1 * B} (distinct states), got {K}"
        )
    noise = check_nonnegative("noise", noise)
    return_indices = check_bool("return_indices", return_indices)
    if isinstance(seed, torch.Generator):
        generator = seed
    else:
        generator = torch.Generator().manual_seed(check_int("seed", seed))
    pick = torch.randperm(T1 * B, generator=generator)[:K].to(states.device)
    t, b = pick // B, pick % B
    starts = states.detach()[:, 0, t, b].transpose(0, 1).clone()  # (K, num_layers, state_size)
    if noise > 0:
        jitter = torch.randn(starts.shape, generator=generator, dtype=starts.dtype)
        starts += noise * jitter.to(starts.device)
    return (starts, t, b) if return_indices else starts


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
    boundary_tol: float | None = None,
    seed: int = 0,
) -> FixedPoints:
    """Fixed points *and slow points* of a stack from many starts (Sussillo & Barak 2013).

    From every start (states sampled on the network's own trajectories, or a number of
    states: the zero state and random states in a box; optionally jittered by Gaussian
    ``noise``), minimise q(h) = |F(h, x)|^2 / 2 with Adam (``opt_steps`` steps,
    learning rate ``lr``, all starts batched: q summed over starts has the per-start
    gradients J^T F), then polish with damped Newton (``max_iter`` steps; only steps that
    lower |F| are taken, so slow points stay put). Points with q below ``q_tol`` are kept and
    merged where closer than ``dedup_tol`` (max norm); two fixed points are merged too where
    max |F| stays below ``tol`` on the whole segment between them (checked at 15 interior
    points), since Newton's tolerance cannot tell them apart: near a singular Jacobian the
    points with max |F| < tol fill a ball far wider than ``dedup_tol`` (dh/dt = tanh(h) - h ~
    -h^3 / 3: |h| < (3 tol)^(1/3), 7e-4 at tol = 1e-10), and they are one fixed point. (An
    exact continuum of fixed points, |F| < tol all along, is reported by one point.) Each
    merged point is the one of lowest q; it gets its Jacobian's eigenvalues, its number of
    unstable directions and a class. F is the continuous field dh/dt = F(h, x)
    (``kind="continuous"``) or the discrete map's displacement F(h) = step(h, x) - h with
    the Euler step ``dt`` of the solve (sampled coupling; ``kind="discrete"``, with ``dt=1``
    the torch RNN/GRU/LSTM).

    Arguments:
        model: a unidirectional ``ODERNN`` (any cell: Elman, GRU, LSTM, ...; float64 advised).
        x: (input_size,) the constant input.
        starts: (K, num_layers, state_size) starting states, e.g. states on the network's
            own trajectories (``trajectory_starts``; by hand, the state at time index t of
            sequence b is ``solution.states[:, 0, t, b]``, and
            ``solution.states[:, 0].permute(1, 2, 0, 3).reshape(-1, L, S)`` lists them all,
            row t * batch + b); or an integer K: the zero state and K - 1 states uniform in
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
        boundary_tol: eigenvalues closer than this to the stability boundary (continuous:
            |Re lambda| <= boundary_tol; discrete: ||mu| - 1| <= boundary_tol) are neutral and
            make the point ``"non-hyperbolic"`` (default sqrt(tol): near a fold,
            F ~ lambda d + c d^2, the points with |F| < tol span d ~ sqrt(tol / c), over
            which the eigenvalue moves by ~ 2 sqrt(c tol), so its sign is not resolved).
        seed: seed of the random starts and of the jitter (same seed, same points).

    Returns:
        ``FixedPoints``.

    Example:
        States on the network's own trajectories as starts; start i is the state at time
        index t[i] of sequence b[i]:

        >>> import torch, rnnode
        >>> from rnnode.analysis import find_fixed_points, trajectory_starts
        >>> _ = torch.manual_seed(0)
        >>> model = rnnode.ODERNN(2, 8, num_layers=2, cell="gru").double()
        >>> with torch.no_grad():
        ...     solution = model.solve(torch.randn(30, 4, 2, dtype=torch.float64))
        >>> starts, t, b = trajectory_starts(solution, 32, return_indices=True)
        >>> bool((starts[5] == solution.states[:, 0, t[5], b[5]]).all())
        True
        >>> found = find_fixed_points(model, torch.zeros(2, dtype=torch.float64), starts)
        >>> found.points.shape[1:]
        torch.Size([2, 8])
    """
    from .linear import _step_map, linearize

    _check_model(model)
    check_choice("kind", kind, ("continuous", "discrete"))
    L, S = _state_shape(model)
    n = L * S
    dtype = model.layers[0].weight_ih.dtype
    tol, max_iter = _check_newton(tol, max_iter, dtype)
    q_tol = check_positive("q_tol", q_tol)
    noise = check_nonnegative("noise", noise)
    lr = check_positive("lr", lr)
    dt = check_positive("dt", dt)
    dedup_tol = check_nonnegative("dedup_tol", dedup_tol)
    boundary_tol = tol**0.5 if boundary_tol is None else boundary_tol
    boundary_tol = check_nonnegative("boundary_tol", boundary_tol)
    opt_steps = check_int("opt_steps", opt_steps, minimum=0)
    x = _as_input(x, dtype)
    if x.shape != (model.input_size,):
        raise ValueError(
            f"x: expected shape (input_size,) = ({model.input_size},), got {tuple(x.shape)}"
        )
    check_finite("x", x)
    radius = check_nonnegative("radius", radius)
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    if isinstance(starts, numbers.Integral) and not isinstance(starts, bool):
        starts = check_int("starts", starts, minimum=1)
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
    check_finite("starts", starts)
    h = starts.detach().to(dtype).reshape(-1, n).clone()
    if noise > 0:
        h += noise * torch.randn(h.shape, generator=generator, dtype=dtype)
    xs = x.expand(h.shape[0], -1)
    t0 = torch.zeros((), dtype=dtype)
    step = vmap(_step_map(model, "sampled", float(dt), t0)) if kind == "discrete" else None

    def field(hv: torch.Tensor, xv: torch.Tensor) -> torch.Tensor:
        if step is None:  # kind == "continuous"
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
    index = _merge(lambda v: field(v, x.expand(v.shape[0], -1)), h, keep, fixed, tol, dedup_tol)
    points = h[index]
    if points.shape[0]:
        if kind == "continuous":
            eig = eigenvalues(model, points.reshape(-1, L, S), xs[: points.shape[0]])
            distance = eig.real  # from the boundary Re lambda = 0, positive outside
        else:
            A = linearize(model, points.reshape(-1, L, S), x, dt=dt).A
            eig = _block_eigenvalues(A, L)
            distance = eig.abs() - 1  # from the unit circle, positive outside
        unstable = (distance > boundary_tol).sum(-1)
        neutral = (distance.abs() <= boundary_tol).sum(-1)
    else:
        eig = torch.zeros(0, n, dtype=torch.complex128 if dtype == torch.float64 else torch.cfloat)
        unstable = neutral = torch.zeros(0, dtype=torch.long)
    names = [
        "non-hyperbolic" if m else ("stable" if k == 0 else ("unstable" if k == n else "saddle"))
        for k, m in zip(unstable.tolist(), neutral.tolist(), strict=True)
    ]
    return FixedPoints(
        points=points.reshape(-1, L, S),
        q=q[index],
        is_fixed=fixed[index],
        eigenvalues=eig,
        num_unstable=unstable,
        num_neutral=neutral,
        classification=names,
        kind=kind,
    )
