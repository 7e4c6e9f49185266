"""Figures more than one study draws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter


def rmse_by_seed(
    seeds: Sequence[int],
    panels: Mapping[str, Sequence[tuple[str, float | Sequence[float]]]],
) -> Figure:
    """Test RMSE against seed, one panel per series.

    Arguments:
        seeds: the x positions.
        panels: ``{series: [(label, values), ...]}``; values a number (a model fitted once: a
            dashed horizontal line) or one value per seed (markers, each model's shifted by a
            tenth so that equal values stay visible). Entry i is drawn in colour Ci.
    """
    markers = "os^Dv"
    fig = Figure(figsize=(5 * len(panels), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (series, entries) in zip(axes, panels.items(), strict=True):
        per_seed = [i for i, (_, v) in enumerate(entries) if not np.isscalar(v)]
        for i, (label, values) in enumerate(entries):
            if np.isscalar(values):
                ax.axhline(values, color=f"C{i}", linestyle="--", label=label)
                continue
            rank = per_seed.index(i)
            shift = 0.1 * (rank - (len(per_seed) - 1) / 2)
            x = np.asarray(seeds) + shift
            ax.plot(x, values, markers[rank], color=f"C{i}", label=label)
        ax.set_xticks(seeds)
        ax.set_title(series)
        ax.set_xlabel("seed")
        ax.set_ylabel("test RMSE (normalised)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    return fig


def log_axes(ax: Any, x: bool = True) -> None:
    """Log scales (x too unless ``x`` is False) with plain tick labels (no mathtext: much faster
    to lay out) at 1, 2 and 5 per decade, and no minor labels."""
    for axis, on in ((ax.xaxis, x), (ax.yaxis, True)):
        if not on:
            continue
        (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def interval_line(
    ax: Any,
    x: Sequence[float] | np.ndarray,
    records: Sequence[Mapping[str, Any]],
    *,
    color: str,
    label: str,
    fmt: str = "o-",
    zorder: float | None = None,
) -> None:
    """Means with their 95% intervals as error bars, one point per x.

    Arguments:
        ax: the matplotlib axes.
        x: the positions.
        records: per position ``{"mean": m, "interval": [lo, hi]}`` (as the studies' metrics
            keep them; JSON may hold infinite ends as strings). An infinite end (an interval
            over fewer than 3 seeds) draws no bar on that side.
        color, label, fmt, zorder: as ``ax.errorbar``.
    """
    mean = np.array([float(r["mean"]) for r in records])
    lo = np.array([float(r["interval"][0]) for r in records])
    hi = np.array([float(r["interval"][1]) for r in records])
    below = np.where(np.isfinite(lo), mean - lo, 0.0)
    above = np.where(np.isfinite(hi), hi - mean, 0.0)
    ax.errorbar(
        np.asarray(x, dtype=float),
        mean,
        yerr=np.abs(np.stack([below, above])),
        fmt=fmt,
        ms=3,
        capsize=2,
        color=color,
        label=label,
        zorder=zorder,
    )
