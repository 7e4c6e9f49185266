"""Linearisation of a whole stack and its numeric frequency response.

``linearize`` returns the state-space matrices (A, B, C, D) of any unidirectional ``ODERNN``
(every cell, skip connections, both couplings) around a state h and a held input x:

- ``kind="discrete"``: the Jacobians of one Euler step of the solve (step ``dt``, one step per
  sample, held input), in scipy's convention s_{k+1} = A s_k + B u_k, y_k = C s_k + D u_k with
  the state s_k = h_{k-1} (every layer before the step that reads x_k), u_k = x_k and the output
  y_k the hidden states of every layer after that step. With ``coupling="sampled"`` layer l reads
  its sources' *new* states, h^l_k = h^l_{k-1} + dt F_l(h^l_{k-1}, sources_k, x_k); with
  ``coupling="continuous"`` every layer reads the previous ones, h_k = h_{k-1} + dt F(h_{k-1}, x_k)
  (A = I + dt J). So C = P A and D = P B, P the selection of every layer's hidden part.
- ``kind="continuous"``: the joint field dh/dt = F(h, x) of the continuously coupled stack,
  A = dF/dh, B = dF/dx, C = P, D = 0.

``frequency_response`` evaluates H(omega) = C (z I - A)^{-1} B + D at z = e^{i omega dt}
(discrete) or z = i omega (continuous) by one batched complex linear solve over all frequencies,
and reduces it to per-layer gains with ``measure_gain``'s norm convention: for the unit input
direction e, gain_l(omega) = sqrt(sum_{j in layer l} |H_j(omega) e|^2), and to phases
phi_j(omega) = arg(H_j(omega) e) in radians: the input sin(omega t) e drives the output
|H_j e| sin(omega t + phi_j), unwrapped along increasing frequency from the principal value at the
first frequency. At a fixed point and a small amplitude the gains and phases agree with the sine
probes (``measure_response``, which measure this linearisation). ``StateSpace.to_scipy`` hands the
matrices to ``scipy.signal`` (``dlti`` with the step dt, or ``lti``), whose ``dfreqresp`` /
``freqresp`` give the same H.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.signal
import torch
from numpy.typing import ArrayLike
from torch.func import jacfwd, vmap

from rnnode import COUPLINGS, ODERNN

from ._response import FrequencyResponse, unwrapped_phase
from .gain import KINDS, _unit_direction

__all__ = ["FrequencyResponse", "StateSpace", "frequency_response", "linearize"]


@dataclass(eq=False)
class StateSpace:
    """A linear(ised) system: s_{k+1} = A s_k + B u_k, y_k = C s_k + D u_k (discrete, sample
    spacing dt) or ds/dt = A s + B u, y = C s + D u (continuous).

    Unpacks like the tuple it replaces, ``A, B, C, D = linearize(...)``; ``to_scipy()``
    converts to ``scipy.signal.dlti`` (discrete) or ``scipy.signal.lti`` (continuous).

    Attributes:
        A, B, C, D: (..., n, n), (..., n, m), (..., p, n), (..., p, m) tensors.
        kind: ``"discrete"`` or ``"continuous"``.
        dt: the sample spacing of a discrete system; None for a continuous one.
    """

    A: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    D: torch.Tensor
    kind: str = "discrete"
    dt: float | None = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if self.kind == "continuous" and self.dt is not None:
            raise ValueError(f"dt: expected None for a continuous system, got {self.dt!r}")
        if self.kind == "discrete":
            dt = self.dt
            if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < np.inf:
                raise ValueError(f"dt: expected a positive finite sample spacing, got {dt!r}")

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.A, self.B, self.C, self.D))

    def to_scipy(self) -> scipy.signal.dlti | scipy.signal.lti:
        """The system as ``scipy.signal.dlti(A, B, C, D, dt=dt)`` (discrete) or
        ``scipy.signal.lti(A, B, C, D)`` (continuous), float64 numpy matrices.

        Only a single system converts: a batch (leading dimensions) raises ``ValueError``.
        scipy's ``dfreqresp`` takes frequencies in radians per sample, omega * dt.
        """
        if self.A.dim() != 2:
            raise ValueError(
                f"A: expected a single system (n, n) to convert, got shape {tuple(self.A.shape)} "
                "(index the batch first, e.g. StateSpace(*(v[0] for v in ss), kind, dt))"
            )
        A, B, C, D = (v.detach().cpu().double().numpy() for v in self)
        if self.kind == "discrete":
            assert self.dt is not None  # a discrete system has its step
            return scipy.signal.dlti(A, B, C, D, dt=float(self.dt))
        return scipy.signal.lti(A, B, C, D)


def _check_linearizable(model: ODERNN) -> None:
    if not isinstance(model, ODERNN):
        raise TypeError(f"model: expected an rnnode.ODERNN, got {type(model).__name__}")
    if model.bidirectional:
        raise ValueError(
            "model: a linearisation needs a unidirectional stack (the reverse direction runs "
            "backwards in time); got bidirectional=True"
        )


def _step_map(model: ODERNN, coupling: str, dt: float, t: torch.Tensor):
    """The Euler step of the solve as a function (h_prev (L*S,), x (m,)) -> h_new (L*S,)."""
    L, S = model.num_layers, model.layers[0].state_size

    def step(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        old = h.reshape(L, S)
        if coupling == "continuous":
            return (old + dt * model.joint_field(old, x, t)).reshape(-1)
        new: list[torch.Tensor] = []
        for layer in range(L):
            field = model.field(layer)
            # Sources at the new step (held input: the samples at t_k), in ODERNN's column order.
            parts = [x if j < 0 else model.field(j).output(new[j]) for j in model.sources(layer)]
            u = field.project(torch.cat(parts, dim=-1))
            new.append(old[layer] + dt * field(t, old[layer], u))
        return torch.stack(new).reshape(-1)

    return step


def linearize(
    model: ODERNN,
    h: torch.Tensor,
    x: ArrayLike | torch.Tensor,
    *,
    kind: str = "discrete",
    coupling: str = "sampled",
    dt: float = 1.0,
    create_graph: bool = False,
) -> StateSpace:
    """State-space matrices (A, B, C, D) of the whole stack around the state h and input x.

    See the module docstring for the two kinds. The matrices are exact Jacobians (forward-mode
    automatic differentiation, ``torch.func.jacfwd``) of the Euler step of the solve (discrete)
    or of the joint field (continuous); around a fixed point h* of the step (F(h*, x) = 0) they
    describe small deviations exactly to first order.

    Arguments:
        model: a unidirectional ``ODERNN`` (any cell, any skips).
        h: (..., num_layers, state_size) the state(s) (LSTM: state_size = 2 * hidden, [h, c]).
        x: (..., input_size) the held input, broadcast against h's leading dimensions.
        kind: ``"discrete"`` (Euler step) or ``"continuous"`` (joint field).
        coupling: ``"sampled"`` (the solve's default: layer l reads its sources' new states) or
            ``"continuous"`` (every layer reads the previous states); discrete only (the
            continuous kind is the continuously coupled field).
        dt: the Euler step, one step per sample interval (discrete only).
        create_graph: keep the graph to the model's parameters and to h and x (default: the
            matrices are detached).

    Returns:
        ``StateSpace(A, B, C, D, kind, dt)`` of torch tensors (dt None when continuous) with
        n = num_layers * state_size states, m = input_size inputs and p = num_layers *
        hidden_size outputs (layer-major: output
        ``l * hidden + j`` is unit j of layer l), each with h's leading dimensions first.
    """
    _check_linearizable(model)
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling: expected one of {COUPLINGS}, got {coupling!r}")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < float("inf"):
        raise ValueError(f"dt: expected a positive finite step, got {dt!r}")
    L, S, H = model.num_layers, model.layers[0].state_size, model.hidden_size
    dtype = model.layers[0].weight_ih.dtype
    device = model.layers[0].weight_ih.device
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"h: expected a torch.Tensor, got {type(h).__name__}")
    if h.dim() < 2 or tuple(h.shape[-2:]) != (L, S):
        raise ValueError(
            f"h: expected shape (..., num_layers, state_size) = (..., {L}, {S}), "
            f"got {tuple(h.shape)}"
        )
    h = h.to(dtype=dtype, device=device)
    x = torch.as_tensor(x, dtype=dtype, device=device)
    if x.dim() < 1 or x.shape[-1] != model.input_size:
        raise ValueError(
            f"x: expected shape (..., input_size) = (..., {model.input_size}), got {tuple(x.shape)}"
        )
    for name, v in (("h", h), ("x", x)):
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name}: expected finite values, got NaN or inf entries")
    lead = torch.broadcast_shapes(h.shape[:-2], x.shape[:-1])
    flat_h = h.expand(*lead, L, S).reshape(-1, L * S)
    flat_x = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])
    t = torch.zeros((), dtype=dtype, device=device)
    if kind == "continuous":

        def fn(hv: torch.Tensor, xv: torch.Tensor) -> torch.Tensor:
            return model.joint_field(hv.reshape(L, S), xv, t).reshape(-1)
    else:
        fn = _step_map(model, coupling, float(dt), t)
    with torch.set_grad_enabled(create_graph), warnings.catch_warnings():
        # torch's first forward-AD call loads decompositions written with the deprecated
        # torch.jit.script; the warning is about torch's internals, not about this call.
        warnings.filterwarnings("ignore", "`torch.jit.script`", DeprecationWarning)
        A, B = vmap(jacfwd(fn, argnums=(0, 1)))(flat_h, flat_x)
    n, m = L * S, model.input_size
    pick = torch.cat([torch.arange(H, device=device) + l * S for l in range(L)])
    if kind == "continuous":
        C = torch.zeros(A.shape[0], L * H, n, dtype=dtype, device=device)
        C[:, torch.arange(L * H, device=device), pick] = 1.0
        D = torch.zeros(A.shape[0], L * H, m, dtype=dtype, device=device)
    else:
        C, D = A[:, pick], B[:, pick]
    A, B, C, D = (v.reshape(*lead, *v.shape[1:]) for v in (A, B, C, D))
    if not create_graph:
        A, B, C, D = (v.detach() for v in (A, B, C, D))
    return StateSpace(A, B, C, D, kind=kind, dt=float(dt) if kind == "discrete" else None)


def frequency_response(
    system: ODERNN | StateSpace | tuple,
    omegas: ArrayLike,
    *,
    h: torch.Tensor | None = None,
    x: ArrayLike | torch.Tensor | None = None,
    kind: str | None = None,
    coupling: str = "sampled",
    dt: float | None = None,
    direction: ArrayLike | None = None,
    num_layers: int | None = None,
    create_graph: bool = False,
) -> FrequencyResponse:
    """Numeric frequency response of a model's linearisation or of given (A, B, C, D).

    H(omega) = C (z I - A)^{-1} B + D with z = e^{i omega dt} (discrete, scipy's ``dfreqresp``
    convention) or z = i omega (continuous, ``freqresp``), for all frequencies at once: one
    batched ``torch.linalg.solve`` of (F, n, n) complex systems. Any size: the cost is
    F solves of order n^3 / 3, no symbolic algebra.

    Arguments:
        system: an ``ODERNN`` (linearised by ``linearize`` at ``h``, ``x``), a ``StateSpace``
            (its kind and dt are used), or a tuple ``(A, B, C, D)`` of (n, n), (n, m), (p, n),
            (p, m) matrices (torch, numpy or nested sequences; D may be None for zeros).
        omegas: (F,) frequencies; discrete: in (0, pi / dt) (below Nyquist), continuous: > 0.
        h: model only: (num_layers, state_size) the state (default zeros: the fixed point of a
            stack without biases at x = 0; otherwise a point of
            ``find_fixed_points(model, x).points``).
        x: model only: (input_size,) the held input (default zeros).
        kind, coupling, dt: as for ``linearize`` (dt is also the sample spacing of z); default
            ``"discrete"`` and 1.0, or the ``StateSpace``'s own (given values must match it).
        direction: (m,) the input direction e (default (1, ..., 1) / sqrt(m), as
            ``measure_gain``); normalised to unit length.
        num_layers: outputs split into this many equal consecutive groups for ``gain``
            (default: the model's layers; for matrices every output its own group); for
            matrices also the number of equal diagonal blocks of A tried for a block
            forward substitution (used when A is block lower triangular, as a stack's is).
        create_graph: keep the graph (default: detached tensors).

    Returns:
        ``FrequencyResponse`` of torch tensors (float64 / complex128 for float64 systems) with
        ``source="linearised"``; its phases follow the convention of the module docstring.
    """
    if isinstance(system, StateSpace):
        for name, given, own in (("kind", kind, system.kind), ("dt", dt, system.dt)):
            if given is not None and own is not None and given != own:
                raise ValueError(
                    f"{name}: expected the StateSpace's own {name} = {own!r} (or nothing), "
                    f"got {given!r}"
                )
        kind = system.kind
        dt = 1.0 if system.dt is None else system.dt
    kind = "discrete" if kind is None else kind
    dt = 1.0 if dt is None else dt
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < float("inf"):
        raise ValueError(f"dt: expected a positive finite sample spacing, got {dt!r}")
    if isinstance(system, ODERNN):
        _check_linearizable(system)
        L, S = system.num_layers, system.layers[0].state_size
        dtype = system.layers[0].weight_ih.dtype
        h = torch.zeros(L, S, dtype=dtype) if h is None else h
        x = torch.zeros(system.input_size, dtype=dtype) if x is None else x
        A, B, C, D = linearize(
            system, h, x, kind=kind, coupling=coupling, dt=dt, create_graph=create_graph
        )
        groups = L if num_layers is None else num_layers
        blocks = L
    elif isinstance(system, StateSpace) or (isinstance(system, tuple) and len(system) == 4):
        A, B, C, D = _as_matrices(tuple(system))
        groups = C.shape[0] if num_layers is None else num_layers
        blocks = 1 if num_layers is None else num_layers
    else:
        raise TypeError(
            f"system: expected an rnnode.ODERNN, a StateSpace or a tuple (A, B, C, D), got "
            f"{type(system).__name__}"
        )
    m, p = B.shape[-1], C.shape[0]
    if A.dim() != 2:
        raise ValueError(f"h: expected a single state (num_layers, state_size), got A {A.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or p % groups:
        raise ValueError(
            f"num_layers: expected a positive integer dividing the {p} outputs, got {groups!r}"
        )
    omega = np.asarray(omegas, dtype=np.float64)
    if omega.ndim != 1 or omega.size == 0 or not np.all(np.isfinite(omega)):
        raise ValueError(
            f"omegas: expected a 1-D sequence of finite frequencies, got shape {omega.shape}"
        )
    if kind == "discrete" and not (np.all(omega > 0) and np.all(omega < np.pi / dt)):
        raise ValueError(
            f"omegas: expected frequencies in (0, pi / dt) = (0, {np.pi / dt:.6g}), got values "
            f"in [{omega.min():.6g}, {omega.max():.6g}]"
        )
    if kind == "continuous" and not np.all(omega > 0):
        raise ValueError(f"omegas: expected positive frequencies, got min {omega.min():.6g}")
    cdtype = torch.complex128 if A.dtype == torch.float64 else torch.complex64
    w = torch.as_tensor(omega, dtype=A.dtype, device=A.device)
    z = torch.polar(torch.ones_like(w), w * dt) if kind == "discrete" else torch.complex(0 * w, w)
    with torch.set_grad_enabled(create_graph):
        X = _resolvent_times(z, A.to(cdtype), B.to(cdtype), blocks)  # (F, n, m)
        response = C.to(cdtype) @ X + D.to(cdtype)  # (F, p, m)
        e = _unit_direction(direction, m, A.dtype, A.device).to(cdtype)
        along = response @ e  # (F, p): H_j(omega) e
        unit = along.abs().reshape(w.shape[0], groups, p // groups).permute(1, 0, 2)
        gain = unit.pow(2).sum(-1).sqrt()
        phase = unwrapped_phase(response, dim=0)
        unit_phase = unwrapped_phase(along, dim=0)
        unit_phase = unit_phase.reshape(w.shape[0], groups, p // groups).permute(1, 0, 2)
    tensors = (w, response, gain, unit, phase, unit_phase)
    if not create_graph:
        w, response, gain, unit, phase, unit_phase = (v.detach() for v in tensors)
    return FrequencyResponse(
        w, response, gain, unit, phase, unit_phase, kind=kind, dt=float(dt), source="linearised"
    )


def _resolvent_times(z: torch.Tensor, A: torch.Tensor, B: torch.Tensor, blocks: int):
    """(z I - A)^{-1} B for every z (F,), batched; A (n, n), B (n, m).

    A stack's A is block lower triangular (layer l reads only layers below it), so with
    ``blocks`` equal diagonal blocks the solve runs block by block, forward substitution:
    X_l = (z I - A_ll)^{-1} (B_l + sum_{j < l} A_lj X_j), L solves of size n / L instead of
    one of size n (L^2 times fewer operations). Falls back to the full solve where the blocks
    above the diagonal are not zero.
    """
    n, m = B.shape
    F = z.shape[0]
    size = n // blocks if blocks and n % blocks == 0 else n
    upper = torch.ones(n, n, dtype=torch.bool, device=A.device).triu(1)
    if size < n:
        rows = torch.arange(n, device=A.device) // size
        upper = rows[:, None] < rows[None, :]
    if size == n or bool(A[upper].abs().amax() > 0):
        eye = torch.eye(n, dtype=A.dtype, device=A.device)
        return torch.linalg.solve(z[:, None, None] * eye - A, B.expand(F, n, m))
    eye = torch.eye(size, dtype=A.dtype, device=A.device)
    parts: list[torch.Tensor] = []
    for l in range(n // size):
        block = slice(l * size, (l + 1) * size)
        rhs = B[block].expand(F, size, m)
        if l:
            rhs = rhs + A[block, : l * size] @ torch.cat(parts, dim=1)
        parts.append(torch.linalg.solve(z[:, None, None] * eye - A[block, block], rhs))
    return torch.cat(parts, dim=1)


def _as_matrices(system: tuple) -> tuple[torch.Tensor, ...]:
    A = system[0]
    ref = A if isinstance(A, torch.Tensor) else None
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float64
    out: list[torch.Tensor | None] = []
    for name, v in zip("ABCD", system, strict=True):
        if v is None and name == "D":
            out.append(None)
            continue
        try:
            t = torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{name}: expected a matrix of numbers, got {type(v).__name__}"
            ) from err
        if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name}: expected a real matrix, got dtype {t.dtype}")
        t = t.to(dtype)
        if t.dim() == 1:
            t = t[:, None] if name == "B" else t[None, :]
        if t.dim() != 2:
            raise ValueError(f"{name}: expected a 2-D matrix, got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: expected finite entries, got NaN or inf")
        out.append(t)
    A, B, C, D = out
    assert A is not None and B is not None and C is not None  # only D may be None
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError(f"A: expected a square (n, n) matrix, got {tuple(A.shape)}")
    if B.shape[0] != n:
        raise ValueError(f"B: expected shape (n, m) = ({n}, m), got {tuple(B.shape)}")
    if C.shape[1] != n:
        raise ValueError(f"C: expected shape (p, n) = (p, {n}), got {tuple(C.shape)}")
    if D is None:
        D = torch.zeros(C.shape[0], B.shape[1], dtype=dtype, device=A.device)
    if D.shape != (C.shape[0], B.shape[1]):
        raise ValueError(
            f"D: expected shape (p, m) = ({C.shape[0]}, {B.shape[1]}), got {tuple(D.shape)}"
        )
    return A, B, C, D
