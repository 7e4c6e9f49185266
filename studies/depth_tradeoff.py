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

Claims: the fit describes the data (the root-mean-square residual of the seed means at depths
>= 1 is at most twice the pooled standard error of those means, i.e. the fit is as close as the
seeds' scatter allows); accuracy first rises and then falls with depth (the best mean accuracy is at
neither end of the depth range, and the deepest stack is worse than the best by more than the
seeds' spread there); and the sweet spot lies inside the depth range, within a factor 2 of the
best measured depth.

Figures: ``depth_curve`` (``rnnode.analysis.plots.plot_depth_curve``: every seed, the fit and N*).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import rnnode
from rnnode.analysis.depth import accuracy_model, fit_accuracy_model, sweet_spot
from rnnode.analysis.plots import plot_depth_curve

from ._run import Context, one_thread

FIT_SE = 2.0  # residual RMS allowed, in pooled standard errors of the seed means


def settings(quick: bool) -> dict[str, Any]:
    """Depths, seeds and training sizes of the quick and the full setting."""
    if quick:
        return {"depths": [1, 2, 4, 8], "seeds": 2, "hidden_size": 8, "steps": 25, "lr": 1e-2}
    return {
        "depths": [1, 2, 3, 4, 6, 8, 12, 16],
        "seeds": 3,
        "hidden_size": 16,
        "steps": 150,
        "lr": 1e-2,
    }


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
    with one_thread():
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

    ctx.claim(
        "fit_describes_data",
        rms <= FIT_SE * pooled_se,
        f"the fitted A(N) is within {FIT_SE:g} pooled standard errors of the seed-mean "
        "accuracies (root-mean-square residual over depths >= 1)",
    )
    ctx.claim(
        "rises_then_falls",
        0 < best < len(depths) - 1 and mean[best] - mean[-1] > spread[-1],
        "the best seed-mean accuracy is at neither end of the depth range, and the deepest "
        "stack's mean is below it by more than its standard deviation over seeds",
    )
    ctx.claim(
        "sweet_spot_inside",
        depths[0] < star < depths[-1] and 0.5 <= star / depths[best] <= 2.0,
        "the fitted sweet spot N* lies inside the depth range and within a factor 2 of the "
        "best measured depth",
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
        "test_loss": np.array([r["loss"] for r in results]).reshape(len(depths), len(seeds)),
    }
