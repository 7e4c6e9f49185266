"""Vanishing gradients: error-signal norms through depth and time; skips and auxiliary losses.

Norms through depth (1 to 64 layers) and time, for plain tanh stacks, stacks with skips (1, 2)
and stacks with auxiliary readout losses.

Every stack is a tanh ``ODERNN`` at torch's default initialisation (the discrete RNN: Euler,
step 1), read out by an ``rnnode.training.SequenceModel`` head at its last sample; the loss is the
MSE
(``rnnode.training.task_loss``) against fixed random targets. The auxiliary variant adds a readout
head
on every lower layer with weight ``AUX_WEIGHT`` (``SequenceModel(aux_weights=...)``), so each
layer gets an error signal that does not cross the layers above it. The norms
||dLoss/dh_t^l|| come from ``rnnode.analysis.gradients.gradient_norms`` (one backward pass).

Findings (rules fixed before the data; bootstrap over seeds, sign test against the bound):
``plain_vanishes_with_depth``: the per-seed fitted per-layer factor exp(slope of log norm
against depth) of the plain stack is below 1 (control: no decay); ``skips_slow_the_decay``: skips
(1, 2) raise that factor (per-seed difference > 0; it stays below 1: exponential decay, slower);
``vanishes_through_time``: the top layer's norm at t_0 over its norm at the last sample is below
1 (log10, mean over depths per seed). Verification: ``auxiliary_keeps_gradient`` (the auxiliary
heads give layer 1 its own error signal, so its norm stays above ``AUX_FLOOR`` times its one-layer
value by construction). All at torch's default initialisation, whose mean-field gain sets the
per-layer factor.

Figures: ``depth`` (layer-1 norm against depth, three variants, every seed) and ``heatmaps``
(``rnnode.analysis.plots.plot_gradient_norms`` of the deepest stack of each variant, first seed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.analysis.gradients import gradient_norms
from rnnode.analysis.plots import plot_gradient_norms

from ._run import Context, settings_for

VARIANTS = ("plain", "skips", "auxiliary")
AUX_WEIGHT = 0.5
AUX_FLOOR = 0.1


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {"depths": [1, 2, 4, 8, 16, 32, 64], "seeds": 3, "hidden_size": 16, "length": 16, "batch": 8}
QUICK = {"depths": [1, 2, 4, 8], "seeds": 2, "hidden_size": 8, "length": 8, "batch": 4}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def build(variant: str, depth: int, hidden: int) -> rnnode.training.SequenceModel:
    """The variant's model: a tanh stack with a last-sample readout (and auxiliary heads)."""
    rnn = rnnode.ODERNN(1, hidden, depth, cell="rnn", skips=(1, 2) if variant == "skips" else (1,))
    aux = {layer: AUX_WEIGHT for layer in range(depth - 1)} if variant == "auxiliary" else None
    return rnnode.training.SequenceModel(rnn, 1, kind="regression", aux_weights=aux)


