"""Figures of the analyses: gain curves, stability maps, eigenvalues, gradient heat maps, depth.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, no display), so
it works headless; save it with ``fig.savefig(path)``. Conventions, so that a figure can be
trusted: constrained layout (nothing clipped when saved), a title that says what is shown,
labelled colour bars, diverging colour maps centred on the stability boundary (0 for
Re lambda, 1 for a spectral radius) whatever the data's range, logarithmic frequency axes,
theory drawn dashed *over* the measurement, and legends outside the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.colors import CenteredNorm
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .depth import accuracy_model, sweet_spot
from .jacobians import STEP_POLYNOMIALS
from .stability_maps import StabilityMap

__all__ = [
    "plot_depth_curve",
    "plot_eigenvalues",
    "plot_gain",
    "plot_gradient_norms",
    "plot_stability_map",
]


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
        theory lines (dashed, drawn on top); log-scaled frequency and gain; legend outside.
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
    if np.any(omega <= 0):
        raise ValueError("omegas: expected positive frequencies (the frequency axis is log)")
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    colors = [f"C{l % 10}" for l in range(g.shape[0])]
    for row, name, color in zip(g, names, colors, strict=True):
        ax.plot(
            omega,
            row,
            "o-",
            color=color,
            markersize=3,
            alpha=0.6,
            zorder=2,
            label=f"{name} (measured)",
        )
    if theory is not None:
        t_omega = omega if theory_omegas is None else np.asarray(theory_omegas, dtype=np.float64)
        t = np.atleast_2d(np.asarray(theory, dtype=np.float64))
        if t.shape != (g.shape[0], t_omega.shape[0]):
            raise ValueError(
                f"theory: expected shape (num_layers, len(theory_omegas)) = "
                f"({g.shape[0]}, {t_omega.shape[0]}), got {t.shape}"
            )
        for row, name, color in zip(t, names, colors, strict=True):
            # On top of the measurement (higher zorder), so that agreement shows as overlap.
            ax.plot(t_omega, row, "--", color=color, lw=1.2, zorder=3, label=f"{name} (theory)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("frequency omega (rad / unit time)")
    ax.set_ylabel("gain per unit input amplitude")
    what = "measured (markers), theory (dashed, on top)" if theory is not None else "measured"
    ax.set_title(f"Gain of each layer against frequency\n{what}", fontsize="medium")
    fig.legend(loc="outside right upper", fontsize="small")
    return fig


def plot_stability_map(smap: StabilityMap, *, p_label: str = "p", q_label: str = "q") -> Figure:
    """Two panels: max Re lambda(J) with its zero contour, and the step map's spectral radius
    with its unit contour.

    Each panel's diverging colour map is centred on its stability boundary (0 and 1: white),
    blue on the stable side and red on the unstable side, with a range symmetric about the
    boundary (``CenteredNorm``), so a map that is stable everywhere is blue everywhere; the
    colour bars are labelled and carry ticks on both sides of the boundary.

    Arguments:
        smap: a ``StabilityMap`` (tensors or numpy arrays).
        p_label, q_label: axis labels of the two parameters (p on the vertical axis).

    Returns:
        Figure with two image axes (plus their colour bars).
    """
    p, q = (np.asarray(v, dtype=np.float64) for v in (smap.p, smap.q))
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    extent = (q[0], q[-1], p[0], p[-1])
    panels = (
        (
            left,
            smap.max_real,
            0.0,
            "max Re lambda(J)",
            "continuous-time stack (ODE)",
            "max Re lambda (0: boundary)",
        ),
        (
            right,
            smap.spectral_radius,
            1.0,
            "spectral radius max |R(dt lambda)|",
            f"{smap.method} step map, dt = {smap.dt:g}",
            "spectral radius (1: boundary)",
        ),
    )
    for ax, values, level, quantity, system, bar_label in panels:
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        half = float(np.abs(finite - level).max()) if finite.size else 1.0
        norm = CenteredNorm(vcenter=level, halfrange=half if half > 0 else 1.0)
        image = ax.imshow(
            values, origin="lower", extent=extent, aspect="auto", cmap="RdBu_r", norm=norm
        )
        bar = fig.colorbar(image, ax=ax)
        bar.set_label(bar_label)
        bar.set_ticks(np.linspace(level - norm.halfrange, level + norm.halfrange, 5))
        if finite.size and finite.min() < level < finite.max():
            ax.contour(q, p, values, levels=[level], colors="k")
        ax.set_title(f"{quantity}\n{system}", fontsize="medium")
        ax.set_xlabel(q_label)
        ax.set_ylabel(p_label)
    fig.suptitle(
        "Local stability of the fixed point: blue stable, red unstable, white and black line "
        "on the boundary",
        fontsize="medium",
    )
    return fig


def plot_eigenvalues(
    eigvals: ArrayLike,
    *,
    dt: float = 1.0,
    methods: Sequence[str] = ("euler", "rk4"),
    labels: Sequence[str] | None = None,
) -> Figure:
    """Eigenvalues dt * lambda of J in the complex plane, with the methods' stability regions.

    Drawn: the points dt * lambda (one colour per group), the imaginary axis (the boundary of
    the continuous-time system: Re lambda < 0 is stable), the unit circle (the boundary for
    the multipliers of a discrete map: pass those with dt = 1 to read them against it), and for
    each method the boundary |R(z)| = 1 of its stability region {z: |R(z)| <= 1} (Euler: the
    disc |1 + z| <= 1; RK4: the region of its degree-4 polynomial). A step is stable where
    every dt * lambda lies inside the method's region.

    Arguments:
        eigvals: (..., n) complex eigenvalues (``eigenvalues``), or a sequence of such arrays
            (one colour each).
        dt: the step size that scales them.
        methods: keys of ``STEP_POLYNOMIALS`` whose regions are drawn.
        labels: one label per group of eigenvalues.

    Returns:
        Figure with one equal-aspect axes.
    """
    groups = list(eigvals) if isinstance(eigvals, (list, tuple)) else [eigvals]
    groups = [np.asarray(g).astype(np.complex128).ravel() * dt for g in groups]
    names = [f"group {i + 1}" for i in range(len(groups))] if labels is None else list(labels)
    if len(names) != len(groups):
        raise ValueError(f"labels: expected {len(groups)} labels, got {len(names)}")
    for m in methods:
        if m not in STEP_POLYNOMIALS:
            raise ValueError(f"methods: expected keys of {tuple(STEP_POLYNOMIALS)}, got {m!r}")
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    points = np.concatenate(groups) if groups else np.zeros(0)
    reach = max(3.2, 1.1 * float(np.abs(points).max()) if points.size else 0.0)
    grid = np.linspace(-reach, reach, 401)
    zr, zi = np.meshgrid(grid, grid)
    z = zr + 1j * zi
    styles = ("-", "--", "-.", ":")
    for k, m in enumerate(methods):
        value = np.zeros_like(z)
        for c in reversed(STEP_POLYNOMIALS[m]):
            value = value * z + c
        ax.contour(
            zr, zi, np.abs(value), levels=[1.0], colors=f"C{k + 3}", linestyles=styles[k % 4]
        )
        ax.plot([], [], styles[k % 4], color=f"C{k + 3}", label=f"{m} region |R(z)| = 1")
    theta = np.linspace(0, 2 * np.pi, 361)
    ax.plot(np.cos(theta), np.sin(theta), color="0.5", lw=1, label="unit circle |z| = 1")
    ax.axvline(0.0, color="k", lw=0.8, label="imaginary axis Re z = 0")
    for k, (g, name) in enumerate(zip(groups, names, strict=True)):
        ax.plot(g.real, g.imag, "o", color=f"C{k}", markersize=4, zorder=4, label=name)
    ax.set_aspect("equal")
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_xlabel("Re(dt lambda)")
    ax.set_ylabel("Im(dt lambda)")
    ax.set_title(
        f"Eigenvalues of J times dt = {dt:g}\nand the step methods' stability regions",
        fontsize="medium",
    )
    fig.legend(loc="outside right upper", fontsize="small")
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
    fig = Figure(figsize=(8, 3), layout="constrained")
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
    ax.set_title("Error signal ||dLoss/dh|| by layer and time", fontsize="medium")
    return fig


def plot_depth_curve(
    depths: ArrayLike,
    accuracies: ArrayLike,
    params: dict,
    *,
    num_points: int = 200,
    ax: Any = None,
    label: str | None = None,
    color: str | None = None,
) -> Figure:
    """Accuracy against depth: the data, the fitted A(N), and the sweet spot N* (vertical line).

    Arguments:
        depths: (K,) depths.
        accuracies: (K,) accuracies.
        params: dict with ``a_min``, ``a_max``, ``b``, ``m`` (``fit_accuracy_model``).
        num_points: samples of the fitted curve.
        ax: a matplotlib ``Axes`` to draw into (several curves on one axes, or panels of a
            larger figure); None: a new figure with one axes, a title and a legend.
        label: prefix of the three lines' legend labels (None: none).
        color: colour of the three lines (None: matplotlib's cycle).

    Returns:
        The figure holding the axes: the data (markers), the curve, and the line at N* (if
        finite), drawn in that order.
    """
    n = np.asarray(depths, dtype=np.float64)
    acc = np.asarray(accuracies, dtype=np.float64)
    missing = {"a_min", "a_max", "b", "m"} - set(params)
    if missing:
        raise ValueError(f"params: expected keys a_min, a_max, b, m; missing {sorted(missing)}")
    own = ax is None
    if own:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    prefix = "" if label is None else f"{label}: "
    style = {} if color is None else {"color": color}
    ax.plot(n, acc, "o", label=f"{prefix}measured", **style)
    grid = np.linspace(0.0, float(n.max()), num_points)
    ax.plot(grid, accuracy_model(grid, **params), "-", label=f"{prefix}A(N) fit", **style)
    star = float(sweet_spot(params["b"], params["m"]))
    if np.isfinite(star):
        ax.axvline(star, linestyle=":", label=f"{prefix}N* = {star:.2f}", **{"color": "k", **style})
    ax.set_xlabel("depth N")
    ax.set_ylabel("accuracy")
    if own:
        ax.set_title(
            "Accuracy against depth: data, fitted A(N) and its sweet spot", fontsize="medium"
        )
        fig.legend(loc="outside right upper", fontsize="small")
    return fig
