"""Frequency responses of recurrent layers: symbolic gains and sine-probe measurements.

A linear layer h_t = a h_{t-1} + x_t passes a sine x_t = A sin(omega t) with the gain

    g(omega) = 1 / sqrt(1 - 2 a cos(omega) + a^2),

so a layer with ``a`` near 1 resonates with slow signals and one with small ``a`` passes fast ones
(timescale specialization). ``linear_gain`` and ``transfer_gain`` derive such gains with sympy from
the recurrence or a state-space model; ``measure_gain`` measures them for any ``ODERNN`` by driving
it with sines, so that nonlinear stacks can be compared with the linearized theory.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple, TypeAlias

import numpy as np
import sympy as sp
import torch
from numpy.typing import ArrayLike

from rnnode import ODERNN
from rnnode._validate import check_positive

from ._common import as_model
from ._response import FrequencyResponse, unwrapped_phase

__all__ = [
    "KINDS",
    "MAX_SYMBOLIC_STATES",
    "MatrixLike",
    "Peaks",
    "linear_gain",
    "measure_gain",
    "measure_response",
    "preferred_frequencies",
    "stack_gain",
    "transfer_gain",
]

#: A matrix given as nested sequences, a numpy array, a torch tensor or a sympy Matrix.
MatrixLike: TypeAlias = Sequence | np.ndarray | torch.Tensor | sp.Matrix

KINDS = ("discrete", "continuous")


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    return kind


def _modulus(expr: sp.Expr) -> sp.Expr:
    """|expr| for an expression whose symbols are all real, as a simplified real expression.

    Numerator and denominator are taken apart so that |p / q|^2 = (p p*) / (q q*) expands into
    trigonometric polynomials that ``simplify`` can collect.
    """
    num, den = sp.fraction(sp.cancel(sp.together(expr)))

    def squared(p: sp.Expr) -> sp.Expr:
        # p p* is real; with float coefficients rounding leaves ~1e-15 i terms, which go.
        real, _ = sp.expand_complex(sp.expand(p * sp.conjugate(p))).as_real_imag()
        return sp.simplify(real)

    return sp.simplify(sp.sqrt(squared(num)) / sp.sqrt(squared(den)))


def linear_gain(kind: str = "discrete") -> sp.Expr:
    """The gain |H(e^{i omega})| of a scalar linear layer, derived by sympy.

    ``kind="discrete"``: h_t = a h_{t-1} + x_t. The z-transform gives H = a z^{-1} H + X, so
    H / X = 1 / (1 - a z^{-1}); on the unit circle z = e^{i omega} its modulus simplifies to
    1 / sqrt(a^2 - 2 a cos(omega) + 1).

    ``kind="continuous"``: dh/dt = -h / tau + x. The Laplace transform gives s H = -H / tau + X,
    so H / X = 1 / (s + 1 / tau); at s = i omega the modulus is tau / sqrt(tau^2 omega^2 + 1).

    Arguments:
        kind: ``"discrete"`` or ``"continuous"``.

    Returns:
        A sympy expression in the real symbols ``a`` and ``omega`` (discrete) or the positive
        ``tau`` and real ``omega`` (continuous); find them by name in ``expr.free_symbols``.
    """
    _check_kind(kind)
    omega = sp.Symbol("omega", real=True)
    H, X, z = sp.symbols("H X z")
    if kind == "discrete":
        a = sp.Symbol("a", real=True)
        recurrence = sp.Eq(H, a * H / z + X)  # z-transform of h_t = a h_{t-1} + x_t
        on_circle = {z: sp.exp(sp.I * omega)}
    else:
        tau = sp.Symbol("tau", positive=True)
        recurrence = sp.Eq(z * H, -H / tau + X)  # Laplace transform of dh/dt = -h/tau + x
        on_circle = {z: sp.I * omega}
    transfer = sp.solve(recurrence, H)[0] / X
    return _modulus(transfer.subs(on_circle))


#: The most states the symbolic routes take by default: sympy's simplification of |H| grows
#: steeply with n (about 0.5 s at n = 2, 4 s at n = 4, a minute at n = 5, minutes beyond).
MAX_SYMBOLIC_STATES = 4


def _check_symbolic_size(n: int, max_states: int) -> None:
    if n > max_states:
        raise ValueError(
            f"A: symbolic gains are limited to n <= max_states = {max_states} states (sympy's "
            f"simplification grows steeply with n), got n = {n}; use "
            "rnnode.analysis.frequency_response for the numeric response at any size"
        )


def transfer_gain(
    A: MatrixLike,
    B: MatrixLike,
    C: MatrixLike,
    kind: str = "discrete",
    *,
    max_states: int = MAX_SYMBOLIC_STATES,
) -> sp.Expr:
    """|C (e^{i omega} I - A)^{-1} B| (discrete) or |C (i omega I - A)^{-1} B| (continuous).

    The gain of the single-input system h_t = A h_{t-1} + B x_t, y_t = C h_t (or
    dh/dt = A h + B x, y = C h) at frequency omega. A factor e^{i omega} between the conventions
    h_t = A h_{t-1} + B x_t and h_{t+1} = A h_t + B x_t has modulus 1, so both give this gain.
    With p > 1 outputs the gain is the Euclidean norm over them,
    sqrt(sum_j |H_j(omega)|^2): ``measure_gain``'s convention for a layer's units.

    Size limit: symbolic simplification is exact but grows steeply with the number of states
    n; beyond ``max_states`` (default 4) this raises and points to ``frequency_response``,
    which evaluates the same gain numerically at any size.

    Arguments:
        A: (n, n) state matrix: numbers, a numpy array, a torch tensor or sympy entries.
        B: (n, 1) or (n,) input vector.
        C: (p, n) output matrix, or (n,) for one output.
        kind: ``"discrete"`` or ``"continuous"``.
        max_states: the largest n accepted.

    Returns:
        A sympy expression in the real symbol ``omega`` (and any symbols of the matrices, which
        are treated as real).
    """
    _check_kind(kind)
    A, B, C = (_as_matrix(name, m) for name, m in (("A", A), ("B", B), ("C", C)))
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError(f"A: expected a square (n, n) matrix, got shape {A.shape}")
    _check_symbolic_size(n, max_states)
    if B.shape == (1, n) and n != 1:
        B = B.T
    if C.shape == (n, 1) and n != 1:
        C = C.T
    if B.shape != (n, 1):
        raise ValueError(f"B: expected shape (n, 1) = ({n}, 1) (single input), got {B.shape}")
    if C.shape[1] != n:
        raise ValueError(f"C: expected shape (p, n) = (p, {n}), got {C.shape}")
    # The modulus needs real symbols; swap in real twins and swap the user's symbols back after.
    symbols = set().union(A.free_symbols, B.free_symbols, C.free_symbols)
    real = {s: sp.Symbol(s.name, real=True) for s in symbols if not s.is_real}
    A, B, C = (m.subs(real) for m in (A, B, C))
    omega = sp.Symbol("omega", real=True)
    z = sp.Symbol("z")
    point = sp.exp(sp.I * omega) if kind == "discrete" else sp.I * omega
    response = (C * (z * sp.eye(n) - A).LUsolve(B)).subs(z, point)
    if C.shape[0] == 1:
        gain = _modulus(response[0, 0])
    else:
        gain = sp.sqrt(sum(_modulus(response[j, 0]) ** 2 for j in range(C.shape[0])))
    return gain.subs({v: s for s, v in real.items()})


def stack_gain(
    weight_hh: Sequence,
    weight_ih: Sequence | None = None,
    tau: Sequence | None = None,
    kind: str = "discrete",
    *,
    max_states: int = MAX_SYMBOLIC_STATES,
) -> list[sp.Expr]:
    """Gains of every layer of a stack of linear layers, scalar or vector, from ``transfer_gain``.

    Discrete (the sampled stack solved by Euler with step 1, rnnode's default):
    h^l_t = W^l_hh h^l_{t-1} + W^l_ih h^{l-1}_t with h^0 = x, so layer l sees layer l-1 *at the
    same step*: h_t = N h_t + D h_{t-1} + b x_t, i.e. A = (I - N)^{-1} D and B = (I - N)^{-1} b.

    Continuous (``cell="linear"``, ``coupling="continuous"``):
    dh^l/dt = ((W^l_hh - I) h^l + W^l_ih h^{l-1}) / tau_l.

    For a plain chain of scalar layers the gains multiply: |G_l| = prod_{j <= l} |w_j| g_j(omega).
    A vector layer's gain is the Euclidean norm over its units (``measure_gain``'s convention).
    The total number of states, sum of the layers' sizes, is limited to ``max_states`` (see
    ``transfer_gain``); beyond it use ``frequency_response``.

    Arguments:
        weight_hh: the recurrent weights, one per layer: a number or sympy symbol (scalar layer)
            or an (H_l, H_l) matrix (numpy, torch, nested sequences, sympy).
        weight_ih: the feed-forward weights, one per layer (default all 1 for scalar layers):
            a number or an (H_l, H_{l-1}) matrix; layer 1's has one column (single input).
        tau: the time constants (continuous only; default all 1).
        kind: ``"discrete"`` or ``"continuous"``.
        max_states: the largest total number of states accepted.

    Returns:
        One sympy expression in ``omega`` per layer, bottom first.
    """
    _check_kind(kind)
    a = [_as_matrix(f"weight_hh[{l}]", v) for l, v in enumerate(weight_hh)]
    L = len(a)
    if L < 1:
        raise ValueError("weight_hh: expected one recurrent weight per layer, got none")
    sizes = [m.shape[0] for m in a]
    for l, m in enumerate(a):
        if m.shape != (sizes[l], sizes[l]):
            raise ValueError(f"weight_hh[{l}]: expected a square matrix, got shape {m.shape}")
    if weight_ih is None:
        if any(n != 1 for n in sizes):
            raise ValueError("weight_ih: expected the feed-forward matrices of vector layers")
        w = [sp.Matrix([[1]]) for _ in range(L)]
    else:
        w = [_as_matrix(f"weight_ih[{l}]", v) for l, v in enumerate(weight_ih)]
    taus = [sp.Integer(1)] * L if tau is None else [sp.sympify(_scalar(v)) for v in tau]
    for name, values in (("weight_ih", w), ("tau", taus)):
        if len(values) != L:
            raise ValueError(f"{name}: expected {L} values (one per layer), got {len(values)}")
    for l, m in enumerate(w):
        cols = 1 if l == 0 else sizes[l - 1]
        if l == 0 and m.shape == (1, sizes[0]) and sizes[0] > 1:
            m = w[0] = m.T
        if m.shape != (sizes[l], cols):
            raise ValueError(
                f"weight_ih[{l}]: expected shape ({sizes[l]}, {cols}), got {m.shape}"
                + (" (single input)" if l == 0 else "")
            )
    if kind == "continuous" and tau is not None and any(t.is_positive is False for t in taus):
        raise ValueError(f"tau: expected positive time constants, got {list(tau)}")
    n = sum(sizes)
    _check_symbolic_size(n, max_states)
    start = [sum(sizes[:l]) for l in range(L)]
    below = sp.zeros(n, n)  # W^l_ih in the block below the diagonal: layer l driven by l - 1
    for l in range(1, L):
        below[start[l] : start[l] + sizes[l], start[l - 1] : start[l]] = w[l]
    drive = sp.zeros(n, 1)
    drive[: sizes[0], 0] = w[0]
    own = sp.diag(*a)
    if kind == "discrete":
        lift = (sp.eye(n) - below).inv()  # nilpotent N, so the inverse is I + N + N^2 + ...
        A = lift * own
        B = lift * drive
    else:
        scale = sp.diag(*[sp.eye(sizes[l]) / taus[l] for l in range(L)])
        A = scale * (own - sp.eye(n) + below)
        B = scale * drive
    eye = sp.eye(n)
    return [
        transfer_gain(A, B, eye[start[l] : start[l] + sizes[l], :], kind, max_states=max_states)
        for l in range(L)
    ]


def _scalar(v):
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return v.detach().item()
    if isinstance(v, np.ndarray) and v.size == 1:
        return v.item()
    return v


def _as_matrix(name: str, m) -> sp.Matrix:
    if isinstance(m, torch.Tensor):
        m = m.detach().cpu().numpy()
    if isinstance(m, np.ndarray) and m.ndim == 0:
        m = m.item()
    if isinstance(m, (int, float, np.number, sp.Expr)):
        return sp.Matrix([[sp.sympify(m)]])
    try:
        matrix = sp.Matrix(m)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name}: expected a matrix of numbers or sympy expressions, got {m!r}"
        ) from err
    return matrix


def measure_gain(
    model: ODERNN,
    omegas: ArrayLike,
    amplitude: float = 1e-3,
    *,
    num_steps: int = 400,
    transient: int | None = None,
    dt: float = 1.0,
    direction: ArrayLike | None = None,
    hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
    **solve_kwargs,
) -> torch.Tensor:
    """Steady-state gain of every layer at each driving frequency, measured with sine probes.

    The input is x_k = amplitude * sin(omega * t_k) * e at the sample times t_k = k * dt,
    k = 1..num_steps, for all ``omegas`` at once (the batch dimension is the frequency). For
    layer l and unit j, the hidden state at the sample times of the steady-state window is
    fitted by least squares as c_0 + c_s sin(omega t_k) + c_c cos(omega t_k); the gain is
    sqrt(sum_j (c_s^2 + c_c^2)) / amplitude, the Euclidean norm of the units' amplitudes per unit
    input amplitude. ``frequency_response`` computes the same quantity from the linearisation;
    ``measure_response`` returns the phases too.

    Notes:
        Transient: the first ``transient`` samples (default half of ``num_steps``) are discarded,
        so a mode decaying like a^k must have a^transient far below the wanted accuracy. The
        reverse direction of a bidirectional layer starts at t_T, so its transient is discarded
        at the end instead. Amplitude: the constant c_0 absorbs the offset that biases and
        nonlinearities add; harmonics of a nonlinear response are not fitted and leave a
        residual, which is why a small ``amplitude`` measures the linearized gain.
        Frequencies are in radians per unit time; they must lie in (0, pi / dt), below the
        Nyquist frequency of the sampling.

        Trust checks: an amplitude below tiny / eps of the model's dtype (1e-292 in float64,
        1e-31 in float32) raises (products leave the normal range); a layer whose response is
        within 1000 eps of its state's magnitude (rounding decides it: for example amplitude
        1e-9 in float32) and a layer whose fit leaves a residual larger than the fitted sine
        (no steady state at the driving frequency: an unstable or self-oscillating layer, or a
        transient too short) give a ``RuntimeWarning`` naming the layer; a non-finite state
        raises.

    Arguments:
        model: any ``ODERNN``; a torch.nn.RNN, GRU or LSTM is converted with
            ``rnnode.from_torch``.
        omegas: (F,) driving frequencies.
        amplitude: A, the input amplitude (small: the linear regime); Python or numpy number.
        num_steps: number of samples T.
        transient: samples discarded before the fit (default ``num_steps // 2``).
        dt: sample spacing (``t = (0, dt, ..., num_steps * dt)``).
        direction: (input_size,) the input direction e (default (1, ..., 1) / sqrt(input_size));
            normalised to unit length.
        hx: initial state as for ``model.solve`` with batch F, or without the batch dimension
            ((D * num_layers, hidden): the same state for every frequency). Default zeros.
        **solve_kwargs: passed to ``model.solve`` (``method``, ``step_size``, ``coupling``, ...);
            not ``t``: the sample times are set by ``dt`` and ``num_steps``.

    Returns:
        (num_layers, F) detached torch tensor of gains (float64).
    """
    _, amplitudes = _probe(
        model, omegas, amplitude, num_steps, transient, dt, direction, hx, solve_kwargs, 4
    )
    return amplitudes.abs().pow(2).sum(dim=(1, -1)).sqrt()


def measure_response(
    model: ODERNN,
    omegas: ArrayLike,
    amplitude: float = 1e-3,
    *,
    num_steps: int = 400,
    transient: int | None = None,
    dt: float = 1.0,
    direction: ArrayLike | None = None,
    hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
    **solve_kwargs,
) -> FrequencyResponse:
    """Steady-state gain *and phase* of every unit, measured with sine probes.

    The probes of ``measure_gain`` (same arguments, same checks and warnings): unit j's state
    at the sample times of the steady-state window is fitted as c_0 + c_s sin(omega t_k) +
    c_c cos(omega t_k) = c_0 + |c| sin(omega t_k + arg c) with c = c_s + i c_c, so the measured
    response along the input direction e is H_j(omega) e = c / amplitude: its modulus is the
    unit's gain and its argument the phase, in ``frequency_response``'s convention (the input
    sin(omega t) e drives |H_j e| sin(omega t + phi_j); phases unwrapped along increasing
    frequency from the principal value at the first one).

    Units: layer-major, then direction (forward first), then hidden unit, so p =
    num_layers * directions * hidden_size (the hidden part only: an LSTM's cell is not read).

    Arguments:
        model, omegas, amplitude, num_steps, transient, dt, direction, hx, **solve_kwargs: as
            for ``measure_gain`` (the same probes, checks and warnings).

    Returns:
        ``FrequencyResponse`` with ``source="measured (sine probe)"``, ``kind=None``:
        ``response`` (F, p, 1) complex, ``gain`` (num_layers, F) equal to ``measure_gain``'s,
        ``unit_gain`` and ``unit_phase`` (num_layers, F, directions * hidden_size), ``phase``
        (F, p, 1); float64 / complex128 detached tensors.
    """
    omega, amplitudes = _probe(
        model, omegas, amplitude, num_steps, transient, dt, direction, hx, solve_kwargs, 4
    )
    L, D, F, H = amplitudes.shape
    unit = amplitudes.permute(0, 2, 1, 3).reshape(L, F, D * H)  # (L, F, units)
    response = unit.permute(1, 0, 2).reshape(F, L * D * H, 1)
    unit_phase = unwrapped_phase(unit, dim=1)
    return FrequencyResponse(
        omegas=torch.from_numpy(omega),
        response=response,
        gain=unit.abs().pow(2).sum(-1).sqrt(),
        unit_gain=unit.abs(),
        phase=unwrapped_phase(response, dim=0),
        unit_phase=unit_phase,
        kind=None,
        dt=float(dt),
        source="measured (sine probe)",
    )


def _probe(
    model,
    omegas,
    amplitude,
    num_steps,
    transient,
    dt,
    direction,
    hx,
    solve_kwargs,
    stacklevel,
) -> tuple[np.ndarray, torch.Tensor]:
    """The sine probes of ``measure_gain``: (F,) frequencies and the complex amplitudes
    (c_s + i c_c) / amplitude (num_layers, directions, F, hidden) of every unit."""
    model = as_model(model)
    omega = _check_omegas(omegas, dt)
    amplitude = check_positive("amplitude", amplitude)
    if "t" in solve_kwargs:
        raise ValueError(
            "t: measure_gain sets the sample times itself, t_k = k * dt for k = 0..num_steps; "
            "pass dt (and num_steps) instead of t"
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 4:
        raise ValueError(f"num_steps: expected an integer >= 4, got {num_steps!r}")
    transient = num_steps // 2 if transient is None else transient
    if isinstance(transient, bool) or not isinstance(transient, int):
        raise ValueError(f"transient: expected an integer, got {transient!r}")
    if not 0 <= transient <= num_steps - 3:
        raise ValueError(
            f"transient: expected 0 <= transient <= num_steps - 3 = {num_steps - 3} (the fit "
            f"needs 3 samples), got {transient}"
        )
    dtype = model.layers[0].weight_ih.dtype
    device = model.layers[0].weight_ih.device
    info = torch.finfo(dtype)
    if amplitude < info.tiny / info.eps:
        raise ValueError(
            f"amplitude: expected at least tiny / eps = {info.tiny / info.eps:.3g} for the model's "
            f"dtype {dtype} (smaller inputs leave the normal floating-point range), got "
            f"{amplitude!r}"
        )
    e = _unit_direction(direction, model.input_size, dtype, device)
    times = torch.arange(num_steps + 1, dtype=dtype, device=device) * dt
    w = torch.as_tensor(omega, dtype=dtype, device=device)
    phase = times[1:, None] * w  # (T, F)
    x = amplitude * torch.sin(phase)[..., None] * e  # (T, F, input_size)
    hx = _broadcast_hx(hx, w.shape[0])
    with torch.no_grad():
        hidden = model.solve(x, hx, t=times, **solve_kwargs).hidden  # (L, D, T+1, F, H)
    if not bool(torch.isfinite(hidden).all()):
        raise ValueError(
            "model: the probed states became non-finite (the dynamics diverge at this input); "
            "a gain is defined only for a stable layer"
        )
    hidden = hidden[:, :, 1:].double()  # the sample times t_1..t_T, where the sines are known
    keep = num_steps - transient
    directions, residuals, scales = [], [], []
    for d in range(hidden.shape[1]):
        window = slice(transient, None) if d == 0 else slice(0, keep)
        amp, residual = _fit_amplitude(hidden[:, d, window], phase[window].double())
        directions.append(amp)
        residuals.append(residual)
        scales.append(hidden[:, d, window].abs().flatten(1).amax(1))
    amplitudes = torch.stack(directions, dim=1)  # (L, D, F, H) complex
    response = amplitudes.abs().pow(2).sum(dim=(1, -1)).sqrt()  # (L, F)
    _check_probe(
        response,
        torch.stack(residuals).pow(2).sum(dim=(0, -1)).sqrt(),
        torch.stack(scales).amax(0),
        info.eps,
        dtype,
        stacklevel,
    )
    return omega, (amplitudes / amplitude).cpu()


def _broadcast_hx(hx, batch: int):
    """hx without a batch dimension (every tensor 2-D) expanded to the F frequencies."""
    if hx is None:
        return None
    parts = hx if isinstance(hx, (tuple, list)) else (hx,)
    if all(isinstance(p, torch.Tensor) and p.dim() == 2 for p in parts):
        parts = tuple(p.unsqueeze(1).expand(-1, batch, -1).contiguous() for p in parts)
        return parts if isinstance(hx, (tuple, list)) else parts[0]
    return hx


def _check_probe(response, residual, scale, eps: float, dtype, stacklevel: int) -> None:
    """Warn, once, where a layer's measured response cannot be trusted (see ``measure_gain``)."""
    problems = []
    for l in range(response.shape[0]):
        lost = response[l] < 1000 * eps * scale[l]
        if bool(lost.any()):
            problems.append(
                f"amplitude: layer {l + 1}'s response ({float(response[l].min()):.3g}) is within "
                f"1000 eps of its state's magnitude ({float(scale[l]):.3g}) in {dtype}: rounding "
                "decides the measured gain; use a larger amplitude or a float64 model"
            )
        noisy = (residual[l] > response[l]) & ~lost
        if bool(noisy.any()):
            problems.append(
                f"model: layer {l + 1} has no steady state at the driving frequency at "
                f"{int(noisy.sum())} frequencies (the fit's residual exceeds the fitted sine): "
                "the layer is unstable or self-oscillating, or the transient is too short; the "
                "gain there is not meaningful"
            )
    if problems:
        warnings.warn("; ".join(problems), RuntimeWarning, stacklevel=stacklevel)


def _fit_amplitude(h: torch.Tensor, phase: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Complex amplitude at the driving frequency of every (layer, frequency, unit) series.

    h: (L, K, F, H) samples; phase: (K, F) omega * t_k. Least squares on [1, sin, cos] per
    frequency, one batched solve. Returns c_s + i c_c (L, F, H), whose modulus is the
    amplitude and whose argument the phase of c_s sin + c_c cos = |c| sin(. + arg c), and the
    residuals' RMS times sqrt(2) (L, F, H).
    """
    basis = torch.stack([torch.ones_like(phase), torch.sin(phase), torch.cos(phase)], -1)
    basis = basis.transpose(0, 1)  # (F, K, 3)
    target = h.permute(2, 1, 0, 3).flatten(2)  # (F, K, L * H)
    coef = torch.linalg.lstsq(basis, target).solution  # (F, 3, L * H)
    amp = torch.complex(coef[:, 1], coef[:, 2])  # (F, L * H): c_s + i c_c
    # RMS residual of the fit, times sqrt(2) so that it compares with a sine's amplitude.
    rest = (target - basis @ coef).pow(2).mean(1).mul(2).sqrt()
    rest = rest.reshape(rest.shape[0], h.shape[0], h.shape[-1]).transpose(0, 1)
    return amp.reshape(amp.shape[0], h.shape[0], h.shape[-1]).transpose(0, 1), rest


def _check_omegas(omegas, dt: float) -> np.ndarray:
    if not (isinstance(dt, (int, float)) and 0 < dt < float("inf")):
        raise ValueError(f"dt: expected a positive finite sample spacing, got {dt!r}")
    omega = np.asarray(omegas, dtype=np.float64)
    nyquist = np.pi / dt
    if omega.ndim != 1 or omega.size == 0:
        raise ValueError(f"omegas: expected a 1-D sequence of frequencies, got shape {omega.shape}")
    if not (np.all(np.isfinite(omega)) and np.all(omega > 0) and np.all(omega < nyquist)):
        raise ValueError(
            f"omegas: expected frequencies in (0, pi / dt) = (0, {nyquist:.6g}), got values in "
            f"[{omega.min():.6g}, {omega.max():.6g}]"
        )
    return omega


def _unit_direction(direction, size: int, dtype, device) -> torch.Tensor:
    if direction is None:
        return torch.full((size,), size**-0.5, dtype=dtype, device=device)
    e = torch.as_tensor(direction, dtype=dtype, device=device)
    if e.shape != (size,) or not bool(torch.isfinite(e).all()) or float(e.norm()) == 0:
        raise ValueError(
            f"direction: expected a finite nonzero vector of shape (input_size,) = ({size},), "
            f"got {tuple(e.shape)}"
        )
    return e / e.norm()


class Peaks(NamedTuple):
    """Preferred frequencies with their edge flags (``preferred_frequencies(...,
    return_edges=True)``): ``omega`` (num_layers,) and ``at_edge`` (num_layers,) bool, true
    where the argmax is the grid's first or last frequency (the peak may lie beyond the grid)."""

    omega: torch.Tensor
    at_edge: torch.Tensor


def preferred_frequencies(
    omegas: ArrayLike, gains: ArrayLike, *, return_edges: bool = False
) -> torch.Tensor | Peaks:
    """The frequency at which each layer's gain peaks: omegas[argmax_f gains[l, f]].

    NaN gains are skipped (a layer whose gains are all NaN gets NaN). An argmax on the grid's
    first or last frequency is no interior peak: the true maximum may lie beyond the probed
    range. Such layers are flagged: with ``return_edges=True`` in ``Peaks.at_edge``, otherwise
    by a ``RuntimeWarning`` naming them.

    Arguments:
        omegas: (F,) frequencies, increasing.
        gains: (num_layers, F), for example from ``measure_gain`` or ``frequency_response``.
        return_edges: return ``Peaks(omega, at_edge)`` instead of the frequencies alone.

    Returns:
        (num_layers,) detached float64 tensor, or ``Peaks``.
    """
    omega = np.asarray(omegas, dtype=np.float64)
    g = np.asarray(gains, dtype=np.float64)
    if omega.ndim != 1 or g.ndim != 2 or g.shape[1] != omega.shape[0]:
        raise ValueError(
            f"gains: expected shape (num_layers, len(omegas)) = (*, {omega.shape[0]}), "
            f"got {g.shape}"
        )
    empty = np.all(np.isnan(g), axis=1)
    index = np.argmax(np.where(np.isnan(g), -np.inf, g), axis=1)
    best = np.where(empty, np.nan, omega[index])
    edge = ~empty & ((index == 0) | (index == omega.shape[0] - 1))
    if return_edges:
        return Peaks(torch.from_numpy(best), torch.from_numpy(edge))
    if edge.any():
        layers = [int(l) + 1 for l in np.flatnonzero(edge)]
        warnings.warn(
            f"gains: the peak of layer(s) {layers} is at the edge of the probed frequencies "
            f"[{omega[0]:.6g}, {omega[-1]:.6g}], so the preferred frequency may lie beyond the "
            "grid; pass return_edges=True to get the flags",
            RuntimeWarning,
            stacklevel=2,
        )
    return torch.from_numpy(best)
