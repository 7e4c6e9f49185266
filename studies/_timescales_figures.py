"""The timescales study's figures: ``timescale_hierarchy``, ``filter_bank`` and (from
``_gain_formula``) ``theory``."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ._context import Context
from ._figures import log_axes
from ._gain_formula import theory_figure

READOUT_WORDS = {"top": "top-layer readout", "all": "all-layer readout"}
TASK_WORDS = {"two_level": "two-timescale task", "one_level": "single-timescale task"}


def _analysed(out: dict[str, Any], name: str, which: str) -> list[dict[str, Any]]:
    """The ``which`` ("trained" or "untrained") analyses of a condition's analysed seeds."""
    cond = out["conditions"][name]
    used = set(cond["analysed_seeds"])
    return [r[which] for s, r in zip(out["seeds"], cond["runs"], strict=True) if s in used]


def _hierarchy(ctx: Context, cfg: dict[str, Any], out: dict[str, Any]) -> None:
    from .timescales import LABELS, MEASURES

    layers = np.arange(1, cfg["layers"] + 1)
    rows = (
        ("spread", (("spread_top", "C0"), ("spread_all", "C1"))),
        ("homogeneous", (("homogeneous_top", "C2"),)),
    )
    fig = Figure(figsize=(3.0 * len(MEASURES), 6.6), layout="constrained")
    axes = fig.subplots(2, len(MEASURES))
    for row, (init, conditions) in zip(axes, rows, strict=True):
        series = []
        for name, color in conditions:
            readout = out["conditions"][name]["readout"]
            series.append((name, "trained", color, "-", f"trained, {READOUT_WORDS[readout]}"))
        series.append((conditions[0][0], "untrained", "0.45", "--", "untrained (same weights)"))
        for ax, measure in zip(row, MEASURES, strict=True):
            for name, which, color, style, label in series:
                chosen = _analysed(out, name, which)
                values = np.array([c[measure] for c in chosen])
                edges = np.array([c.get(f"{measure}_edge", [False] * len(layers)) for c in chosen])
                for v in values:
                    ax.plot(layers, v, style, color=color, alpha=0.15, linewidth=0.8)
                ax.plot(
                    layers,
                    np.exp(np.log(values).mean(0)),
                    "o" + style,
                    color=color,
                    linewidth=2,
                    label=f"{init} tau init: {label}",
                )
                if edges.any():
                    ax.plot(
                        np.broadcast_to(layers, values.shape)[edges],
                        values[edges],
                        "x",
                        color="r",
                        markersize=5,
                    )
            log_axes(ax, x=False)
            ax.set_xticks(layers)
            ax.set_xlabel("layer (1: bottom)")
            ax.set_ylabel(f"timescale (steps), {init} tau init", fontsize=8)
            ax.set_title(LABELS[measure], fontsize=9)
        handles, labels = row[0].get_legend_handles_labels()
        row[-1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    axes[-1, -1].plot([], [], "x", color="r", label="reached the longest lag (a lower bound)")
    axes[-1, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(
        "Do timescales rise with the layer? Two-timescale task; solid: trained, dashed: "
        "untrained; thick: geometric mean over analysed seeds, thin: single seeds",
        fontsize=10,
    )
    numbers = {
        f"{name}_{m}_rho_minus_untrained": out["conditions"][name]["statistics"][m][
            "trained_minus_untrained"
        ]["mean"]
        for name, _ in (*rows[0][1], *rows[1][1])
        for m in MEASURES
    }
    ctx.figure(
        "timescale_hierarchy",
        fig,
        caption="Per-layer timescales of stacks trained on the two-timescale chain (qualifying "
        "seeds) and of the same networks untrained, for the spread (top row) and homogeneous "
        "(bottom row) tau initialisations. Red crosses: a decay time that reached the longest "
        "lag measured (a lower bound, flagged in the metrics).",
        numbers=numbers,
    )


def _filter_bank(ctx: Context, cfg: dict[str, Any], out: dict[str, Any]) -> None:

    omegas = np.asarray(cfg["probe_omegas"])
    panels = (
        ("spread_top", "untrained"),
        ("spread_top", "trained"),
        ("spread_top_one_level", "trained"),
        ("homogeneous_top", "untrained"),
        ("homogeneous_top", "trained"),
        ("homogeneous_top_one_level", "trained"),
    )
    fig = Figure(figsize=(12, 7), layout="constrained")
    axes = fig.subplots(2, 3)
    for ax, (name, which) in zip(axes.ravel(), panels, strict=True):
        cond = out["conditions"][name]
        chosen = _analysed(out, name, which)
        gains = np.array([c["gain"] for c in chosen])  # (seeds, L, F)
        centres = np.array([c["band_centre"] for c in chosen])
        for l in range(cfg["layers"]):
            mean = np.exp(np.log(gains[:, l]).mean(0))
            ax.plot(
                omegas, mean / mean.max(), "o-", color=f"C{l}", markersize=3, label=f"layer {l + 1}"
            )
            ax.axvline(np.exp(np.log(centres[:, l]).mean()), color=f"C{l}", linestyle=":")
        log_axes(ax)
        ax.set_xlabel("frequency omega (rad / step)")
        ax.set_ylabel("gain from the layer below (normalised)", fontsize=8)
        state = (
            "untrained" if which == "untrained" else f"trained on the {TASK_WORDS[cond['task']]}"
        )
        ax.set_title(f"{cond['init']} tau init,\n{state}", fontsize=9)
    axes[0, -1].plot([], [], ":", color="k", label="band centre (dotted)")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(
        "Do the layers tile the spectrum? Gain from layer l-1 to layer l (geometric mean over "
        "analysed seeds, normalised to its maximum); dotted: each layer's band centre",
        fontsize=10,
    )
    ctx.figure(
        "filter_bank",
        fig,
        caption="Gain from layer l-1 to layer l at the task's operating point, top readout, "
        "untrained, trained on the two-timescale task and trained on the single-timescale "
        "control task, per tau initialisation. Maxima on the grid's edge are flagged in the "
        "metrics (preferred_edge).",
        numbers={
            f"{init}_spread_two_minus_one": float(np.mean(np.asarray(fb[a]) - np.asarray(fb[b])))
            for init, fb in out["filter_bank"].items()
            for a, b in [[k for k in fb if k != "analysed_seeds"]]
        },
    )


def figures(ctx: Context, cfg: dict[str, Any], out: dict[str, Any]) -> None:
    """Every figure of the timescales study."""
    _hierarchy(ctx, cfg, out)
    _filter_bank(ctx, cfg, out)
    theory_figure(ctx, out["theory"])
