"""Depth trade-off: accuracy against depth per variant and step budget, the fitted A(N), N*.

Test accuracy of tanh stacks of many depths on sequential digits, for four variants and three
step budgets; the fitted A(N), a check that it describes the data, its sweet spot N*, and the
measured per-layer gradient factor.

Every (variant, depth, seed) point builds an ``ODERNN`` (tanh, the discrete RNN: Euler, step 1)
with a ``SequenceModel`` readout for ``digits_task("rows")`` (8 x 8 digits row by row: T = 8,
10 classes), measures untrained the error signal ||dLoss/dh_T^l|| at the last sample per layer
(``gradient_norms`` on the first ``GRADIENT_BATCH`` training sequences; the per-layer gradient
factor is (||g^1|| / ||g^L||)^(1 / (L - 1)) on the deepest stack), then trains it with Adam
(``Trainer``, a fixed batch order per seed) and scores test accuracy after ``BUDGETS`` = 1, 2 and
4 times ``steps`` steps (one trajectory read at three budgets).

Variants: ``plain`` (torch's initialisation), ``skips`` (layer l also reads layer l - 2:
``skips=(1, 2)``), ``auxiliary`` (a readout head with weight ``AUX_WEIGHT`` on every layer below
the top, ``SequenceModel(aux_weights=...)``; scored by the top head), ``critical_init`` (plain,
with every input weight matrix above layer 1 multiplied by ``critical_gain(hidden)``, the gain
that puts the mean-field per-layer factor sqrt(sigma_ih^2 E[sech^4(sqrt(q*) z)]) at 1
(``rnnode.analysis.meanfield``; torch's default gives 0.534 at H = 16). Depth 0 is the constant
majority-class prediction (about 1/10), which pins A_min. Each seed draws its own train/test split
(``digits_task(seed=...)``), so the seeds are independent replications and the test items are not
shared between seeds: every mean over seeds is a Student-t mean over seeds.

A(N) = A_min + (A_max - A_min)(1 - e^{-bN}) m^N (``rnnode.analysis.depth``) is fitted by bounded
least squares (0 <= A_min, A_max <= 1; b > 0; 0 < m <= 1) to every (depth, accuracy) pair of a
variant and budget; N* = log(1 - b / log m) / b. **N* is never extrapolated**: every number
computed from it clips it to the measured depths [``depths[0]``, ``depths[-1]``] (an N* = inf, no
decay fitted, is the deepest depth), and the metrics say whether the unclipped N* lies inside.
Fitted numbers get a BCa bootstrap over seeds (seeds drawn with replacement, everything
refitted; ``ctx.finding_bootstrap``), per-seed numbers a Student-t interval.

**The fit gate, before anything is read off the fit.** m and N* mean something only if A(N)
describes the plain stacks' accuracies (longest budget). Two findings decide it:

- ``fit_within_seed_spread``: the RMS residual of the seed-mean accuracies (depths >= 1) from the
  fitted A(N), in pooled standard errors of those means, <= ``FIT_SE`` = 2 (a correct 4-parameter
  curve through 7 points leaves about 0.65 standard errors; effect that matters: 1 standard
  error);
- ``fit_beats_monotone``: the monotone alternative, the best non-decreasing curve through the
  seed means (isotonic regression over depths 0..max, as many free values as it needs), leaves a
  larger RMS residual than A(N): (RMS_monotone - RMS_A) in pooled standard errors > 0 (effect
  that matters: 1 standard error). Without it a rise-then-fall curve is not shown to be needed,
  and m < 1 (the fall) is not interpretable.

Only when both are supported are the fit's findings recorded: ``sweet_spot_near_best``
(|log2(N* / best measured depth)| <= 1), ``sweet_spot_budget_independent`` (|log2(N*(4x) /
N*(1x))| <= ``BUDGET_OCTAVES`` = 1; predicted not supported: deeper stacks train more slowly),
``m_matches_gradient_factor`` (|m_fit - measured factor| < ``M_TOLERANCE`` = 0.1; predicted not
supported) and ``<v>_moves_sweet_spot_deeper`` for each variant (log2(N*(v) / N*(plain)) > 0;
predicted supported). Otherwise ``metrics["not_interpretable"]`` lists them, with the reason, and
no number is read off m or N*. The gate uses plain's longest-budget fit only (the issue's
``fit_describes_data``); the other fits' residual checks are in ``metrics["fit_checks"]`` as
point values.

Findings on the measured accuracies, recorded always (per-seed differences, Student-t; effect
that matters ``EFFECT_ACCURACY`` = 0.02, two points of accuracy, about the binomial standard
error of one seed's test split of 449 digits at 0.8): ``accuracy_rises`` and ``accuracy_falls``
(the best-mean depth's accuracy minus the shallowest's / the deepest's > 0), and for each variant
``<v>_raises_deep_accuracy`` (accuracy at the deepest depth minus plain's > 0; predicted
supported). Rules, bounds and effects were written before any run of this design (the earlier
design, 5 seeds, interpreted m and N* without a fit check and extrapolated N*).

Cost (measured on one core): one seed's 24 trainings 43 s; the seed bootstrap refits every
distinct resample once, about 10,000 refits of 0.02 s: about 17 core-minutes for 20 seeds.

Figures: ``depth_curve`` (per variant: seed means with 95% Student-t intervals, A(N), N* inside
the measured depths) and ``m_vs_factor`` (fitted m per budget against every seed's factor).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq, isotonic_regression

import rnnode
from rnnode.analysis.depth import accuracy_model, fit_accuracy_model, sweet_spot
from rnnode.analysis.gradients import gradient_norms
from rnnode.analysis.meanfield import gradient_factor, stable_variance

from . import _depth_figures as _figures
from ._run import Context, settings_for
from .vanishing_gradients import readout_loss  # the model's loss from a solve's outputs

VARIANTS = ("plain", "skips", "auxiliary", "critical_init")
#: The variants in words (titles, legends, statements).
LABELS = {
    "plain": "plain stack (torch's initialisation)",
    "skips": "skip connections (layer l also reads l - 2)",
    "auxiliary": "auxiliary readout heads on every layer",
    "critical_init": "critical initialisation (mean-field factor 1)",
}
BUDGETS = (1, 2, 4)  # multiples of ``steps`` at which every trajectory is scored
AUX_WEIGHT = 0.3  # weight of each auxiliary head (one per layer below the top)
GRADIENT_BATCH = 64  # training sequences the untrained gradient norms are taken on
GAP_CAP = 100.0  # caps a residual ratio over a zero spread
FIT_SE = 2.0  # residual RMS allowed, in pooled standard errors of the seed means
EFFECT_SE = 1.0  # effect that matters for the fit gate, in pooled standard errors
EFFECT_ACCURACY = 0.02  # effect that matters for an accuracy difference (two points)
EFFECT_OCTAVES = 0.5  # effect that matters for a log2 ratio of sweet spots (a factor 1.41)
EFFECT_M = 0.05  # effect that matters for |m_fit - factor|
BUDGET_OCTAVES = 1.0  # |log2(N*(4x) / N*(1x))| allowed for a budget-independent sweet spot
M_TOLERANCE = 0.1  # |m_fit - measured gradient factor| allowed for "m is the gradient factor"

#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "depths": [1, 2, 3, 4, 6, 8],
    # issue 19: 20 seeds where one costs under two core-minutes (one seed's 24 trainings: 43 s of
    # one core, measured; the seed bootstrap's refits about 0.02 s each, some 10,000 of them)
    "seeds": 20,
    "hidden_size": 16,
    "steps": 100,
    "lr": 1e-2,
    "batch_size": 32,
}
# 3 seeds: the smallest number the seed bootstrap draws from, so the gate's code runs
QUICK = {"depths": [1, 2, 3], "seeds": 3, "hidden_size": 8, "steps": 4}


def settings(quick: bool) -> dict[str, Any]:
    """Depths, seeds and training sizes: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


