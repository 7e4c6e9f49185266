"""Depth trade-off: accuracy against depth per variant and step budget, the fitted A(N), N*.

Test accuracy of tanh stacks of many depths on sequential digits, for four variants and three
step budgets; the fitted A(N), its sweet spot N*, and the measured per-layer gradient factor.

Every (variant, depth, seed) point builds an ``ODERNN`` (tanh, the discrete RNN: Euler, step 1)
with a ``SequenceModel`` readout for ``digits_task("rows")`` (8 x 8 digits read row by row:
T = 8, 10 classes) and

1. measures, untrained, the error signal ||dLoss/dh_T^l|| at the last sample for every layer
   (``rnnode.analysis.gradients.gradient_norms``, the model's own loss on the first
   ``GRADIENT_BATCH`` training sequences); the per-layer gradient factor is the geometric mean of
   the ratios of successive layers, (||g^1|| / ||g^L||)^(1 / (L - 1)), read on the deepest stack;
2. trains it with Adam (``rnnode.training.Trainer``, a fixed batch order per seed) and scores its
   test accuracy after ``BUDGETS`` = 1, 2 and 4 times ``steps`` steps: one trajectory, read at
   three budgets (a run stopped at a budget is the same run).

Variants: ``plain`` (torch's initialisation), ``skips`` (layer l also reads layer l - 2:
``skips=(1, 2)``), ``auxiliary`` (a readout head with weight ``AUX_WEIGHT`` on every layer below
the top, ``SequenceModel(aux_weights=...)``; scored by the top head), ``critical_init`` (plain,
with every input weight matrix above layer 1 multiplied by ``critical_gain(hidden)``, the gain
that puts the mean-field per-layer factor sqrt(sigma_ih^2 E[sech^4(sqrt(q*) z)]) at 1
(``rnnode.analysis.meanfield``; torch's default gives 0.534 at H = 16). Depth 0 is the constant
majority-class prediction (about 1/10), which pins A_min.

A(N) = A_min + (A_max - A_min)(1 - e^{-bN}) m^N (``rnnode.analysis.depth``) is fitted by bounded
least squares (0 <= A_min, A_max <= 1; b > 0; 0 < m <= 1) to every (depth, accuracy) pair of a
variant and budget; N* = log(1 - b / log m) / b. Fitted numbers get a 95% interval from a
bootstrap over seeds (seeds drawn with replacement, everything refitted; ``_seed_bootstrap``);
per-seed numbers from ``ctx.finding_over_seeds``. N* = inf (no decay fitted) enters log2 ratios as
+-``GAP_CAP``. All intervals are unbounded with fewer than 3 seeds (the quick run decides nothing).

Findings, rules and predictions written before any run of this design (the earlier design, 150
steps and 3 seeds, gave m = 0.91 against a measured factor of 0.52 and a best depth of 2 that moved
to 4 with 4x the steps):

- plain, longest budget: ``fit_describes_data`` (RMS residual of the seed means over pooled
  standard error <= ``FIT_SE``), ``accuracy_rises`` and ``accuracy_falls`` (per seed, the best-mean
  depth's accuracy minus the shallowest's / the deepest's > 0), ``sweet_spot_near_best``
  (|log2(N* / best depth)| <= 1).
- ``sweet_spot_budget_independent`` (plain): |log2(N*(4x) / N*(1x))| <= ``BUDGET_OCTAVES`` = 1.
  Prediction: not supported; deeper stacks are slower to train, so more steps move N* deeper and
  the sweet spot measures the budget as much as the depth.
- ``m_matches_gradient_factor`` (plain, longest budget): |m_fit - measured factor| <
  ``M_TOLERANCE`` = 0.1. Prediction: not supported; m is a retention factor of accuracy, which
  Adam's per-parameter scaling decouples from the gradient norm's factor (about 0.53).
- for each of ``skips``, ``auxiliary``, ``critical_init`` against ``plain`` at the longest budget:
  ``<v>_moves_sweet_spot_deeper`` (log2(N*(v) / N*(plain)) > 0) and ``<v>_raises_deep_accuracy``
  (per seed, accuracy at the deepest depth minus plain's > 0; control plain's accuracy there).
  Prediction: all six supported; skips raise the measured gradient factor (0.53 -> about 0.8),
  auxiliary heads give each layer an error signal that does not cross the layers above, and the
  critical gain puts the factor near 1; each makes deep stacks easier to train, so the fitted m
  rises, N* moves deeper and the deepest stacks reach higher accuracy than plain ones.

Figures: ``depth_curve`` (one panel per variant: seed-mean accuracy per budget, the fits and N*;
``rnnode.analysis.plots.plot_depth_curve``) and ``m_vs_factor`` (fitted m per budget against the
measured gradient factor, per variant).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.optimize import brentq

import rnnode
from rnnode.analysis.depth import accuracy_model, fit_accuracy_model, sweet_spot
from rnnode.analysis.gradients import gradient_norms
from rnnode.analysis.meanfield import gradient_factor, stable_variance
from rnnode.analysis.plots import plot_depth_curve

from ._run import Context, settings_for
from ._stats import bootstrap_interval
from .vanishing_gradients import readout_loss  # the model's loss from a solve's outputs

VARIANTS = ("plain", "skips", "auxiliary", "critical_init")
BUDGETS = (1, 2, 4)  # multiples of ``steps`` at which every trajectory is scored
AUX_WEIGHT = 0.3  # weight of each auxiliary head (one per layer below the top)
GRADIENT_BATCH = 64  # training sequences the untrained gradient norms are taken on
GAP_CAP = 100.0  # |log2| of a ratio with an infinite N*; also caps a ratio over a zero spread
FIT_SE = 2.0  # residual RMS allowed, in pooled standard errors of the seed means
BUDGET_OCTAVES = 1.0  # |log2(N*(4x) / N*(1x))| allowed for a budget-independent sweet spot
M_TOLERANCE = 0.1  # |m_fit - measured gradient factor| allowed for "m is the gradient factor"

#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "depths": [1, 2, 3, 4, 6, 8],
    "seeds": 5,
    "hidden_size": 16,
    "steps": 100,
    "lr": 1e-2,
    "batch_size": 32,
}
QUICK = {"depths": [1, 2, 3], "seeds": 2, "hidden_size": 8, "steps": 4}


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
    norms = np.asarray(norms, dtype=np.float64)
    if norms.size < 2:
        return float("nan")
    return float(np.exp(np.mean(np.log(norms[:-1] / norms[1:]))))


def fit_variant(
    depths: Sequence[int], accuracy: np.ndarray, depth0: np.ndarray
) -> dict[str, float]:
    """``fit_accuracy_model`` on every (depth, accuracy) pair: ``accuracy`` (depths, seeds) and
    the depth-0 accuracies (seeds,)."""
    seeds = accuracy.shape[1]
    n = np.repeat([0, *depths], seeds).astype(float)
    return fit_accuracy_model(n, np.concatenate([depth0, np.ravel(accuracy)]))


def log2_ratio(a: float, b: float) -> float:
    """log2(a / b) of two sweet spots, clipped to +-``GAP_CAP`` (N* = inf: +-``GAP_CAP``; both
    infinite: 0)."""
    if np.isinf(a) and np.isinf(b):
        return 0.0
    if np.isinf(a) or np.isinf(b):
        return GAP_CAP if np.isinf(a) else -GAP_CAP
    return float(np.clip(np.log2(a / b), -GAP_CAP, GAP_CAP))


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
        ``{"rms_in_se", "sweet_spot_gap", "budget_shift", "m_gap", "m", "factor",
        "sweet_spot_<variant>", "sweet_spot_plain_1x", "<variant>_shift"}`` (shifts: log2 ratios
        of N* to plain's at the longest budget).
    """
    idx = np.asarray(seeds, dtype=int)
    zero = depth0[idx]
    fits = {v: fit_variant(depths, accuracy[v][-1][:, idx], zero) for v in VARIANTS}
    first = fit_variant(depths, accuracy["plain"][0][:, idx], zero)
    star = {v: float(sweet_spot(p["b"], p["m"])) for v, p in fits.items()}
    plain = accuracy["plain"][-1][:, idx]
    mean = plain.mean(axis=1)
    rms = float(np.sqrt(np.mean((accuracy_model(depths, **fits["plain"]) - mean) ** 2)))
    se = float(np.sqrt(np.mean(plain.std(axis=1, ddof=1) ** 2) / idx.size))
    best = depths[int(np.argmax(mean))]
    star_first = float(sweet_spot(first["b"], first["m"]))
    out = {
        "rms_in_se": min(rms / se, GAP_CAP) if se > 0 else GAP_CAP,
        "sweet_spot_gap": abs(log2_ratio(star["plain"], float(best))),
        "budget_shift": abs(log2_ratio(star["plain"], star_first)),
        "m_gap": abs(fits["plain"]["m"] - float(factor[idx].mean())),
        "m": fits["plain"]["m"],
        "factor": float(factor[idx].mean()),
        "sweet_spot_plain_1x": star_first,
    }
    for v in VARIANTS:
        out[f"sweet_spot_{v}"] = star[v]
        if v != "plain":
            out[f"{v}_shift"] = log2_ratio(star[v], star["plain"])
    return out


