"""Mean-field theory of wide random tanh networks: the stable variance, the largest Lyapunov
exponent and the per-layer gradient factor.

A unit's pre-activation in a wide network with weights W_ij ~ N(0, sigma_w^2 / N) and biases
b_i ~ N(0, sigma_b^2) is Gaussian with variance q; one step (or one layer) maps it to

    q' = sigma_w^2 E[tanh^2(sqrt(q) z)] + sigma_b^2,    z ~ N(0, 1),

whose stable fixed point q* is the network's stationary variance (Poole et al. 2016; for the
autonomous map h <- tanh(g W h), sigma_w = g and sigma_b = 0). A small perturbation is multiplied
per step, in mean square, by chi = sigma_w^2 E[sech^4(sqrt(q*) z)] (tanh' = sech^2), so

- the largest Lyapunov exponent of h <- tanh(g W h) is lambda = 1/2 ln(g^2 E[sech^4(sqrt(q*) z)])
  (Molgedey, Schuster & Ritter 1992): ln g for g <= 1 (q* = 0), positive (chaos) above;
- the error signal of a deep tanh stack shrinks or grows per layer by sqrt(chi) with sigma_w^2 the
  variance of the weights that carry it (Schoenholz et al. 2017); chi = 1 is the critical point.

The Gaussian expectations are trapezoidal sums over z in [-12, 12] with a step below
0.1 / max(1, sqrt(q)): for integrands analytic in a strip of half-width pi / (2 sqrt(q)) (the
poles of tanh and sech) the error falls like exp(-2 pi * width / step), below 1e-15 here.
(Gauss-Hermite quadrature converges slowly for sech^4(sqrt(q) z) once q is a few units.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from rnnode._validate import check_array

__all__ = [
    "gaussian_expectation",
    "stable_variance",
    "lyapunov_exponent",
    "gradient_factor",
]

_RANGE = 12.0  # the Gaussian weight beyond |z| = 12 is below 1e-31


def _nodes(q_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Trapezoidal nodes and weights (with the Gaussian density) on [-_RANGE, _RANGE]."""
    step = 0.1 / max(1.0, math.sqrt(q_max))
    n = 2 * math.ceil(_RANGE / step) + 1
    z = np.linspace(-_RANGE, _RANGE, n)
    w = np.exp(-(z**2) / 2)
    return z, w / w.sum()  # the trapezoid's weights sum to 1 up to rounding; make it exact


def _nonnegative(name: str, value: object) -> np.ndarray:
    array = check_array(name, value)
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name}: expected non-negative finite numbers, got {value!r}")
    return array


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], q: ArrayLike) -> np.ndarray:
    """E[f(sqrt(q) z)] for z ~ N(0, 1), by Gauss-Hermite quadrature.

    Arguments:
        f: a vectorised function of a numpy array.
        q: variance(s) >= 0, any shape.

    Returns:
        An array of q's shape.
    """
    q = _nonnegative("q", q)
    z, w = _nodes(float(q.max(initial=0.0)))
    return f(np.sqrt(q)[..., None] * z) @ w


def _tanh2(x: np.ndarray) -> np.ndarray:
    return np.tanh(x) ** 2


def _sech4(x: np.ndarray) -> np.ndarray:
    e = np.exp(-2.0 * np.abs(x))  # sech(x) = 2 e^-|x| / (1 + e^-2|x|), without overflow
    return 16.0 * e**2 / (1.0 + e) ** 4


def _one_variance(sw2: float, sb2: float) -> float:
    def excess(q: float) -> float:
        return float(sw2 * gaussian_expectation(_tanh2, q) + sb2 - q)

    if sb2 == 0.0:
        if sw2 <= 1.0:
            return 0.0  # tanh^2(x) < x^2: q' < q for every q > 0, so the only fixed point is 0
        lo = (sw2 - 1.0) / (4.0 * sw2)  # E[tanh^2(sqrt(q) z)] = q - 2 q^2 + O(q^3)
        while excess(lo) <= 0.0:
            lo /= 2.0
    else:
        lo = 0.0
    # q' <= sw2 + sb2 for every q, so the fixed point lies below it.
    return float(brentq(excess, lo, sw2 + sb2, xtol=1e-15, rtol=1e-15, maxiter=200))


def stable_variance(weight_variance: ArrayLike, bias_variance: ArrayLike = 0.0) -> np.ndarray:
    """q*, the stable fixed point of q = sigma_w^2 E[tanh^2(sqrt(q) z)] + sigma_b^2.

    Arguments:
        weight_variance: sigma_w^2 (N times the variance of a weight; g^2 for W ~ N(0, g^2 / N)),
            summed over the weight matrices feeding a unit (input and recurrent).
        bias_variance: sigma_b^2, summed over the biases feeding a unit.

    Returns:
        q* with the broadcast shape of the arguments (0 when sigma_b = 0 and sigma_w <= 1).
    """
    sw2 = _nonnegative("weight_variance", weight_variance)
    sb2 = _nonnegative("bias_variance", bias_variance)
    sw2, sb2 = np.broadcast_arrays(sw2, sb2)
    out = np.array([_one_variance(a, b) for a, b in zip(sw2.ravel(), sb2.ravel(), strict=True)])
    return out.reshape(sw2.shape)


def gradient_factor(weight_variance: ArrayLike, q: ArrayLike) -> np.ndarray:
    """sqrt(sigma_w^2 E[sech^4(sqrt(q) z)]), the root-mean-square gain of a perturbation (or an
    error signal) through one tanh layer whose pre-activations have variance q.

    Arguments:
        weight_variance: sigma_w^2 of the weights that carry the signal.
        q: the pre-activation variance (usually ``stable_variance``).

    Returns:
        The factor, with the broadcast shape of the arguments.
    """
    sw2 = _nonnegative("weight_variance", weight_variance)
    return np.sqrt(sw2 * gaussian_expectation(_sech4, q))


def lyapunov_exponent(gain: ArrayLike) -> np.ndarray:
    """Mean-field largest Lyapunov exponent of the map h <- tanh(g W h), W_ij ~ N(0, 1 / N):
    lambda = 1/2 ln(g^2 E[sech^4(sqrt(q*) z)]) with q* = ``stable_variance(g^2)``.

    Arguments:
        gain: g > 0, any shape.

    Returns:
        lambda per step, g's shape (ln g for g <= 1; 0.065 at g = 1.5, 0.155 at 2, 0.312 at 3).
    """
    g = _nonnegative("gain", gain)
    if (g == 0).any():
        raise ValueError(f"gain: expected positive numbers, got {gain!r}")
    q = stable_variance(g**2)
    return np.log(gradient_factor(g**2, q))
