"""Statistics for findings over seeds: bootstrap intervals, the sign test, Spearman's rho.

All are deterministic given their ``seed`` so that a study's metrics are the same bytes per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

#: Fewest samples a bootstrap interval is drawn from (below: unbounded).
MIN_SAMPLES = 3


def _samples(name: str, samples: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got {array.tolist()}")
    return array


def bootstrap_interval(
    samples: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the samples (one per seed).

    With fewer than ``MIN_SAMPLES`` samples the interval is (-inf, inf), so any finding drawn
    from it is inconclusive: one sample has no spread, and two resample to nothing but their own
    range (a quick run's 2 seeds decide nothing).
    """
    array = _samples("samples", samples)
    if not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    if array.size < MIN_SAMPLES:
        return (-np.inf, np.inf)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, array.size, size=(resamples, array.size))
    values = np.apply_along_axis(statistic, 1, array[draws])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


def sign_test(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided exact sign test p-value that the median difference is 0 (zeros dropped)."""
    array = _samples("differences", differences)
    nonzero = array[array != 0]
    if nonzero.size == 0:
        return 1.0
    return float(stats.binomtest(int((nonzero > 0).sum()), int(nonzero.size), 0.5).pvalue)


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rank correlation of x and y and its two-sided p-value (scipy)."""
    a, b = _samples("x", x), _samples("y", y)
    if a.size != b.size or a.size < 3:
        raise ValueError(f"x, y: expected equal lengths >= 3, got {a.size} and {b.size}")
    result = stats.spearmanr(a, b)
    return float(result.statistic), float(result.pvalue)
