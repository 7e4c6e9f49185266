"""Figures of the analyses: gain curves, stability maps, gradient heat maps, the depth curve.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, no display), so
it works headless; save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .depth import accuracy_model, sweet_spot
from .stability import StabilityMap


def plot_gain(
    omegas: ArrayLike,
    gains: ArrayLike,
    theory: ArrayLike | None = None,
    *,
    theory_omegas: ArrayLike | None = None,
    labels: Sequence[str] | None = None,
) -> Figure:
    """Gain against frequency, one curve per layer, with the theory overlaid (dashed).

    Arguments:
        omegas: (F,) frequencies of the measurements.
        gains: (num_layers, F) measured gains (``measure_gain``).
        theory: optional (num_layers, F') theoretical gains at ``theory_omegas``.
        theory_omegas: (F',) frequencies of ``theory`` (default ``omegas``).
        labels: one label per layer (default "layer 1", ...).

    Returns:
        Figure with one axes: ``num_layers`` measured lines (markers), then ``num_layers``
        theory lines, log-scaled gain.
    """
    omega = np.asarray(omegas, dtype=np.float64)
    g = np.atleast_2d(np.asarray(gains, dtype=np.float64))
    if g.shape[1] != omega.shape[0]:
        raise ValueError(
            f"gains: expected shape (num_layers, len(omegas)) = (*, {omega.shape[0]}), "
            f"got {g.shape}"
        )
    names = [f"layer {l + 1}" for l in range(g.shape[0])] if labels is None else list(labels)
    if len(names) != g.shape[0]:
        raise ValueError(f"labels: expected {g.shape[0]} labels (one per layer), got {len(names)}")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    colors = [f"C{l % 10}" for l in range(g.shape[0])]
    for row, name, color in zip(g, names, colors, strict=True):
        ax.plot(omega, row, "o-", color=color, markersize=3, label=f"{name} (measured)")
    if theory is not None:
        t_omega = omega if theory_omegas is None else np.asarray(theory_omegas, dtype=np.float64)
        t = np.atleast_2d(np.asarray(theory, dtype=np.float64))
        if t.shape != (g.shape[0], t_omega.shape[0]):
            raise ValueError(
                f"theory: expected shape (num_layers, len(theory_omegas)) = "
                f"({g.shape[0]}, {t_omega.shape[0]}), got {t.shape}"
            )
        for row, name, color in zip(t, names, colors, strict=True):
            ax.plot(t_omega, row, "--", color=color, label=f"{name} (theory)")
    ax.set_yscale("log")
    ax.set_xlabel("frequency omega (rad / unit time)")
    ax.set_ylabel("gain per unit input amplitude")
    ax.legend(fontsize="small")
    return fig


def plot_stability_map(smap: StabilityMap, *, p_label: str = "p", q_label: str = "q") -> Figure:
    """Two panels: max Re lambda(J) with its zero contour, and the step map's spectral radius
    with its unit contour.

    Arguments:
        smap: a ``StabilityMap``.
        p_label, q_label: axis labels of the two parameters (p on the vertical axis).

    Returns:
        Figure with two image axes (plus their colour bars).
    """
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    extent = (smap.q[0], smap.q[-1], smap.p[0], smap.p[-1])
    panels = (
        (left, smap.max_real, 0.0, "max Re lambda(J)"),
        (right, smap.spectral_radius, 1.0, f"spectral radius, {smap.method} dt={smap.dt:g}"),
    )
    for ax, values, level, title in panels:
        finite = values[np.isfinite(values)]
        lo = float(finite.min()) if finite.size else level - 1
        hi = float(finite.max()) if finite.size else level + 1
        # Centre the diverging colours on the stability boundary when it lies in the data.
        norm = TwoSlopeNorm(level, lo, hi) if lo < level < hi else None
        image = ax.imshow(
            values, origin="lower", extent=extent, aspect="auto", cmap="coolwarm", norm=norm
        )
        fig.colorbar(image, ax=ax)
        if lo < level < hi:
            ax.contour(smap.q, smap.p, values, levels=[level], colors="k")
        ax.set_title(title)
        ax.set_xlabel(q_label)
        ax.set_ylabel(p_label)
    return fig


def plot_gradient_norms(
    norms: ArrayLike, *, times: ArrayLike | None = None, log: bool = True
) -> Figure:
    """Heat map of ||dLoss/dh_t^l||: layers on the vertical axis, time on the horizontal.

    Arguments:
        norms: (num_layers, T + 1) gradient norms (``gradient_norms``).
        times: (T + 1,) sample times (default 0..T).
        log: show log10 of the norms (zeros become the smallest positive value).

    Returns:
        Figure with one image axes (and its colour bar); the image holds the plotted values.
    """
    values = np.asarray(norms, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"norms: expected shape (num_layers, T + 1), got {values.shape}")
    t = np.arange(values.shape[1]) if times is None else np.asarray(times, dtype=np.float64)
    if log:
        positive = values[values > 0]
        floor = positive.min() if positive.size else 1.0
        values = np.log10(np.maximum(values, floor))
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    image = ax.imshow(
        values,
        origin="lower",
        aspect="auto",
        extent=(t[0], t[-1], 0.5, values.shape[0] + 0.5),
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, label="log10 ||dLoss/dh||" if log else "||dLoss/dh||")
    ax.set_xlabel("time")
    ax.set_ylabel("layer")
    return fig


def plot_depth_curve(
    depths: ArrayLike, accuracies: ArrayLike, params: dict, *, num_points: int = 200
) -> Figure:
    """Accuracy against depth: the data, the fitted A(N), and the sweet spot N* (vertical line).

    Arguments:
        depths: (K,) depths.
        accuracies: (K,) accuracies.
        params: dict with ``a_min``, ``a_max``, ``b``, ``m`` (``fit_accuracy_model``).
        num_points: samples of the fitted curve.

    Returns:
        Figure with one axes: the data (markers), the curve, and the line at N* (if finite).
    """
    n = np.asarray(depths, dtype=np.float64)
    acc = np.asarray(accuracies, dtype=np.float64)
    missing = {"a_min", "a_max", "b", "m"} - set(params)
    if missing:
        raise ValueError(f"params: expected keys a_min, a_max, b, m; missing {sorted(missing)}")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(n, acc, "o", label="measured")
    grid = np.linspace(0.0, float(n.max()), num_points)
    ax.plot(grid, accuracy_model(grid, **params), "-", label="A(N) fit")
    star = float(sweet_spot(params["b"], params["m"]))
    if np.isfinite(star):
        ax.axvline(star, color="k", linestyle=":", label=f"N* = {star:.2f}")
    ax.set_xlabel("depth N")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize="small")
    return fig