@functools.lru_cache(maxsize=8)
def critical_gain(hidden: int) -> float:
    """The factor g on torch's default input weights (sigma_ih^2 = g^2 / 3) that puts the
    mean-field per-layer gradient factor of a tanh stack at 1.

    With torch's default initialisation (every weight and bias U(-1/sqrt(H), 1/sqrt(H))) a unit
    of layer l >= 2 sums W_hh h (sigma_hh^2 = 1/3), W_ih h^{l-1} (sigma_ih^2) and two biases
    (2 / (3H)); its pre-activation variance is q* = ``stable_variance(sigma_ih^2 + 1/3, 2/(3H))``
    and the error signal crosses a layer with the factor
    sqrt(sigma_ih^2 E[sech^4(sqrt(q*) z)]) (``gradient_factor``); brentq finds sigma_ih^2 where
    it is 1 (2.23 at H = 16: g = 2.59).
    """

    def excess(s2: float) -> float:
        return float(gradient_factor(s2, stable_variance(s2 + 1 / 3, 2 / (3 * hidden)))) - 1.0

    return float(np.sqrt(3 * brentq(excess, 1 / 3, 50.0, xtol=1e-12)))


def build(variant: str, depth: int, hidden: int, task: Any) -> rnnode.training.SequenceModel:
    """The variant's model for ``task`` (draws its weights from torch's global generator)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    skips = (1, 2) if variant == "skips" else (1,)
    rnn = rnnode.ODERNN(task.input_size, hidden, depth, cell="rnn", skips=skips)
    if variant == "critical_init":
        with torch.no_grad():
            for layer in rnn.layers[1:]:
                layer.weight_ih.mul_(critical_gain(hidden))
    aux = {layer: AUX_WEIGHT for layer in range(depth - 1)} if variant == "auxiliary" else None
    return rnnode.training.SequenceModel.for_task(rnn, task, aux_weights=aux)


@functools.lru_cache(maxsize=8)
def _digits(seed: int, dtype: torch.dtype) -> rnnode.training.Task:
    """``digits_task("rows", seed=seed)``, read once per process (every point of a seed shares
    it; training never changes a task)."""
    return rnnode.training.digits_task("rows", seed=seed, dtype=dtype)


def depth_point(point: dict[str, Any]) -> dict[str, Any]:
    """One (variant, depth, seed): the untrained gradient norms and the test accuracy per budget.

    Arguments:
        point: ``{"variant", "depth", "seed", "quick"}``.

    Returns:
        ``{"accuracy": [per budget], "train_loss": [mean of the last 10 training losses per
        budget], "gradient_norms": [||dLoss/dh_T^l|| for l = 1..L, untrained], "diverged_at":
        the step training diverged at, or None}``. After a divergence the remaining budgets
        score the last good weights.
    """
    cfg = settings(point["quick"])
    task = _digits(point["seed"], torch.get_default_dtype())
    torch.manual_seed(point["seed"])
    model = build(point["variant"], point["depth"], cfg["hidden_size"], task)
    x = task.x_train[:GRADIENT_BATCH].transpose(0, 1)
    norms = gradient_norms(model.rnn, x, readout_loss(model, task.y_train[:GRADIENT_BATCH]))
    trainer = rnnode.training.Trainer(
        model,
        task,
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        seed=point["seed"],
        progress=False,
    )
    accuracy, train_loss, diverged_at = [], [], None
    for budget in BUDGETS:
        if diverged_at is None:
            try:
                trainer.fit(budget * cfg["steps"])
            except rnnode.training.NonFiniteLossError:
                diverged_at = trainer.step + 1
        accuracy.append(trainer.evaluate("test")["accuracy"])
        train_loss.append(float(np.mean(trainer.history["loss"][-10:])))
    return {
        "accuracy": accuracy,
        "train_loss": train_loss,
        "gradient_norms": norms[:, -1].tolist(),
        "diverged_at": diverged_at,
    }


def constant_accuracy(seed: int) -> float:
    """Test accuracy of the depth-0 model: always the most frequent training class."""
    task = _digits(seed, torch.get_default_dtype())
    majority = torch.bincount(task.y_train).argmax()
    return float((task.y_test == majority).double().mean())


def layer_factor(norms: Sequence[float]) -> float:
    """Geometric mean of the ratios of successive layers' norms, going down:
    (||g^1|| / ||g^L||)^(1 / (L - 1)); nan for one layer."""
    values = np.asarray(norms, dtype=np.float64)
    if values.size < 2:
        return float("nan")
    return float(np.exp(np.mean(np.log(values[:-1] / values[1:]))))


def fit_variant(
    depths: Sequence[int], accuracy: np.ndarray, depth0: np.ndarray
) -> dict[str, float]:
    """``fit_accuracy_model`` on every (depth, accuracy) pair: ``accuracy`` (depths, seeds) and
    the depth-0 accuracies (seeds,)."""
    seeds = accuracy.shape[1]
    n = np.repeat([0, *depths], seeds).astype(float)
    return fit_accuracy_model(n, np.concatenate([depth0, np.ravel(accuracy)]))


def _log2(a: float, b: float) -> float:
    return float(np.log2(a / b))  # of two clipped (finite, positive) sweet spots


def clip_sweet_spot(star: float | np.ndarray, depths: Sequence[int]) -> float:
    """N* clipped to the measured depths [depths[0], depths[-1]] (N* = inf: the deepest): a
    sweet spot is never extrapolated beyond the depths run."""
    return float(np.clip(star, depths[0], depths[-1]))


def fit_residuals(
    depths: Sequence[int], accuracy: np.ndarray, depth0: np.ndarray, params: dict[str, float]
) -> dict[str, float]:
    """How well a fitted A(N) describes the seed means, against their spread and a monotone curve.

    Arguments:
        depths: the depths (K,).
        accuracy: (K, S) accuracies of one variant and budget.
        depth0: (S,) depth-0 accuracies.
        params: the fit (``fit_variant``).

    Returns:
        ``{"rms_fit", "rms_monotone", "se", "rms_in_se", "monotone_gap_in_se"}``: the RMS
        residual over depths >= 1 of the seed means from A(N) and from the best non-decreasing
        curve through the seed means at depths 0..max (``scipy.optimize.isotonic_regression``),
        the pooled standard error of a seed mean sqrt(mean_d s_d^2 / S), and both residuals in
        it (the monotone one as RMS_monotone - RMS_fit); ratios over a zero spread are
        ``GAP_CAP`` (signed).
    """
    mean = accuracy.mean(axis=1)
    rms = float(np.sqrt(np.mean((accuracy_model(depths, **params) - mean) ** 2)))
    monotone = isotonic_regression(np.concatenate([[depth0.mean()], mean]), increasing=True).x
    rms_mono = float(np.sqrt(np.mean((monotone[1:] - mean) ** 2)))
    se = float(np.sqrt(np.mean(accuracy.std(axis=1, ddof=1) ** 2) / accuracy.shape[1]))

    def ratio(x: float) -> float:
        if se > 0:
            return float(np.clip(x / se, -GAP_CAP, GAP_CAP))
        return 0.0 if x == 0 else float(np.sign(x) * GAP_CAP)

    return {
        "rms_fit": rms,
        "rms_monotone": rms_mono,
        "se": se,
        "rms_in_se": ratio(rms),
        "monotone_gap_in_se": ratio(rms_mono - rms),
    }


def fitted_numbers(
    depths: Sequence[int],
    accuracy: dict[str, np.ndarray],
    depth0: np.ndarray,
    factor: np.ndarray,
    seeds: Sequence[int],
) -> dict[str, float]:
    """Every fitted number the findings use, from the seeds at indices ``seeds`` (repeats allowed:
    a bootstrap resample).

    Arguments:
        depths: the depths (K,).
        accuracy: ``{variant: (budgets, K, S)}`` test accuracies.
        depth0: (S,) depth-0 accuracies.
        factor: (S,) plain's measured per-layer gradient factor.
        seeds: indices into the seed axis.

    Returns:
        ``{"rms_in_se", "monotone_gap_in_se", "sweet_spot_gap", "budget_shift", "m_gap", "m",
        "factor", "sweet_spot_<variant>", "sweet_spot_plain_1x", "<variant>_shift"}`` (sweet
        spots clipped to the measured depths, ``clip_sweet_spot``; shifts: log2 ratios of N* to
        plain's at the longest budget).
    """
    idx = np.asarray(seeds, dtype=int)
    zero = depth0[idx]
    fits = {v: fit_variant(depths, accuracy[v][-1][:, idx], zero) for v in VARIANTS}
    first = fit_variant(depths, accuracy["plain"][0][:, idx], zero)
    star = {v: clip_sweet_spot(sweet_spot(p["b"], p["m"]), depths) for v, p in fits.items()}
    plain = accuracy["plain"][-1][:, idx]
    check = fit_residuals(depths, plain, zero, fits["plain"])
    best = depths[int(np.argmax(plain.mean(axis=1)))]
    star_first = clip_sweet_spot(sweet_spot(first["b"], first["m"]), depths)
    out = {
        "rms_in_se": check["rms_in_se"],
        "monotone_gap_in_se": check["monotone_gap_in_se"],
        "sweet_spot_gap": abs(_log2(star["plain"], float(best))),
        "budget_shift": abs(_log2(star["plain"], star_first)),
        "m_gap": abs(fits["plain"]["m"] - float(factor[idx].mean())),
        "m": fits["plain"]["m"],
        "factor": float(factor[idx].mean()),
        "sweet_spot_plain_1x": star_first,
    }
    for v in VARIANTS:
        out[f"sweet_spot_{v}"] = star[v]
        if v != "plain":
            out[f"{v}_shift"] = _log2(star[v], star["plain"])
    return out


def _measure(ctx: Context, cfg: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Every (variant, depth, seed) point, trained and measured (a sweep), as arrays: accuracy
    and training loss (budgets, depths, seeds), gradient norms and factors, the depth-0
    accuracy, and the runs that diverged."""
    depths = cfg["depths"]
    points = [
        {"variant": v, "depth": d, "seed": s, "quick": ctx.quick}
        for v in VARIANTS
        for d in depths
        for s in seeds
    ]
    results = dict(
        zip(map(_key, points), ctx.sweep(depth_point, points, name="points"), strict=True)
    )

    def field(v: str, name: str) -> np.ndarray:
        # (budgets, depths, seeds)
        return np.array(
            [[results[v, d, s][name] for s in seeds] for d in depths], dtype=np.float64
        ).transpose(2, 0, 1)

    accuracy = {v: field(v, "accuracy") for v in VARIANTS}
    train_loss = {v: field(v, "train_loss") for v in VARIANTS}
    norms = {
        v: [[results[v, d, s]["gradient_norms"] for s in seeds] for d in depths] for v in VARIANTS
    }
    factor = {v: np.array([layer_factor(n) for n in norms[v][-1]]) for v in VARIANTS}
    depth0 = np.array([constant_accuracy(s) for s in seeds])
    diverged = [
        {"variant": v, "depth": d, "seed": s, "step": results[v, d, s]["diverged_at"]}
        for v in VARIANTS
        for d in depths
        for s in seeds
        if results[v, d, s]["diverged_at"] is not None
    ]
    return {
        "accuracy": accuracy,
        "train_loss": train_loss,
        "norms": norms,
        "factor": factor,
        "depth0": depth0,
        "diverged": diverged,
    }


#: The findings read off m and N*: recorded only when the fit gate passes.
GATED = (
    "sweet_spot_near_best",
    "sweet_spot_budget_independent",
    "m_matches_gradient_factor",
    *(f"{v}_moves_sweet_spot_deeper" for v in VARIANTS[1:]),
)


def _findings(
    ctx: Context, cfg: dict[str, Any], seeds: list[int], steps: list[int], data: dict[str, Any]
) -> dict[str, Any]:
    """The fit gate, the findings on the measured accuracies, and (if the gate passes) those on
    the fitted A(N), each fitted number with its seed-bootstrap interval; returns the fitted
    numbers on every seed, the best depth, the gate and the refits made."""
    depths = cfg["depths"]
    accuracy, depth0, factor = data["accuracy"], data["depth0"], data["factor"]

    @functools.cache
    def numbers(drawn: tuple[int, ...]) -> dict[str, float]:
        return fitted_numbers(depths, accuracy, depth0, factor["plain"], drawn)

    full = numbers(tuple(range(len(seeds))))

    def boot(name: str, key: str, statement: str, **rule: Any) -> str:
        # a fitted number's BCa bootstrap over seeds; numbers() gets the drawn seed indices
        # sorted, so the cache fits each multiset of seeds once for every key
        return ctx.finding_bootstrap(
            name,
            statement,
            np.arange(len(seeds), dtype=np.float64),
            lambda drawn: numbers(tuple(sorted(int(i) for i in drawn)))[key],
            **rule,
        )

    plain = accuracy["plain"][-1]
    mean = plain.mean(axis=1)
    best = int(np.argmax(mean))
    longest = f"plain, {steps[-1]} steps"
    within = boot(
        "fit_within_seed_spread",
        "rms_in_se",
        f"{longest}: the fitted A(N) lies within {FIT_SE:g} pooled standard errors of the "
        "seed-mean accuracies (value: RMS residual over depths >= 1 / pooled standard error of a "
        "seed mean)",
        comparison="<=",
        bound=FIT_SE,
        control=None,
        control_label="none (goodness of fit; about 0.65 expected for a correct curve)",
        effect=EFFECT_SE,
    )
    beats = boot(
        "fit_beats_monotone",
        "monotone_gap_in_se",
        f"{longest}: A(N) describes the seed means better than the best non-decreasing curve "
        "(value: (RMS residual of the isotonic fit - RMS residual of A(N)) / pooled standard "
        "error)",
        comparison=">",
        bound=0.0,
        control=full["rms_in_se"] + full["monotone_gap_in_se"],
        control_label="RMS residual of the monotone curve, in standard errors",
        effect=EFFECT_SE,
    )
    passed = within == "supported" and beats == "supported"
    ctx.finding_over_seeds(
        "accuracy_rises",
        f"{longest}: accuracy rises with depth: at the depth with the best mean "
        f"({depths[best]}) it exceeds depth {depths[0]}'s (per-seed difference > 0)",
        plain[best] - plain[0],
        comparison=">",
        bound=0.0,
        control=float(mean[0]),
        control_label=f"mean accuracy at depth {depths[0]}",
        effect=EFFECT_ACCURACY,
    )
    ctx.finding_over_seeds(
        "accuracy_falls",
        f"{longest}: accuracy falls again: at the depth with the best mean "
        f"({depths[best]}) it exceeds the deepest stack's ({depths[-1]}) (per-seed difference "
        "> 0)",
        plain[best] - plain[-1],
        comparison=">",
        bound=0.0,
        control=float(mean[-1]),
        control_label=f"mean accuracy at depth {depths[-1]}",
        effect=EFFECT_ACCURACY,
    )
    for v in VARIANTS[1:]:
        ctx.finding_over_seeds(
            f"{v}_raises_deep_accuracy",
            f"{LABELS[v]} against plain, {steps[-1]} steps: the deepest stacks ({depths[-1]} "
            "layers) reach a higher test accuracy (per-seed difference > 0; predicted supported)",
            accuracy[v][-1][-1] - plain[-1],
            comparison=">",
            bound=0.0,
            control=float(mean[-1]),
            control_label=f"plain's mean accuracy at depth {depths[-1]}",
            effect=EFFECT_ACCURACY,
        )
    gate = {
        "passed": passed,
        "fit_within_seed_spread": within,
        "fit_beats_monotone": beats,
    }
    if not passed:
        return {"full": full, "best": best, "gate": gate, "refits": numbers.cache_info().currsize}
    boot(
        "sweet_spot_near_best",
        "sweet_spot_gap",
        f"{longest}: the fitted sweet spot N* (clipped to the measured depths) lies within a "
        "factor 2 of the best measured depth (value: |log2(N* / best depth)|)",
        comparison="<=",
        bound=1.0,
        control=float(depths[best]),
        control_label="best measured depth",
        effect=EFFECT_OCTAVES,
    )
    boot(
        "sweet_spot_budget_independent",
        "budget_shift",
        f"plain: the sweet spot does not move by more than a factor {2**BUDGET_OCTAVES:g} when "
        f"training runs {BUDGETS[-1]}x longer (value: |log2(N*({steps[-1]} steps) / "
        f"N*({steps[0]} steps))|, both clipped to the measured depths; predicted not supported)",
        comparison="<=",
        bound=BUDGET_OCTAVES,
        control=full["sweet_spot_plain_1x"],
        control_label=f"N* after {steps[0]} steps",
        effect=EFFECT_OCTAVES,
    )
    boot(
        "m_matches_gradient_factor",
        "m_gap",
        f"{longest}: the fitted per-layer retention m equals the measured per-layer gradient "
        f"factor of the untrained stacks within {M_TOLERANCE:g} (value: |m_fit - factor|; "
        "factor: geometric mean of successive layers' ||dLoss/dh_T^l|| ratios at depth "
        f"{depths[-1]}; predicted not supported)",
        comparison="<",
        bound=M_TOLERANCE,
        control=full["factor"],
        control_label="measured per-layer gradient factor (mean over seeds)",
        effect=EFFECT_M,
    )
    for v in VARIANTS[1:]:
        boot(
            f"{v}_moves_sweet_spot_deeper",
            f"{v}_shift",
            f"{LABELS[v]} against plain, {steps[-1]} steps: the fitted sweet spot (clipped to "
            f"the measured depths) lies deeper (value: log2(N*({v}) / N*(plain)); predicted "
            "supported)",
            comparison=">",
            bound=0.0,
            control=full["sweet_spot_plain"],
            control_label="plain's N* (clipped to the measured depths)",
            effect=EFFECT_OCTAVES,
        )
    return {"full": full, "best": best, "gate": gate, "refits": numbers.cache_info().currsize}


def _fits_and_figures(
    ctx: Context,
    depths: list[int],
    seeds: list[int],
    steps: list[int],
    data: dict[str, Any],
    gate: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A(N) fitted per variant and budget, its sweet spots and residual checks, and the two
    figures."""
    accuracy, depth0, factor = data["accuracy"], data["depth0"], data["factor"]
    fits = {
        v: {f"{b}x": fit_variant(depths, accuracy[v][k], depth0) for k, b in enumerate(BUDGETS)}
        for v in VARIANTS
    }
    stars = {
        v: {b: float(sweet_spot(p["b"], p["m"])) for b, p in fv.items()} for v, fv in fits.items()
    }
    checks = {
        v: {
            f"{b}x": fit_residuals(depths, accuracy[v][k], depth0, fits[v][f"{b}x"])
            for k, b in enumerate(BUDGETS)
        }
        for v in VARIANTS
    }
    gate_words = (
        "the fit gate passed (A(N) within the seed spread and better than a monotone curve)"
        if gate["passed"]
        else "the fit gate did not pass, so m and N* are not interpretable"
    )
    ctx.figure(
        "depth_curve",
        _figures.depth_figure(depths, accuracy, depth0, fits, steps, factor),
        caption=f"Test accuracy on sequential digits against depth, one panel per variant; "
        f"markers: means over {len(seeds)} seeds after {', '.join(map(str, steps))} training "
        "steps with 95% Student-t intervals over seeds (error bars; depth 0: the constant "
        "majority-class prediction); solid lines: the bounded fit of A(N) to every seed's "
        "points; dotted vertical lines: its sweet spot N*, drawn only inside the measured "
        f"depths. For the plain stack at the longest budget {gate_words}.",
        numbers={"params": fits, "sweet_spot": stars, "fit_checks": checks},
    )
    ctx.figure(
        "m_vs_factor",
        _figures.m_figure(fits, factor, steps),
        caption="Fitted per-layer retention m of A(N) (per budget) against the measured per-layer "
        f"gradient factor of the untrained {depths[-1]}-layer stacks (one mark per seed), per "
        f"variant; {gate_words}.",
        numbers={
            "m": {v: {b: p["m"] for b, p in fv.items()} for v, fv in fits.items()},
            "factor": {v: float(np.mean(f)) for v, f in factor.items()},
        },
    )
    return fits, stars, checks


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    depths, seeds = cfg["depths"], list(range(ctx.seed, ctx.seed + cfg["seeds"]))
    steps = [b * cfg["steps"] for b in BUDGETS]
    data = _measure(ctx, cfg, seeds)
    fitted = _findings(ctx, cfg, seeds, steps, data)
    gate = fitted["gate"]
    fits, stars, checks = _fits_and_figures(ctx, depths, seeds, steps, data, gate)
    accuracy, full, best = data["accuracy"], fitted["full"], fitted["best"]
    inside = {
        v: {b: bool(depths[0] <= star <= depths[-1]) for b, star in sv.items()}
        for v, sv in stars.items()
    }
    return {
        "settings": cfg,
        "variants": list(VARIANTS),
        "budgets": list(BUDGETS),
        "steps": steps,
        "depths": depths,
        "seeds": seeds,
        "aux_weight": AUX_WEIGHT,
        "critical_gain": critical_gain(cfg["hidden_size"]),
        "accuracy": accuracy,
        "train_loss": data["train_loss"],
        "mean_accuracy": {v: a.mean(axis=2) for v, a in accuracy.items()},
        "depth0_accuracy": data["depth0"],
        "gradient_norms": data["norms"],
        "gradient_factor": data["factor"],
        "fit": fits,
        "fit_checks": checks,
        "fit_gate": gate,
        "not_interpretable": [] if gate["passed"] else list(GATED),
        "not_interpretable_reason": None
        if gate["passed"]
        else "the fit gate (fit_within_seed_spread and fit_beats_monotone) did not pass",
        "sweet_spot": stars,
        "sweet_spot_inside_depths": inside,
        "best_depth": depths[best],
        "fitted_numbers": full,
        "diverged": data["diverged"],
        "bootstrap_fits": fitted["refits"],
    }


def _key(point: dict[str, Any]) -> tuple[str, int, int]:
    return point["variant"], point["depth"], point["seed"]
