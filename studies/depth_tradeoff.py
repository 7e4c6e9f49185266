"""Depth trade-off: accuracy over depths and seeds, the fitted A(N) and its sweet spot N*.

Test accuracy of tanh stacks of many depths and seeds on sequential digits.

Every (depth, seed) point trains an ``ODERNN`` (tanh, the discrete RNN: Euler, step 1) with a
``SequenceModel`` readout on ``digits_task("rows")`` (8 x 8 digits read row by row: T = 8, 10
classes) for the same number of steps (``rnnode.training.train``), and scores its test accuracy. The
points run through ``ctx.sweep``: in parallel processes (or on a Dask cluster with
``--scheduler``), each result saved as it finishes, so a rerun resumes.

The model A(N) = A_min + (A_max - A_min)(1 - e^{-bN}) m^N (``rnnode.analysis.depth``: capacity
saturating
at rate b per layer, eroded by a per-layer factor m) is fitted by least squares to every
(depth, accuracy) pair, and its maximiser N* = log(1 - b / log m) / b is the sweet spot. Depth 0
is measured too: a stack without layers has no state to read, so its best prediction is a
constant, the most frequent training class (its test accuracy, about 1/10, pins A_min).

Findings (rules fixed before the data): ``accuracy_rises`` and ``accuracy_falls`` (per seed,
accuracy at the depth with the best mean minus that at the shallowest / deepest depth > 0;
bootstrap over seeds); ``fit_describes_data`` (RMS residual of the seed means at depths >= 1 over
the pooled standard error <= ``FIT_SE``) and ``sweet_spot_near_best`` (|log2(N* / best depth)| <=
1), each with the range of its leave-one-seed-out refits as interval (unbounded with fewer than 3
seeds). The accuracies come from a fixed step budget, so the sweet spot measures depth at that
budget.

Figures: ``depth_curve`` (``rnnode.analysis.plots.plot_depth_curve``: every seed, the fit and N*).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import rnnode
from rnnode.analysis.depth import accuracy_model, fit_accuracy_model, sweet_spot
from rnnode.analysis.plots import plot_depth_curve

from ._run import Context, settings_for

GAP_CAP = 100.0  # |log2(N* / best depth)| reported when N* is infinite
FIT_SE = 2.0  # residual RMS allowed, in pooled standard errors of the seed means


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "depths": [1, 2, 3, 4, 6, 8, 12, 16],
    "seeds": 3,
    "hidden_size": 16,
    "steps": 150,
    "lr": 1e-2,
}
QUICK = {"depths": [1, 2, 4, 8], "seeds": 2, "hidden_size": 8, "steps": 25}


def settings(quick: bool) -> dict[str, Any]:
    """Depths, seeds and training sizes: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def depth_point(point: dict[str, Any]) -> dict[str, float]:
    """Train one stack of the given depth and seed; its test accuracy and loss.

    Arguments:
        point: ``{"depth", "seed", "quick"}``.

    Returns:
        ``{"accuracy", "loss", "final_train_loss"}``.
    """
    cfg = settings(point["quick"])
    task = rnnode.training.digits_task("rows", seed=point["seed"])
    torch.manual_seed(point["seed"])
    rnn = rnnode.ODERNN(task.input_size, cfg["hidden_size"], point["depth"], cell="rnn")
    model = rnnode.training.SequenceModel.for_task(rnn, task)
    result = rnnode.training.train(
        model,
        task,
        steps=cfg["steps"],
        lr=cfg["lr"],
        batch_size=32,
        seed=point["seed"],
        progress=False,
    )
    return {
        "accuracy": result["test"]["accuracy"],
        "loss": result["test"]["loss"],
        "final_train_loss": result["history"]["loss"][-1],
    }


def constant_accuracy(seed: int) -> float:
    """Test accuracy of the depth-0 model: always the most frequent training class."""
    task = rnnode.training.digits_task("rows", seed=seed)
    majority = torch.bincount(task.y_train).argmax()
    return float((task.y_test == majority).double().mean())


def _fit_numbers(depths, accuracy, depth0, keep) -> dict[str, float]:
    """The fit's goodness (RMS residual in pooled standard errors) and |log2(N* / best depth)|
    from the seeds in ``keep`` (a boolean mask)."""
    acc, zero = accuracy[:, keep], depth0[keep]
    n = np.repeat([0, *depths], acc.shape[1]).astype(float)
    params = fit_accuracy_model(n, np.concatenate([zero, acc.ravel()]))
    mean = acc.mean(axis=1)
    rms = float(np.sqrt(np.mean((accuracy_model(depths, **params) - mean) ** 2)))
    se = float(np.sqrt(np.mean(acc.std(axis=1, ddof=1) ** 2) / acc.shape[1]))
    star = float(sweet_spot(params["b"], params["m"]))
    return {
        "rms_in_se": rms / se,
        "sweet_spot_gap": _gap(star, depths[int(np.argmax(mean))]),
        "sweet_spot": star,
        "m": float(params["m"]),
    }


