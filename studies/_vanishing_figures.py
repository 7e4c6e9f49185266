"""The vanishing_gradients study's figures: ``depth``, ``heatmaps``, ``gain_sweep`` and
``layer_training``."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from rnnode.analysis.plots import plot_gradient_norms

from ._context import Context
from ._stats import t_interval


def figures(
    ctx: Context,
    cfg: dict[str, Any],
    seeds: list[int],
    parts: dict[str, Any],
    predicted: dict[str, float],
    critical: dict[str, float],
) -> None:
    """Every figure of the study (``parts``: what ``run`` computed)."""
    from .vanishing_gradients import OPTIMIZERS, VARIANTS, predicted_factor

    depths, hidden = cfg["depths"], cfg["hidden_size"]
    gains, gain_depths = cfg["gains"], cfg["gain_depths"]
    norms, layer1, factors = parts["norms"], parts["layer1"], parts["factors"]
    gain_factors, theory, training = parts["gain_factors"], parts["theory"], parts["training"]
    ctx.figure(
        "depth",
        _depth_figure(depths, layer1, factors),
        caption="||dLoss/dh^1|| at the last sample against depth at torch's default "
        "initialisation; markers: seeds, lines: medians; legend: fitted factor per layer.",
        numbers={"per_layer_factor": factors, "mean_field": predicted},
    )
    deepest = depths[-1]
    ctx.figure(
        "heatmaps",
        _heatmaps({v: norms[v, deepest, seeds[0]] for v in VARIANTS}),
        caption=f"log10 ||dLoss/dh_t^l|| of the {deepest}-layer stacks (first seed): layers "
        "up, time right; the loss reads the last sample.",
        numbers={f"{v}_layer1_last": float(norms[v, deepest, seeds[0]][0, -1]) for v in VARIANTS},
    )
    ctx.figure(
        "gain_sweep",
        _gain_figure(gains, gain_factors, critical, hidden, predicted_factor),
        caption="Per-layer factor of the layer-1 error signal (fitted over depths "
        f"{gain_depths}) against the gain on the inter-layer weights (recurrent weights at "
        "torch's init); markers: seeds, line: geometric mean with 95% Student-t bars; dashed: mean "
        "field; dotted: the critical gains g_c.",
        numbers={"critical_gain": critical, "mean_field": theory},
    )
    ctx.figure(
        "layer_training",
        _training_figure(training, cfg["inits"], cfg["train_variants"], OPTIMIZERS),
        caption=f"{cfg['train_depth']}-layer tanh stacks trained on digits rows ({cfg['steps']} "
        "steps): per layer, the relative weight change (left) and a frozen linear probe's test "
        "accuracy after (solid) and before training (dotted); mean over seeds; one row per "
        "initialisation.",
        numbers={
            f"{i}_{v}_{o}_test_accuracy": float(training[i][v][o]["test_accuracy"].mean())
            for i in cfg["inits"]
            for v in cfg["train_variants"]
            for o in OPTIMIZERS
        },
    )


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
            label=f"{name}: median over seeds (x{factors[name]:.2f} per layer; dots: seeds)",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("||dLoss / dh^1|| at the last sample")
    ax.set_title("Error signal at layer 1 against depth (torch's default init)", fontsize=10)
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
        ax.set_title(f"{name} stack, first seed", fontsize=9)
        ax.set_xlabel("time step")
    axes[0].set_ylabel("layer")
    return fig


def _gain_figure(gains, gain_factors, critical, hidden, predicted_factor) -> Figure:
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    fine = np.linspace(min(gains), max(gains), 120)
    for k, (v, f) in enumerate(gain_factors.items()):
        color = f"C{k}"
        for column in f.T:
            ax.semilogy(gains, column, "o", color=color, alpha=0.35, markersize=3)
        ends = np.array([t_interval(np.log(row)) for row in f])  # (gains, 2), ln factor
        centre = np.log(f).mean(axis=1)
        ends = np.where(np.isfinite(ends), ends, centre[:, None])  # < 2 seeds: no bar
        ax.errorbar(
            gains,
            np.exp(centre),
            yerr=np.abs(np.exp(ends.T) - np.exp(centre)),
            fmt="-",
            capsize=2,
            color=color,
            label=f"{v}: measured (geometric mean, 95% t-interval; dots: seeds)",
        )
        ax.semilogy(
            fine,
            [predicted_factor(g, hidden, v == "skips") for g in fine],
            "--",
            color=color,
            alpha=0.8,
            label=f"{v}: mean field (dashed)",
        )
        ax.axvline(critical[v], color=color, ls=":", lw=1, label=f"{v}: critical gain (dotted)")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axvline(1.0, color="k", lw=0.6, alpha=0.4)
    ax.set_xlabel(
        "gain on the inter-layer weights (1: torch's default; recurrent weights unscaled)"
    )
    ax.set_ylabel("per-layer factor of ||dLoss/dh^1||")
    ax.set_title("Error signal through depth across the critical gain", fontsize=10)
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig


def _training_figure(training, inits, variants, optimizers) -> Figure:
    fig = Figure(figsize=(10, 3.4 * len(inits)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(inits), 2))
    for row, i in zip(axes, inits, strict=True):
        left, right = row
        for k, (v, o) in enumerate((v, o) for v in variants for o in optimizers):
            t = training[i][v][o]
            layers = np.arange(1, t["relative_change"].shape[1] + 1)
            color = f"C{k}"
            name = f"{v}, {o}"
            left.semilogy(layers, t["relative_change"].mean(axis=0), "o-", color=color, label=name)
            right.plot(layers, t["probe_trained"].mean(axis=0), "o-", color=color, label=name)
            right.plot(layers, t["probe_untrained"].mean(axis=0), ":", color=color)
        left.set_title(f"{i} init: relative weight change (mean over seeds)", fontsize=9)
        right.set_title(f"{i} init: probe accuracy (solid: trained; dotted: untrained)", fontsize=9)
        left.set_xlabel("layer")
        right.set_xlabel("layer")
        left.legend(fontsize="small")
        left.grid(True, alpha=0.3)
        right.grid(True, alpha=0.3)
    return fig
