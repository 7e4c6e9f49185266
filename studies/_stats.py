"""Statistics for findings over seeds: Student-t tests and intervals of a mean (over seeds, or over
seeds and the items of one test split), BCa bootstrap intervals and tests of other statistics, the
minimum detectable effect, Holm's adjustment, the sign test and Spearman's rho.

**A mean over seeds** (``mean_test`` with 1-d samples x_1..x_n, one per seed): the one-sample
Student-t test of H0: mean = bound. With m the mean, s the standard deviation (ddof 1),
se = s / sqrt(n) and df = n - 1, the 95% interval is m +- t_{0.975, df} se and the two-sided
p-value is 2 P(T_df > |m - bound| / se). Interval and p come from the one statistic, so the bound
lies outside the interval exactly when p < 0.05: a one-sided rule ``> bound`` is supported exactly
when the one-sided test rejects at 2.5%.

**A mean over seeds and test items** (``mean_test`` with 2-d scores y[s, i], seeds x items, every
seed scored on the same test items): seeds and items are crossed random factors,
y_si = mu + a_s + b_i + e_si, so the grand mean's variance is
sigma_a^2 / S + sigma_b^2 / I + sigma_e^2 / (S I). With the two-way ANOVA mean squares
MS_seed = I sum_s (ybar_s. - ybar)^2 / (S - 1), MS_item = S sum_i (ybar_.i - ybar)^2 / (I - 1) and
MS_err (the interaction's, (S - 1)(I - 1) df), the unbiased estimate is
se^2 = (MS_seed + MS_item - MS_err) / (S I), with Satterthwaite's df
(Clark 1973's quasi-F for "subjects and items"). A variance component estimated below 0 is set
to 0 (then se^2 = MS_seed / (S I), MS_item / (S I) or MS_err / (S I), with that term's df). The
test-set sampling error, which the per-seed means alone do not show (every seed sees the same
items), is in the interval.

**The minimum detectable effect** (``minimum_detectable_effect``): the smallest true distance
|mean - bound| that the same two-sided 5% t-test detects with probability 80%, given the observed
standard error and df (noncentral t: P(|T'| > t_{0.975, df}) = 0.8 with noncentrality MDE / se,
the probability integrated over T' = (Z + delta) / sqrt(chi2_df / df)).

**Other statistics** (``bootstrap_interval``, ``bootstrap_test``): the BCa bootstrap (Efron 1987):
the percentile interval corrected for bias (z0, from the share of resamples below the estimate)
and skew (acceleration a, from the jackknife); the p-value inverts the same interval (the level
at which an end of the BCa interval reaches the bound).

All are deterministic: the bootstrap's resamples come from a fixed ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, stats

#: Fewest samples a bootstrap interval is drawn from (below: unbounded).
MIN_SAMPLES = 3
#: Level of every interval, and the two-sided test's size (1 - LEVEL) that matches it.
LEVEL = 0.95
#: Power at which the minimum detectable effect is computed.
POWER = 0.8


@dataclass(frozen=True)
class MeanTest:
    """A test of ``mean = bound`` with its interval (see the module docstring).

    Attributes:
        value: the estimate (the mean over seeds, or over seeds and items).
        interval: its 95% interval (lo, hi); (-inf, inf) where the spread cannot be estimated.
        p_value: the two-sided p-value of ``value = bound`` from the same statistic.
        se: the standard error (inf where unknown, 0 where every sample is equal).
        df: the t distribution's degrees of freedom (0 where unknown).
        mde: the minimum detectable effect (80% power, two-sided 5%).
        method: the test in words.
    """

    value: float
    interval: tuple[float, float]
    p_value: float
    se: float
    df: float
    mde: float
    method: str


def _samples(name: str, samples: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got {array.tolist()}")
    return array


def _level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    return float(level)


def minimum_detectable_effect(
    se: float, df: float, *, alpha: float = 1 - LEVEL, power: float = POWER
) -> float:
    """Smallest true |mean - bound| a two-sided t-test of size ``alpha`` detects with ``power``.

    Solves P(|T'| > t_{1 - alpha/2, df}) = power for the noncentrality delta of T' (noncentral
    t with ``df`` degrees of freedom) and returns delta * se. Infinite where ``df`` is 0 or
    ``se`` infinite; 0 where ``se`` is 0.
    """
    for name, number in (("se", se), ("df", df), ("alpha", alpha), ("power", power)):
        if isinstance(number, bool) or not isinstance(number, (int, float, np.number)):
            raise TypeError(f"{name}: expected a real number, got {type(number).__name__}")
    if not (se >= 0 and df >= 0):
        raise ValueError(f"se, df: expected non-negative numbers, got {se!r}, {df!r}")
    if not 0 < alpha < 1 or not alpha < power < 1:
        raise ValueError(f"alpha, power: expected 0 < alpha < power < 1, got {alpha}, {power}")
    if df == 0 or math.isinf(se):
        return math.inf
    if se == 0:
        return 0.0
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    scale = stats.chi(df, scale=1 / math.sqrt(df))  # u = sqrt(chi2_df / df)

    def integrated(delta: float) -> float:
        # P(|Z + delta| > crit u) with Z normal and u independent (T' = (Z + delta) / u): the
        # integral over u, accurate where scipy's noncentral t gives nan (df 1, large delta)
        def rejects(u: float) -> float:
            tails = stats.norm.cdf(delta - crit * u) + stats.norm.cdf(-delta - crit * u)
            return float(tails * scale.pdf(u))

        return integrate.quad(rejects, 0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]

    def shortfall(delta: float) -> float:
        detected = float(stats.nct.sf(crit, df, delta) + stats.nct.cdf(-crit, df, delta))
        return (detected if math.isfinite(detected) else integrated(delta)) - power

    upper = crit + stats.norm.ppf(power) + 1.0
    while shortfall(upper) < 0:
        upper *= 2
    return float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-14, rtol=1e-13)) * se


def _seed_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean, standard error s / sqrt(n) and df n - 1 of one-per-seed samples along the last axis
    (any leading axes: many data sets at once)."""
    n = values.shape[-1]
    return values.mean(axis=-1), values.std(axis=-1, ddof=1) / math.sqrt(n), n - 1


def _t_interval(
    value: float | np.ndarray,
    se: float | np.ndarray,
    df: float | np.ndarray,
    bound: float,
    level: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, two-sided p) of the t statistic (value - bound) / se on ``df`` df (arrays
    broadcast; se > 0)."""
    half = stats.t.ppf(0.5 + level / 2, df) * se
    p = 2 * stats.t.sf(np.abs(value - bound) / se, df)
    return value - half, value + half, p


def _t(value: float, se: float, df: float, bound: float, level: float, method: str) -> MeanTest:
    """Interval, p-value and MDE of ``value`` with standard error ``se`` on ``df`` df."""
    if df == 0 or math.isinf(se):
        return MeanTest(value, (-math.inf, math.inf), 1.0, math.inf, 0.0, math.inf, method)
    if se == 0:
        # Every sample equal: the t interval shrinks to the point (the limit of the t-test as
        # the spread goes to 0), and the bound is either that point or outside it.
        p = 1.0 if value == bound else 0.0
        return MeanTest(value, (value, value), p, 0.0, float(df), 0.0, method + " (no spread)")
    lo, hi, p_value = _t_interval(np.float64(value), np.float64(se), df, bound, level)
    mde = minimum_detectable_effect(se, df, alpha=1 - level)
    return MeanTest(value, (float(lo), float(hi)), float(p_value), se, float(df), mde, method)


def _crossed_se(scores: np.ndarray) -> tuple[float, float]:
    """Standard error of the grand mean of crossed seeds x items scores and its df (see the
    module docstring)."""
    s, i = scores.shape
    grand = scores.mean()
    rows, cols = scores.mean(axis=1), scores.mean(axis=0)
    ms_seed = i * float(np.sum((rows - grand) ** 2)) / (s - 1)
    ms_item = s * float(np.sum((cols - grand) ** 2)) / (i - 1)
    resid = scores - rows[:, None] - cols[None, :] + grand
    ms_err = float(np.sum(resid**2)) / ((s - 1) * (i - 1))
    # (mean square, its df) terms of the variance estimate, a component below 0 set to 0
    terms = []
    if ms_seed > ms_err:
        terms.append((ms_seed, s - 1, 1.0))
    if ms_item > ms_err:
        terms.append((ms_item, i - 1, 1.0))
    if len(terms) == 2:
        terms.append((ms_err, (s - 1) * (i - 1), -1.0))
    elif not terms:
        terms.append((ms_err, (s - 1) * (i - 1), 1.0))
    total = sum(c * ms for ms, _, c in terms)
    if total <= 0:
        return 0.0, float((s - 1) * (i - 1))
    df = total**2 / sum((c * ms) ** 2 / d for ms, d, c in terms)
    return math.sqrt(total / (s * i)), float(df)


def mean_test(
    samples: Sequence[float] | np.ndarray, bound: float = 0.0, *, level: float = LEVEL
) -> MeanTest:
    """Student-t test of ``mean = bound`` with the matching interval and MDE.

    Arguments:
        samples: (seeds,) one number per seed, or (seeds, items) the scores of every seed on
            the same test items (the crossed design of the module docstring).
        bound: the value the mean is tested against.
        level: the interval's level (the p-value is two-sided; the bound lies outside the
            interval exactly when p < 1 - level).

    Returns:
        A ``MeanTest``. With one seed the spread over seeds is unknown: the interval is
        unbounded, p = 1 and the MDE infinite.
    """
    level = _level(level)
    if isinstance(bound, bool) or not isinstance(bound, (int, float, np.number)):
        raise TypeError(f"bound: expected a real number, got {type(bound).__name__}")
    bound = float(bound)
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 1:
        array = _samples("samples", array)
        n = array.size
        value = float(array.mean())
        method = "Student-t over seeds"
        if n < 2:
            return _t(value, math.inf, 0, bound, level, method)
        _, seed_se, seed_df = _seed_se(array)
        return _t(value, float(seed_se), seed_df, bound, level, method)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"samples: expected (seeds,) or (seeds, items) numbers, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("samples: expected finite values")
    value = float(array.mean())
    method = f"Student-t over seeds x {array.shape[1]} test items (crossed, Satterthwaite df)"
    if array.shape[0] < 2:
        return _t(value, math.inf, 0, bound, level, method)
    se, df = _crossed_se(array)
    return _t(value, se, df, bound, level, method)


def t_interval(
    samples: Sequence[float] | np.ndarray, *, level: float = LEVEL
) -> tuple[float, float]:
    """The Student-t interval of the mean of ``samples`` ((seeds,) or (seeds, items)); see
    ``mean_test``. Unbounded with one seed."""
    return mean_test(samples, 0.0, level=level).interval


def _bca(
    array: np.ndarray, statistic: Callable[[np.ndarray], float], resamples: int, seed: int
) -> tuple[float, np.ndarray, float, float]:
    """(estimate, sorted resampled statistics, bias correction z0, acceleration a)."""
    estimate = float(statistic(array))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, array.size, size=(resamples, array.size))
    values = np.sort(np.array([float(statistic(array[d])) for d in draws]))
    # resamples within rounding of the estimate count as ties (a statistic computed from the
    # same numbers in another order must not move z0)
    tie = np.isclose(values, estimate, rtol=1e-12, atol=0)
    below = (np.sum((values < estimate) & ~tie) + 0.5 * np.sum(tie)) / resamples
    z0 = float(stats.norm.ppf(np.clip(below, 1 / resamples, 1 - 1 / resamples)))
    jack = np.array([float(statistic(np.delete(array, k))) for k in range(array.size)])
    dev = jack.mean() - jack
    denom = 6 * float(np.sum(dev**2)) ** 1.5
    accel = float(np.sum(dev**3)) / denom if denom > 0 else 0.0
    return estimate, values, z0, accel


def _bca_ends(values: np.ndarray, z0: float, accel: float, level: float) -> tuple[float, float]:
    ends = []
    for tail in ((1 - level) / 2, (1 + level) / 2):
        u = z0 + float(stats.norm.ppf(tail))
        share = float(stats.norm.cdf(z0 + u / (1 - accel * u)))
        ends.append(float(np.quantile(values, share, method="inverted_cdf")))
    return ends[0], ends[1]


def bootstrap_interval(
    samples: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    level: float = LEVEL,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """BCa bootstrap interval of ``statistic`` over the samples (one per seed).

    For a statistic that is not a mean (a mean over seeds has ``t_interval``). ``statistic``
    maps a 1-d array (a resample, or the samples less one for the jackknife) to a number. With
    fewer than ``MIN_SAMPLES`` samples the interval is (-inf, inf): one sample has no spread,
    and two resample to nothing but their own range.
    """
    return bootstrap_test(samples, statistic, 0.0, level=level, resamples=resamples, seed=seed)[1]


def bootstrap_test(
    samples: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    bound: float,
    *,
    level: float = LEVEL,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, tuple[float, float], float]:
    """BCa bootstrap estimate, interval and two-sided p-value of ``statistic = bound``.

    The p-value inverts the BCa interval: it is 2 min(alpha, 1 - alpha) for the alpha at which
    the interval's end reaches the bound, so the bound lies outside the interval exactly when
    p < 1 - level (up to ties among the resamples; resamples equal to the bound count half on
    each side). A bound beyond every resample gets p = 2 / resamples.

    Returns:
        ``(estimate, (lo, hi), p)``; with fewer than ``MIN_SAMPLES`` samples
        ``(estimate, (-inf, inf), 1.0)``.
    """
    array = _samples("samples", samples)
    level = _level(level)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples: expected an integer >= 100, got {resamples!r}")
    if array.size < MIN_SAMPLES:
        return float(statistic(array)), (-math.inf, math.inf), 1.0
    estimate, values, z0, accel = _bca(array, statistic, resamples, seed)
    lo, hi = _bca_ends(values, z0, accel, level)
    # resamples on the bound count half below, half above (a statistic with a discrete range,
    # a median or a crossing on a grid, lands on the bound itself often)
    tie = values == bound
    share = float(np.sum((values < bound) & ~tie) + 0.5 * np.sum(tie)) / resamples
    if share <= 0 or share >= 1:
        return estimate, (lo, hi), min(1.0, 2 / resamples)
    w = float(stats.norm.ppf(share)) - z0
    if 1 + accel * w <= 0:  # beyond the range the BCa map covers
        return estimate, (lo, hi), min(1.0, 2 / resamples)
    tail = float(stats.norm.cdf(w / (1 + accel * w) - z0))
    return estimate, (lo, hi), min(1.0, 2 * min(tail, 1 - tail))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over all of them), in input order.

    With p_(1) <= ... <= p_(m): adjusted p_(j) = max over k <= j of min(1, (m - k + 1) p_(k)).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_values: expected probabilities in a 1-d sequence, got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def sign_test(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided exact sign test p-value that the median difference is 0 (zeros dropped)."""
    array = _samples("differences", differences)
    nonzero = array[array != 0]
    if nonzero.size == 0:
        return 1.0
    return float(stats.binomtest(int((nonzero > 0).sum()), int(nonzero.size), 0.5).pvalue)


def spearman(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Spearman's rank correlation of x and y and its two-sided p-value (scipy)."""
    a, b = _samples("x", x), _samples("y", y)
    if a.size != b.size or a.size < 3:
        raise ValueError(f"x, y: expected equal lengths >= 3, got {a.size} and {b.size}")
    result = stats.spearmanr(a, b)
    return float(result.statistic), float(result.pvalue)