def readout_loss(
    model: rnnode.training.SequenceModel, y: torch.Tensor
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss_fn(output, h_n)`` for ``gradient_norms``: the model's loss from the solve's outputs.

    The top head reads ``output[-1]`` and head l reads ``h_n[l]`` (layer l's state at the last
    sample), which is what ``SequenceModel.loss`` reads for a last-sample readout.
    """

    def loss_fn(output: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
        total = rnnode.training.task_loss(model.head(output[-1]), y, model.kind)
        for layer, weight in model.aux_weights.items():
            head = model.aux_heads[str(layer)]
            total = total + weight * rnnode.training.task_loss(head(h_n[layer]), y, model.kind)
        return total

    return loss_fn


def gradient_point(point: dict[str, Any]) -> dict[str, Any]:
    """||dLoss/dh_t^l|| of one (variant, depth, seed): (depth, T + 1) norms.

    Arguments:
        point: ``{"variant", "depth", "seed", "quick"}``.
    """
    cfg = settings(point["quick"])
    torch.manual_seed(point["seed"])
    model = build(point["variant"], point["depth"], cfg["hidden_size"])
    x = torch.randn(cfg["length"], cfg["batch"], 1)
    y = torch.randn(cfg["batch"], 1)
    norms = gradient_norms(model.rnn, x, readout_loss(model, y))
    return {"norms": norms}


def per_layer_factor(depths, norms) -> float:
    """exp of the slope of log(norm) against depth: the mean factor the signal gets per layer."""
    return float(np.exp(np.polyfit(depths, np.log(norms), 1)[0]))


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    depths, seeds = cfg["depths"], list(range(ctx.seed, ctx.seed + cfg["seeds"]))
    points = [
        {"variant": v, "depth": d, "seed": s, "quick": ctx.quick}
        for v in VARIANTS
        for d in depths
        for s in seeds
    ]
    results = ctx.sweep(gradient_point, points, name="gradients")
    norms = {
        (p["variant"], p["depth"], p["seed"]): np.array(r["norms"])
        for p, r in zip(points, results, strict=True)
    }
    # Layer 1 at the last sample: the signal after crossing the whole depth. (depths, seeds)
    layer1 = {
        v: np.array([[norms[v, d, s][0, -1] for s in seeds] for d in depths]) for v in VARIANTS
    }
    factors = {v: per_layer_factor(depths, np.median(layer1[v], axis=1)) for v in VARIANTS}
    # Top layer at t_0 over the last sample: the signal after crossing all of time.
    through_time = np.array(
        [
            [norms["plain", d, s][-1, 0] / norms["plain", d, s][-1, -1] for s in seeds]
            for d in depths
        ]
    )

    # Per seed: the fitted per-layer factor of each variant, and the through-time ratio (log10,
    # mean over depths).
    seed_factors = {
        v: [per_layer_factor(depths, layer1[v][:, k]) for k in range(len(seeds))] for v in VARIANTS
    }
    log_time_ratio = np.log10(through_time).mean(axis=0)
    ctx.finding_over_seeds(
        "plain_vanishes_with_depth",
        "plain tanh stacks at torch's default initialisation: the layer-1 error signal shrinks "
        "with depth, a per-seed fitted per-layer factor below 1",
        seed_factors["plain"],
        comparison="<",
        bound=1.0,
        control=1.0,
        control_label="no decay (factor 1)",
    )
    ctx.finding_over_seeds(
        "skips_slow_the_decay",
        "skips (1, 2) raise the fitted per-layer factor over the plain stack (per-seed "
        "difference > 0); both stay below 1: slower exponential decay, not none",
        np.subtract(seed_factors["skips"], seed_factors["plain"]),
        comparison=">",
        bound=0.0,
        control=float(np.mean(seed_factors["plain"])),
        control_label="plain stack's mean factor",
    )
    worst_aux = float((layer1["auxiliary"] / layer1["auxiliary"][0]).min())
    ctx.verify(
        "auxiliary_keeps_gradient",
        worst_aux > AUX_FLOOR,
        f"auxiliary losses (weight {AUX_WEIGHT} on every lower layer): the layer-1 norm stays "
        f"above {AUX_FLOOR} times its one-layer value at every depth and seed (by construction: "
        "layer 1 has its own head, so its gradient does not cross the stack)",
        value=worst_aux,
        bound=AUX_FLOOR,
    )
    ctx.finding_over_seeds(
        "vanishes_through_time",
        "through time: the top layer's error signal at t_0 is below its value at the last "
        "sample, log10(ratio) < 0 (per seed, mean over depths)",
        log_time_ratio,
        comparison="<",
        bound=0.0,
        control=0.0,
        control_label="no decay (ratio 1)",
    )

    ctx.figure(
        "depth",
        _depth_figure(depths, layer1, factors),
        caption="||dLoss/dh^1|| at the last sample against depth; markers: seeds, lines: "
        "medians; legend: fitted factor per layer.",
        numbers={"per_layer_factor": factors},
    )
    deepest = depths[-1]
    ctx.figure(
        "heatmaps",
        _heatmaps({v: norms[v, deepest, seeds[0]] for v in VARIANTS}),
        caption=f"log10 ||dLoss/dh_t^l|| of the {deepest}-layer stacks (first seed): layers "
        "up, time right; the loss reads the last sample.",
        numbers={f"{v}_layer1_last": float(norms[v, deepest, seeds[0]][0, -1]) for v in VARIANTS},
    )
    return {
        "settings": cfg,
        "depths": depths,
        "seeds": seeds,
        "layer1_gradient": layer1,
        "per_layer_factor": factors,
        "per_layer_factor_per_seed": seed_factors,
        "time_ratio_plain": through_time,
    }


def _depth_figure(depths, layer1, factors) -> Figure:
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, g) in enumerate(layer1.items()):
        color = f"C{i}"
        for column in g.T:
            ax.semilogy(depths, column, "o", color=color, alpha=0.4, markersize=4)
        ax.semilogy(
            depths,
            np.median(g, axis=1),
            "-",
            color=color,
            label=f"{name} (x{factors[name]:.2f} per layer)",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("||dLoss / dh^1|| at the last sample")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig


def _heatmaps(norms: dict[str, np.ndarray]) -> Figure:
    """The three variants' heat maps side by side, each drawn by ``plot_gradient_norms``."""
    fig = Figure(figsize=(5 * len(norms), 3.4), layout="constrained")
    axes = fig.subplots(1, len(norms))
    for ax, (name, n) in zip(axes, norms.items(), strict=True):
        # Draw with analysis.plots, then move its image into this panel.
        source = plot_gradient_norms(n).axes[0].images[0]
        image = ax.imshow(
            source.get_array(),
            origin="lower",
            aspect="auto",
            extent=source.get_extent(),
            interpolation="nearest",
        )
        fig.colorbar(image, ax=ax, label="log10 ||dLoss/dh||")
        ax.set_title(name)
        ax.set_xlabel("time")
    axes[0].set_ylabel("layer")
    return fig
