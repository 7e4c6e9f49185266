"""The depth_tradeoff study's figures: ``depth_curve`` (one panel per variant) and
``m_vs_factor`` (the fitted retention m against the measured gradient factor)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rnnode.analysis.depth import accuracy_model, sweet_spot

from ._stats import t_interval


def depth_figure(depths, accuracy, depth0, fits, steps, factor) -> Figure:
    """One panel per variant: seed means per budget with t intervals, each budget's fit and the
    N* that lie inside the measured depths."""
    from .depth_tradeoff import BUDGETS, LABELS, VARIANTS

    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, sharey=True).ravel()
    n = np.array([0, *depths], dtype=float)
    grid = np.linspace(0.0, float(depths[-1]), 200)
    for ax, v in zip(axes, VARIANTS, strict=True):
        for k, b in enumerate(BUDGETS):
            per_depth = [depth0, *accuracy[v][k]]
            means = np.array([np.mean(a) for a in per_depth])
            ends = np.array([t_interval(a) for a in per_depth])
            finite = np.where(np.isfinite(ends), ends, means[:, None])
            err = np.abs(finite - means[:, None]).T
            color = f"C{k}"
            ax.errorbar(n + 0.06 * (k - 1), means, yerr=err, fmt="o", color=color, capsize=2)
            params = fits[v][f"{b}x"]
            ax.plot(grid, accuracy_model(grid, **params), "-", color=color)
            star = float(sweet_spot(params["b"], params["m"]))
            if depths[0] <= star <= depths[-1]:
                ax.axvline(star, linestyle=":", color=color)
        ax.set_title(
            f"{LABELS[v]}\nmeasured gradient factor {np.mean(factor[v]):.2f} per layer",
            fontsize="medium",
        )
        ax.grid(True, alpha=0.3)
        ax.set_ylim(0, 1)
        ax.set_xlim(-0.5, depths[-1] + 0.5)
        ax.set_xticks(n)
    for ax in axes[2:]:
        ax.set_xlabel("depth N (layers)")
    for ax in axes[::2]:
        ax.set_ylabel("test accuracy")
    handles = [
        Line2D([], [], marker="o", linestyle="", color=f"C{k}", label=f"{steps[k]} steps")
        for k in range(len(BUDGETS))
    ]
    handles += [
        Line2D(
            [], [], color="0.3", marker="o", linestyle="", label="mean over seeds, 95% t interval"
        ),
        Line2D([], [], color="0.3", linestyle="-", label="fitted A(N)"),
        Line2D([], [], color="0.3", linestyle=":", label="sweet spot N* (inside measured depths)"),
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    return fig


def m_figure(fits, factor, steps) -> Figure:
    from .depth_tradeoff import BUDGETS, LABELS, VARIANTS

    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(VARIANTS))
    for i, v in enumerate(VARIANTS):
        ax.plot(np.full(len(factor[v]), x[i] - 0.15), factor[v], "k_", markersize=12)
    ax.plot([], [], "k_", markersize=12, label="measured gradient factor (one mark per seed)")
    for k, b in enumerate(BUDGETS):
        ax.plot(
            x + 0.05 * k,
            [fits[v][f"{b}x"]["m"] for v in VARIANTS],
            "o",
            color=f"C{k}",
            label=f"fitted retention m, {steps[k]} steps",
        )
    ax.set_xticks(x, [LABELS[v].split(" (")[0] for v in VARIANTS], fontsize="small")
    ax.set_ylabel("factor per layer")
    ax.set_title("Fitted retention m of A(N) against the measured gradient factor")
    ax.axhline(1.0, color="0.6", linewidth=0.8)
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig
