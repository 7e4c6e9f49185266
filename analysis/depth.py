"""The depth trade-off: accuracy that first rises with depth, then decays, and its sweet spot.

A(N) = A_min + (A_max - A_min) (1 - exp(-b N)) m^N: capacity saturates at rate b per layer while
a per-layer factor m < 1 (trainability, vanishing gradients) erodes it, so accuracy peaks at a
finite depth N*. ``sweet_spot`` is the root of dA/dN = 0, derived once by sympy.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike
from scipy.optimize import least_squares

from rnnode._validate import check_array

__all__ = [
    "PARAMETERS",
    "accuracy_model",
    "fit_accuracy_model",
    "sweet_spot",
    "sweet_spot_expression",
]

PARAMETERS = ("a_min", "a_max", "b", "m")


def accuracy_model(
    n: ArrayLike, a_min: ArrayLike, a_max: ArrayLike, b: ArrayLike, m: ArrayLike
) -> np.ndarray:
    """A(N) = a_min + (a_max - a_min) (1 - exp(-b N)) m^N, vectorized (numpy broadcasting).

    Arguments:
        n: depths N (array-like).
        a_min: accuracy at depth 0 (chance level).
        a_max: the accuracy that capacity alone would reach.
        b: capacity rate per layer (> 0).
        m: per-layer retention factor (0 < m <= 1).

    Returns:
        numpy array of the broadcast shape.
    """
    n = check_array("n", n)
    a_min, a_max = check_array("a_min", a_min), check_array("a_max", a_max)
    b, m = check_array("b", b), check_array("m", m)
    return a_min + (a_max - a_min) * (-np.expm1(-b * n)) * np.power(m, n)


@functools.lru_cache(maxsize=1)
def _sweet_spot_formula():
    """(expression, numpy function) of the root of dA/dN = 0, derived by sympy."""
    N = sp.Symbol("N", real=True)
    b, m = sp.symbols("b m", positive=True)
    a_min, a_max = sp.symbols("a_min a_max", real=True)
    A = a_min + (a_max - a_min) * (1 - sp.exp(-b * N)) * m**N
    roots = sp.solve(sp.Eq(sp.diff(A, N), 0), N)
    if len(roots) != 1:
        raise RuntimeError(f"expected one stationary point of A(N), sympy found {roots}")
    root = sp.simplify(roots[0])
    return root, sp.lambdify((b, m), root, "numpy")


def sweet_spot_expression() -> sp.Expr:
    """N* as the sympy expression in the positive symbols ``b`` and ``m``: log(1 - b/log m)/b."""
    return _sweet_spot_formula()[0]


def sweet_spot(b: ArrayLike, m: ArrayLike) -> np.ndarray:
    """N* = argmax_N A(N), the root of dA/dN = 0: N* = log(1 - b / log(m)) / b.

    dA/dN = (A_max - A_min) m^N (b e^{-bN} + (1 - e^{-bN}) log m) vanishes where
    e^{-bN} = -log m / (b - log m); sympy derives the root once (``sweet_spot_expression``), and
    it is evaluated with numpy. It does not depend on A_min < A_max.

    Arguments:
        b: capacity rate (> 0), array-like.
        m: retention factor, array-like, in (0, 1]; m = 1 (no decay) gives N* = inf.

    Returns:
        numpy array of the broadcast shape.
    """
    b = check_array("b", b)
    m = check_array("m", m)
    if not np.all(np.isfinite(b) & (b > 0)):
        raise ValueError(f"b: expected positive finite rates, got {b!r}")
    if not np.all((m > 0) & (m <= 1)):
        raise ValueError(f"m: expected retention factors in (0, 1], got {m!r}")
    safe = np.where(m < 1, m, 0.5)  # m = 1 would divide by log(1) = 0; its N* is inf anyway
    return np.where(m < 1, _sweet_spot_formula()[1](b, safe), np.inf)


def _grid_starts(
    n: np.ndarray,
    acc: np.ndarray,
    b_bounds: tuple[float, float],
    m_bounds: tuple[float, float],
    *,
    size: int = 24,
    keep: int = 3,
) -> list[np.ndarray]:
    """Starts for the local fit: the ``keep`` best points of a (b, m) grid (geometric in b,
    linear in m), each with the levels (a_min, a_max) that minimise the squared residual for its
    (b, m) (A is linear in them: normal equations), clipped to [0, 1]."""
    b = np.geomspace(b_bounds[0], b_bounds[1], size)
    m = np.linspace(m_bounds[0], m_bounds[1], size)
    bb, mm = (g.ravel() for g in np.meshgrid(b, m, indexing="ij"))
    g = -np.expm1(-bb[:, None] * n) * np.power(mm[:, None], n)  # (P, K) = c p
    u = 1.0 - g
    s11, s12, s22 = (u * u).sum(1), (u * g).sum(1), (g * g).sum(1)
    r1, r2 = (u * acc).sum(1), (g * acc).sum(1)
    det = s11 * s22 - s12**2
    ok = det > 1e-12 * np.maximum(s11 * s22, 1e-300)
    safe = np.where(ok, det, 1.0)
    a_min = np.where(ok, (s22 * r1 - s12 * r2) / safe, acc.mean())
    a_max = np.where(ok, (s11 * r2 - s12 * r1) / safe, acc.mean())
    a_min, a_max = np.clip(a_min, 0.0, 1.0), np.clip(a_max, 0.0, 1.0)
    cost = ((a_min[:, None] * u + a_max[:, None] * g - acc) ** 2).sum(1)
    order = np.argsort(cost, kind="stable")[:keep]
    return [np.array([a_min[i], a_max[i], bb[i], mm[i]]) for i in order]


def fit_accuracy_model(
    depths: ArrayLike,
    accuracies: ArrayLike,
    *,
    b_bounds: tuple[float, float] = (1e-3, 20.0),
    m_bounds: tuple[float, float] = (1e-3, 1.0),
) -> dict[str, float]:
    """Bounded least-squares fit of A(N) to measured accuracies (scipy.optimize.least_squares).

    Minimises sum_k (A(N_k) - accuracy_k)^2 over the box

        0 <= a_min <= 1,   0 <= a_max <= 1,   b_low <= b <= b_high (b > 0),
        m_low <= m <= m_high (0 < m <= 1),

    with the trust-region reflective method (analytic Jacobian) from the three best points of
    a 24 x 24 grid in (b, m) (each with its least-squares levels), keeping the best. An
    accuracy is a fraction, so neither level can leave [0, 1]: an unbounded fit of a curve that
    rises and falls steeply puts a_max above 1 (the capacity term never reaches a_max once
    m < 1), and the bound stops it there. All-equal accuracies have no trade-off
    to fit: they give a_min = a_max = that accuracy, m = 1 and b at its upper bound (a flat
    curve).

    Arguments:
        depths: (K,) depths N >= 0 (K >= 4).
        accuracies: (K,) measured accuracies, fractions in [0, 1].
        b_bounds: (low, high) for b, 0 < low < high.
        m_bounds: (low, high) for m, 0 < low < high <= 1.

    Returns:
        dict with keys ``a_min``, ``a_max``, ``b``, ``m`` (floats inside the bounds).

    Raises:
        ValueError: shapes that differ or fewer than 4 points, negative or non-finite depths,
            accuracies outside [0, 1], or bounds outside the ranges above.
    """
    n = check_array("depths", depths)
    acc = check_array("accuracies", accuracies)
    if n.ndim != 1 or n.shape != acc.shape or n.size < 4:
        raise ValueError(
            f"accuracies: expected a 1-D array as long as depths with at least 4 points, got "
            f"depths {n.shape} and accuracies {acc.shape}"
        )
    if not (np.all(np.isfinite(n)) and np.all(n >= 0)):
        raise ValueError(f"depths: expected finite non-negative depths, got {n.tolist()}")
    if not (np.all(np.isfinite(acc)) and np.all((acc >= 0) & (acc <= 1))):
        raise ValueError(
            f"accuracies: expected fractions in [0, 1], got values from {np.nanmin(acc)!r} "
            f"to {np.nanmax(acc)!r}"
        )
    for name, bounds, top in (("b_bounds", b_bounds, np.inf), ("m_bounds", m_bounds, 1.0)):
        pair = check_array(name, bounds, expected="a pair (low, high) of real numbers")
        if pair.shape != (2,):
            raise ValueError(f"{name}: expected a pair (low, high), got shape {pair.shape}")
        lo, hi = float(pair[0]), float(pair[1])
        if not (0 < lo < hi <= top):
            raise ValueError(
                f"{name}: expected 0 < low < high"
                + (" <= 1" if top == 1 else "")
                + f", got {tuple(bounds)!r}"
            )
    if acc.max() == acc.min():
        return dict(a_min=float(acc[0]), a_max=float(acc[0]), b=float(b_bounds[1]), m=1.0)
    low = np.array([0.0, 0.0, b_bounds[0], m_bounds[0]])
    high = np.array([1.0, 1.0, b_bounds[1], m_bounds[1]])

    def residual(theta):
        return accuracy_model(n, *theta) - acc

    def jacobian(theta):
        # d/d(a_min, a_max, b, m) of a_min + (a_max - a_min) c p, c = 1 - e^{-bN}, p = m^N.
        a_min, a_max, b, m = theta
        c, p = -np.expm1(-b * n), np.power(m, n)
        return np.stack(
            [
                1 - c * p,
                c * p,
                (a_max - a_min) * n * np.exp(-b * n) * p,
                (a_max - a_min) * c * n * np.power(m, n - 1),
            ],
            axis=1,
        )

    best = None
    for start in _grid_starts(n, acc, b_bounds, m_bounds):
        start = np.clip(start, low + 1e-9, high - 1e-9)
        fit = least_squares(
            residual, start, jac=jacobian, bounds=(low, high), method="trf", x_scale="jac"
        )
        if best is None or fit.cost < best.cost:
            best = fit
    assert best is not None  # _grid_starts gives at least one start
    theta = np.clip(best.x, low, high)  # trf keeps x feasible; clip rounding at the faces
    return dict(zip(PARAMETERS, (float(v) for v in theta), strict=True))
