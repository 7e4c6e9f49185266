"""Timescales of a stack driven along a trajectory: autocorrelation, kick response, sine gain.

Where ``gain.measure_gain`` probes a stack at rest, these probes measure it at the operating
point a task drives it to: the input sequence ``x`` sets the trajectory, and each probe compares
a perturbed solve with the unperturbed one (both with the model's default solve).

- ``autocorrelation(states, max_lag)``: C(lag) = sum_{k, units, sequences} h~_k h~_{k+lag}
  * T / (T - lag) / sum h~^2, h~ the states minus their mean over time;
- ``kick_response(model, x, starts, max_lag)``: |h'_{k0+lag} - h_{k0+lag}| / |kick| after a kick
  of size ``kick`` to the top layer's state at time k0 (the input unchanged);
- ``decay_time(curve)``: the lag at which a curve first falls below curve[0] / e;
- ``trajectory_gain(model, x, omegas, amplitude)``: the gain from the input to the top layer at
  each frequency, a small sine added to the input along the trajectory;
- ``band_centre(omegas, gains)``: exp of the gain^2-weighted mean of log omega.

Every function returns detached torch tensors (``decay_time``: a float and a flag), as the rest
of ``rnnode.analysis``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike

from rnnode import ODERNN
from rnnode._validate import check_int, check_positive

__all__ = ["autocorrelation", "band_centre", "decay_time", "kick_response", "trajectory_gain"]


def _check_model(model: object) -> ODERNN:
    if not isinstance(model, ODERNN):
        raise TypeError(f"model: expected an rnnode.ODERNN, got {type(model).__name__}")
    if model.num_directions != 1:
        raise ValueError("model: expected a unidirectional ODERNN, got a bidirectional one")
    return model


def _check_sequence(name: str, x: object, dims: int = 3) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor, got {type(x).__name__}")
    if x.dim() != dims:
        raise ValueError(f"{name}: expected a tensor of {dims} dimensions, got {tuple(x.shape)}")
    return x


def _top(model: ODERNN, x: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
    """The top layer's output (T, batch, hidden) of x (T, batch, input), time first."""
    solution = model.solve(x.transpose(0, 1) if model.batch_first else x, hx)
    return solution.layer_output(model.num_layers - 1)


def autocorrelation(states: torch.Tensor, max_lag: int) -> torch.Tensor:
    """C(lag), lag = 0..max_lag: the lagged covariance summed over units and sequences, divided
    by the variance sum (C(0) = 1).

    Arguments:
        states: (T, batch, hidden), time first.
        max_lag: the longest lag (< T).

    Returns:
        (max_lag + 1,) tensor, float64.
    """
    _check_sequence("states", states)
    T = states.shape[0]
    check_int("max_lag", max_lag, minimum=1)
    if not max_lag < T:
        raise ValueError(f"max_lag: expected a positive integer below T = {T}, got {max_lag}")
    h = states.detach().cpu().numpy().astype(np.float64)
    h = h - h.mean(0, keepdims=True)
    var = float((h * h).sum())
    c = [float((h[: T - lag] * h[lag:]).sum()) * T / (T - lag) / var for lag in range(max_lag + 1)]
    return torch.tensor(c, dtype=torch.float64)


def decay_time(curve: ArrayLike) -> tuple[float, bool]:
    """The lag at which a curve starting at lag 0 first falls below curve[0] / e (linear
    interpolation between lags), and whether it never does (``edge``: then the last lag).

    Arguments:
        curve: (lags,) values at lags 0, 1, ...

    Returns:
        ``(lag, edge)``.
    """
    c = np.asarray(curve.detach().cpu() if isinstance(curve, torch.Tensor) else curve)
    c = c.astype(np.float64)
    if c.ndim != 1 or c.size < 2:
        raise ValueError(f"curve: expected a 1-d curve of >= 2 lags, got shape {c.shape}")
    level = c[0] / math.e
    below = np.nonzero(c < level)[0]
    if not below.size:
        return float(len(c) - 1), True
    k = int(below[0])
    return float(k - 1 + (c[k - 1] - level) / (c[k - 1] - c[k])), False