def _gap(star: float, best: int) -> float:
    """|log2(N* / best depth)|, capped at ``GAP_CAP`` (N* = inf when the fit finds no decay)."""
    return float(min(abs(np.log2(star / best)), GAP_CAP))


def _range(values: list[float], value: float) -> tuple[float, float]:
    """(min, max) of the leave-one-out values and the full-data value; unbounded without any."""
    if not values:
        return (-np.inf, np.inf)
    every = [*values, value]
    return float(np.min(every)), float(np.max(every))


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    depths, seeds = cfg["depths"], list(range(ctx.seed, ctx.seed + cfg["seeds"]))
    points = [{"depth": d, "seed": s, "quick": ctx.quick} for d in depths for s in seeds]
    results = ctx.sweep(depth_point, points, name="depths")
    accuracy = np.array([r["accuracy"] for r in results]).reshape(len(depths), len(seeds))
    mean, spread = accuracy.mean(axis=1), accuracy.std(axis=1, ddof=1)
    depth0 = np.array([constant_accuracy(s) for s in seeds])
    n = np.repeat([0, *depths], len(seeds)).astype(float)
    params = fit_accuracy_model(n, np.concatenate([depth0, accuracy.ravel()]))
    star = float(sweet_spot(params["b"], params["m"]))
    rms = float(np.sqrt(np.mean((accuracy_model(depths, **params) - mean) ** 2)))
    pooled_se = float(np.sqrt(np.mean(spread**2) / len(seeds)))
    best = int(np.argmax(mean))
    # The fit's numbers again with each seed left out: their range is the fit claims' interval.
    # With fewer than 3 seeds one left out leaves no spread: the interval is then unbounded.
    jackknife = [
        _fit_numbers(depths, accuracy, depth0, np.arange(len(seeds)) != k)
        for k in range(len(seeds) if len(seeds) >= 3 else 0)
    ]

    ctx.finding(
        "fit_describes_data",
        f"the fitted A(N) is within {FIT_SE:g} pooled standard errors of the seed-mean "
        "accuracies (value: root-mean-square residual over depths >= 1 / pooled standard error)",
        value=rms / pooled_se,
        comparison="<=",
        bound=FIT_SE,
        interval=_range([j["rms_in_se"] for j in jackknife], rms / pooled_se),
        control=None,
        control_label="none (goodness of fit)",
        seeds=len(seeds),
        test="range over leave-one-seed-out refits",
    )
    ctx.finding_over_seeds(
        "accuracy_rises",
        f"accuracy rises with depth: at the depth with the best mean ({depths[best]}) it "
        f"exceeds depth {depths[0]}'s (per-seed difference > 0)",
        accuracy[best] - accuracy[0],
        comparison=">",
        bound=0.0,
        control=float(mean[0]),
        control_label=f"mean accuracy at depth {depths[0]}",
    )
    ctx.finding_over_seeds(
        "accuracy_falls",
        f"accuracy falls again: at the depth with the best mean ({depths[best]}) it exceeds the "
        f"deepest stack's ({depths[-1]}) (per-seed difference > 0)",
        accuracy[best] - accuracy[-1],
        comparison=">",
        bound=0.0,
        control=float(mean[-1]),
        control_label=f"mean accuracy at depth {depths[-1]}",
    )
    gap = _gap(star, depths[best])
    ctx.finding(
        "sweet_spot_near_best",
        "the fitted sweet spot N* lies within a factor 2 of the best measured depth "
        "(value: |log2(N* / best depth)|)",
        value=gap,
        comparison="<=",
        bound=1.0,
        interval=_range([j["sweet_spot_gap"] for j in jackknife], gap),
        control=float(depths[best]),
        control_label="best measured depth",
        seeds=len(seeds),
        test="range over leave-one-seed-out refits",
    )
    ctx.figure(
        "depth_curve",
        plot_depth_curve(n, np.concatenate([depth0, accuracy.ravel()]), params),
        caption=f"Test accuracy on sequential digits against depth ({len(seeds)} seeds, "
        f"{cfg['steps']} training steps each; depth 0: the constant majority-class "
        "prediction), the fitted A(N) and its sweet spot N*.",
        numbers={
            "params": params,
            "sweet_spot": star,
            "rms": rms,
            "pooled_se": pooled_se,
            "mean_accuracy": mean,
        },
    )
    return {
        "settings": cfg,
        "depths": depths,
        "seeds": seeds,
        "accuracy": accuracy,
        "mean_accuracy": mean,
        "std_accuracy": spread,
        "best_depth": depths[best],
        "fit": params,
        "sweet_spot": star,
        "fit_rms": rms,
        "pooled_se": pooled_se,
        "depth0_accuracy": depth0,
        "leave_one_seed_out": jackknife,
        "test_loss": np.array([r["loss"] for r in results]).reshape(len(depths), len(seeds)),
    }
