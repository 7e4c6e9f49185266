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

Claim 1 (depth). In the plain stack the norm that reaches layer 1 at the last sample shrinks by
a roughly constant factor per layer: the fitted per-layer factor exp(slope of log median norm
against depth) is below ``PLAIN_FACTOR``.
Claim 2 (skips). Skips (1, 2) shorten the paths: their fitted per-layer factor is larger than
the plain stack's, and at the largest depth their layer-1 norm exceeds the plain one for every
seed.
Claim 3 (auxiliary losses). The auxiliary heads keep the layer-1 signal: at every depth and
seed it stays above ``AUX_FLOOR`` times its value in the one-layer stack.
Claim 4 (time). Through time the signal also fades: in every plain stack the top layer's norm at
t_0 is below its norm at the last sample.

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

from ._run import Context

VARIANTS = ("plain", "skips", "auxiliary")
AUX_WEIGHT = 0.5
PLAIN_FACTOR = 0.8
AUX_FLOOR = 0.1


def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the quick and the full setting."""
    if quick:
        return {"depths": [1, 2, 4, 8], "seeds": 2, "hidden_size": 8, "length": 8, "batch": 4}
    return {
        "depths": [1, 2, 4, 8, 16, 32, 64],
        "seeds": 3,
        "hidden_size": 16,
        "length": 16,
        "batch": 8,
    }


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

    ctx.claim(
        "plain_vanishes_with_depth",
        factors["plain"] < PLAIN_FACTOR,
        f"plain tanh stacks: the layer-1 error signal shrinks by a fitted factor < {PLAIN_FACTOR} "
        "per layer (median over seeds)",
    )
    ctx.claim(
        "skips_slow_the_decay",
        factors["skips"] > factors["plain"]
        and bool(np.all(layer1["skips"][-1] > layer1["plain"][-1])),
        "skips (1, 2): larger fitted per-layer factor than the plain stack, and a larger layer-1 "
        "norm at the largest depth for every seed",
    )
    ctx.claim(
        "auxiliary_keeps_gradient",
        bool(np.all(layer1["auxiliary"] > AUX_FLOOR * layer1["auxiliary"][0])),
        f"auxiliary losses (weight {AUX_WEIGHT} on every lower layer): the layer-1 norm stays "
        f"above {AUX_FLOOR} times its one-layer value at every depth and seed",
    )
    ctx.claim(
        "vanishes_through_time",
        bool(np.all(through_time < 1)),
        "through time: in every plain stack the top layer's norm at t_0 is below its norm at "
        "the last sample",
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
        "time_ratio_plain": through_time,
    }


def _depth_figure(depths, layer1, factors) -> Figure:
    fig = Figure(figsize=(6, 4))
    fig.subplots_adjust(left=0.13, right=0.98, bottom=0.13, top=0.95)
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
    fig = Figure(figsize=(5 * len(norms), 3.4))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
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