def kick_response(
    model: ODERNN,
    x: torch.Tensor,
    starts: Sequence[int] | np.ndarray,
    max_lag: int,
    *,
    kick: float = 1e-6,
    seed: int = 0,
) -> torch.Tensor:
    """How a kick to the top layer's state decays along the trajectory x drives.

    At each start k0 (a 0-based index of x) the state h[k0] after x[k0] gets a kick of size
    ``kick`` in a random direction (one per sequence, from
    ``torch.Generator().manual_seed(seed)``); the model then runs on x[k0 + 1], ...,
    x[k0 + max_lag] from the kicked state. The response at each lag is
    |h'[k0 + lag] - h[k0 + lag]| / kick, averaged over sequences and starts (1 at lag 0).

    Arguments:
        model: a unidirectional one-layer ``ODERNN`` (the kick is to its whole state).
        x: (T, batch, input_size), time first.
        starts: indices k0 of x with k0 + max_lag < T.
        max_lag: lags after the kick.
        kick: size of the kick.
        seed: seed of the kick directions.

    Returns:
        (max_lag + 1,) tensor.
    """
    model = _check_model(model)
    if model.num_layers != 1 or model.cell == "lstm":
        raise ValueError(
            f"model: expected a one-layer stack whose state is h, got {model.num_layers} layers "
            f"of cell {model.cell!r}"
        )
    x = _check_sequence("x", x)
    kick = check_positive("kick", kick)
    T = x.shape[0]
    with torch.no_grad():
        states = _top(model, x)
        gen = torch.Generator().manual_seed(seed)
        curves = []
        for k0 in starts:
            if not 0 <= k0 < T - max_lag:
                raise ValueError(f"starts: expected indices in [0, {T - max_lag}), got {k0}")
            base = states[k0]
            v = torch.randn(base.shape, generator=gen, dtype=base.dtype)
            v = kick * v / v.norm(dim=-1, keepdim=True)
            after = _top(model, x[k0 + 1 : k0 + 1 + max_lag], (base + v)[None])
            diff = torch.cat([v[None], after - states[k0 + 1 : k0 + 1 + max_lag]])
            curves.append((diff.norm(dim=-1) / kick).mean(-1))
    return torch.stack(curves).mean(0)


def trajectory_gain(
    model: ODERNN,
    x: torch.Tensor,
    omegas: ArrayLike,
    amplitude: float = 1e-3,
    *,
    fit_from: int = 0,
    directions: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """The gain from the input to the top layer at each frequency, along the trajectory of x.

    The probe amplitude * sin(omega k) v (k = 1..T the sample index, v a random unit vector of
    the input space, ``directions`` of them from ``torch.Generator().manual_seed(seed)``) is
    added to x_k; from sample ``fit_from`` on, each unit's difference from the unperturbed top
    layer is fitted by a cos(omega k) + b sin(omega k) (least squares); the gain is
    sqrt(mean over directions and sequences of sum over units (a^2 + b^2)) / amplitude.

    Arguments:
        model: a unidirectional ``ODERNN``, solved with its defaults.
        x: (T, batch, input_size), time first.
        omegas: (F,) angular frequencies in radians per sample.
        amplitude: the probe's amplitude (small: the linear response).
        fit_from: first sample index (0-based) of the fit (leave the transient out).
        directions: random input directions, every frequency and direction on every sequence.
        seed: seed of the directions.

    Returns:
        (F,) gains.
    """
    model = _check_model(model)
    x = _check_sequence("x", x)
    amplitude = check_positive("amplitude", amplitude)
    w = torch.as_tensor(np.asarray(omegas, dtype=np.float64), dtype=x.dtype)
    if w.dim() != 1 or not len(w):
        raise ValueError(f"omegas: expected a 1-d array of frequencies, got {tuple(w.shape)}")
    T, B, size = x.shape
    if not 0 <= fit_from < T - 2:
        raise ValueError(f"fit_from: expected an index in [0, {T - 2}), got {fit_from!r}")
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(directions, size, generator=gen, dtype=x.dtype)
    v = v / v.norm(dim=-1, keepdim=True)
    k = torch.arange(1, T + 1, dtype=x.dtype)
    sines = torch.sin(w[:, None] * k[None])  # (F, T)
    # Batch layout (F, directions, B): every frequency and direction on every sequence.
    probe = amplitude * sines[:, None, :, None, None] * v[None, :, None, None, :]  # (F,D,T,1,in)
    driven = (x[None, None] + probe).permute(2, 0, 1, 3, 4).reshape(T, -1, size)
    with torch.no_grad():
        moved = _top(model, driven).reshape(T, len(w), directions, B, -1)
        diff = (moved - _top(model, x)[:, None, None])[fit_from:]  # (T', F, D, B, H)
    kk = k[fit_from:]
    gains = []
    for i, omega in enumerate(w):
        basis = torch.stack([torch.cos(omega * kk), torch.sin(omega * kk)], -1)  # (T', 2)
        coef = torch.linalg.lstsq(basis, diff[:, i].reshape(len(kk), -1)).solution
        power = coef.reshape(2, directions, B, -1).pow(2).sum((0, 3))  # (D, B)
        gains.append(float(power.mean().sqrt()) / amplitude)
    return torch.tensor(gains, dtype=torch.float64)


def band_centre(omegas: ArrayLike, gains: ArrayLike) -> torch.Tensor:
    """The band centre exp(sum g^2 log omega / sum g^2) of each row of ``gains``.

    Sums by ``math.fsum``: the same bytes whatever the memory alignment.

    Arguments:
        omegas: (F,) frequencies; gains: (F,) or (rows, F).

    Returns:
        (rows,) tensor (1 row for a 1-d ``gains``).
    """
    log_omega = np.log(np.asarray(omegas, dtype=np.float64))
    g2 = np.atleast_2d(np.asarray(gains, dtype=np.float64)) ** 2
    if g2.shape[-1] != log_omega.shape[-1]:
        raise ValueError(
            f"gains: expected {log_omega.shape[-1]} values per row, got shape {g2.shape}"
        )
    centres = [math.exp(math.fsum(g * log_omega) / math.fsum(g)) for g in g2]
    return torch.tensor(centres, dtype=torch.float64)