def _seed_bootstrap(
    numbers: Callable[[tuple[int, ...]], dict[str, float]], num_seeds: int, key: str
) -> tuple[float, float]:
    """95% percentile bootstrap interval over seeds of ``numbers(seeds)[key]``.

    ``rnnode.studies.bootstrap_interval`` draws the seed indices (its fixed resampling seed, so
    every key sees the same resamples); ``numbers`` gets them sorted, so a cache on it fits each
    multiset of seeds once (126 multisets for 5 seeds). Unbounded with fewer than 3 seeds.
    """
    return bootstrap_interval(
        np.arange(num_seeds, dtype=np.float64),
        lambda drawn: numbers(tuple(sorted(int(i) for i in drawn)))[key],
    )


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


def _findings(
    ctx: Context, cfg: dict[str, Any], seeds: list[int], steps: list[int], data: dict[str, Any]
) -> dict[str, Any]:
    """The findings on the measured accuracies and the fitted A(N), each with its seed-bootstrap
    interval; returns the fitted numbers on every seed, the best depth and the refits made."""
    depths = cfg["depths"]
    accuracy, depth0, factor = data["accuracy"], data["depth0"], data["factor"]

    @functools.cache
    def numbers(drawn: tuple[int, ...]) -> dict[str, float]:
        return fitted_numbers(depths, accuracy, depth0, factor["plain"], drawn)

    every = tuple(range(len(seeds)))
    full = numbers(every)

    def interval(key: str) -> tuple[float, float]:
        return _seed_bootstrap(numbers, len(seeds), key)

    plain = accuracy["plain"][-1]
    mean = plain.mean(axis=1)
    best = int(np.argmax(mean))
    test = "bootstrap over seeds of the refitted curves (seeds drawn with replacement)"

    ctx.finding(
        "fit_describes_data",
        f"plain, {steps[-1]} steps: the fitted A(N) is within {FIT_SE:g} pooled standard errors "
        "of the seed-mean accuracies (value: RMS residual over depths >= 1 / pooled standard "
        "error)",
        value=full["rms_in_se"],
        comparison="<=",
        bound=FIT_SE,
        interval=interval("rms_in_se"),
        control=None,
        control_label="none (goodness of fit)",
        seeds=len(seeds),
        test=test,
    )
    ctx.finding_over_seeds(
        "accuracy_rises",
        f"plain, {steps[-1]} steps: accuracy rises with depth: at the depth with the best mean "
        f"({depths[best]}) it exceeds depth {depths[0]}'s (per-seed difference > 0)",
        plain[best] - plain[0],
        comparison=">",
        bound=0.0,
        control=float(mean[0]),
        control_label=f"mean accuracy at depth {depths[0]}",
    )
    ctx.finding_over_seeds(
        "accuracy_falls",
        f"plain, {steps[-1]} steps: accuracy falls again: at the depth with the best mean "
        f"({depths[best]}) it exceeds the deepest stack's ({depths[-1]}) (per-seed difference "
        "> 0)",
        plain[best] - plain[-1],
        comparison=">",
        bound=0.0,
        control=float(mean[-1]),
        control_label=f"mean accuracy at depth {depths[-1]}",
    )
    ctx.finding(
        "sweet_spot_near_best",
        f"plain, {steps[-1]} steps: the fitted sweet spot N* lies within a factor 2 of the best "
        "measured depth (value: |log2(N* / best depth)|)",
        value=full["sweet_spot_gap"],
        comparison="<=",
        bound=1.0,
        interval=interval("sweet_spot_gap"),
        control=float(depths[best]),
        control_label="best measured depth",
        seeds=len(seeds),
        test=test,
    )
    ctx.finding(
        "sweet_spot_budget_independent",
        f"plain: the sweet spot does not move by more than a factor {2**BUDGET_OCTAVES:g} when "
        f"training runs {BUDGETS[-1]}x longer (value: |log2(N*({steps[-1]} steps) / "
        f"N*({steps[0]} steps))|; predicted not supported)",
        value=full["budget_shift"],
        comparison="<=",
        bound=BUDGET_OCTAVES,
        interval=interval("budget_shift"),
        control=full["sweet_spot_plain_1x"],
        control_label=f"N* after {steps[0]} steps",
        seeds=len(seeds),
        test=test + ", paired across budgets",
    )
    ctx.finding(
        "m_matches_gradient_factor",
        f"plain, {steps[-1]} steps: the fitted per-layer retention m equals the measured "
        f"per-layer gradient factor of the untrained stacks within {M_TOLERANCE:g} (value: "
        "|m_fit - factor|; factor: geometric mean of successive layers' ||dLoss/dh_T^l|| ratios "
        f"at depth {depths[-1]}; predicted not supported)",
        value=full["m_gap"],
        comparison="<",
        bound=M_TOLERANCE,
        interval=interval("m_gap"),
        control=full["factor"],
        control_label="measured per-layer gradient factor (mean over seeds)",
        seeds=len(seeds),
        test=test + " and of the seeds' factors",
    )
    for v in VARIANTS[1:]:
        ctx.finding(
            f"{v}_moves_sweet_spot_deeper",
            f"{v} against plain, {steps[-1]} steps: the fitted sweet spot lies deeper (value: "
            f"log2(N*({v}) / N*(plain)); predicted supported)",
            value=full[f"{v}_shift"],
            comparison=">",
            bound=0.0,
            interval=interval(f"{v}_shift"),
            control=full["sweet_spot_plain"],
            control_label="plain's N*",
            seeds=len(seeds),
            test=test + ", paired across variants",
        )
        ctx.finding_over_seeds(
            f"{v}_raises_deep_accuracy",
            f"{v} against plain, {steps[-1]} steps: the deepest stacks ({depths[-1]} layers) "
            "reach a higher test accuracy (per-seed difference > 0; predicted supported)",
            accuracy[v][-1][-1] - plain[-1],
            comparison=">",
            bound=0.0,
            control=float(mean[-1]),
            control_label=f"plain's mean accuracy at depth {depths[-1]}",
        )
    return {"full": full, "best": best, "refits": numbers.cache_info().currsize}


def _fits_and_figures(
    ctx: Context, depths: list[int], seeds: list[int], steps: list[int], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A(N) fitted per variant and budget, its sweet spots, and the two figures."""
    accuracy, depth0, factor = data["accuracy"], data["depth0"], data["factor"]
    fits = {
        v: {f"{b}x": fit_variant(depths, accuracy[v][k], depth0) for k, b in enumerate(BUDGETS)}
        for v in VARIANTS
    }
    stars = {
        v: {b: float(sweet_spot(p["b"], p["m"])) for b, p in fv.items()} for v, fv in fits.items()
    }
    ctx.figure(
        "depth_curve",
        _depth_figure(depths, accuracy, depth0, fits, steps, factor),
        caption=f"Test accuracy on sequential digits against depth, one panel per variant; "
        f"markers: means over {len(seeds)} seeds after {', '.join(map(str, steps))} training "
        "steps (depth 0: the constant majority-class prediction), lines: the bounded fit of "
        "A(N) to every seed's point, dotted: its sweet spot N*.",
        numbers={"params": fits, "sweet_spot": stars},
    )
    ctx.figure(
        "m_vs_factor",
        _m_figure(fits, factor, steps),
        caption="Fitted per-layer retention m of A(N) (per budget) against the measured per-layer "
        f"gradient factor of the untrained {depths[-1]}-layer stacks (every seed), per variant.",
        numbers={
            "m": {v: {b: p["m"] for b, p in fv.items()} for v, fv in fits.items()},
            "factor": {v: float(np.mean(f)) for v, f in factor.items()},
        },
    )
    return fits, stars


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    depths, seeds = cfg["depths"], list(range(ctx.seed, ctx.seed + cfg["seeds"]))
    steps = [b * cfg["steps"] for b in BUDGETS]
    data = _measure(ctx, cfg, seeds)
    fitted = _findings(ctx, cfg, seeds, steps, data)
    fits, stars = _fits_and_figures(ctx, depths, seeds, steps, data)
    accuracy, full, best = data["accuracy"], fitted["full"], fitted["best"]
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
        "sweet_spot": stars,
        "best_depth": depths[best],
        "fitted_numbers": full,
        "diverged": data["diverged"],
        "bootstrap_fits": fitted["refits"],
    }


def _key(point: dict[str, Any]) -> tuple[str, int, int]:
    return point["variant"], point["depth"], point["seed"]


def _depth_figure(depths, accuracy, depth0, fits, steps, factor) -> Figure:
    """One panel per variant: seed means per budget, each budget's fit and N*."""
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, sharey=True).ravel()
    n = np.array([0, *depths], dtype=float)
    for ax, v in zip(axes, VARIANTS, strict=True):
        for k, b in enumerate(BUDGETS):
            means = np.concatenate([[depth0.mean()], accuracy[v][k].mean(axis=1)])
            plot_depth_curve(
                n, means, fits[v][f"{b}x"], ax=ax, label=f"{steps[k]} steps", color=f"C{k}"
            )
        ax.set_title(f"{v} (gradient factor {np.mean(factor[v]):.2f} per layer)", fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(0, 1)
        ax.set_xlim(-0.5, depths[-1] + 1)  # an N* beyond the data is in the legend only
    axes[0].legend(fontsize="x-small", ncols=1)
    return fig


def _m_figure(fits, factor, steps) -> Figure:
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(VARIANTS))
    for i, v in enumerate(VARIANTS):
        ax.plot(np.full(len(factor[v]), x[i] - 0.15), factor[v], "k_", markersize=12)
    ax.plot([], [], "k_", markersize=12, label="measured gradient factor (seeds)")
    for k, b in enumerate(BUDGETS):
        ax.plot(
            x + 0.05 * k,
            [fits[v][f"{b}x"]["m"] for v in VARIANTS],
            "o",
            color=f"C{k}",
            label=f"fitted m, {steps[k]} steps",
        )
    ax.set_xticks(x, VARIANTS)
    ax.set_ylabel("factor per layer")
    ax.axhline(1.0, color="0.6", linewidth=0.8)
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig
