"""Figures of the analyses: gain and Bode plots, stability maps, eigenvalues, fixed points,
gradient heat maps, depth.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, no display), so
it works headless and is freed with its last reference; save it with ``fig.savefig(path)``. To
show one in a window, hand it to pyplot first: ``plt.figure(fig); plt.show()`` (matplotlib >=
3.11); ``plt.show()`` alone does not see it. Conventions, so that a figure can be
trusted and printed: constrained layout (nothing clipped when saved), a title that says what is
shown, curves labelled by what they are ("measured (sine probe)", "linearised"), labelled colour
bars with round limits and ticks, diverging colour maps centred on the stability boundary (0 for
Re lambda, 1 for a spectral radius) whatever the data's range, logarithmic frequency axes
labelled in plain numbers, phases in multiples of pi, integer layer ticks, theory drawn dashed
*over* the measurement, and legends outside the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d.axes3d import Axes3D
from numpy.typing import ArrayLike

from ._response import FrequencyResponse
from ._ticks import (
    centred_limits,
    integer_ticks,
    pi_axis,
    readable_log_axis,
    round_ticks,
)
from .depth import accuracy_model, sweet_spot
from .jacobians import STEP_POLYNOMIALS
from .stability_maps import StabilityMap

__all__ = [
    "plot_bode",
    "plot_depth_curve",
    "plot_eigenvalues",
    "plot_fixed_points",
    "plot_gain",
    "plot_gradient_norms",
    "plot_stability_map",
]

_OMEGA_LABEL = r"frequency $\omega$ (rad / unit time)"


def _positive_limits(ax, which: str) -> tuple[float, float]:
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    return float(low), float(high)


def plot_gain(
    omegas: ArrayLike,
    gains: ArrayLike,
    theory: ArrayLike | None = None,
    *,
    theory_omegas: ArrayLike | None = None,
    labels: Sequence[str] | None = None,
    source: str = "measured (sine probe)",
    theory_source: str = "linearised",
) -> Figure:
    """Gain against frequency, one curve per layer, with a second set overlaid (dashed).

    Arguments:
        omegas: (F,) frequencies of the gains.
        gains: (num_layers, F) gains, e.g. ``measure_gain``'s or ``frequency_response(...).gain``.
        theory: optional (num_layers, F') gains to compare with, at ``theory_omegas``.
        theory_omegas: (F',) frequencies of ``theory`` (default ``omegas``).
        labels: one label per layer (default "layer 1", ...).
        source: what ``gains`` are, in the legend and title: ``"measured (sine probe)"``
            (default), ``"linearised"`` (``FrequencyResponse.source`` says which), or any words.
        theory_source: what ``theory`` is (default ``"linearised"``; e.g. ``"closed form"``).

    Returns:
        Figure with one axes: ``num_layers`` lines with markers labelled "<layer> (<source>)",
        then ``num_layers`` dashed lines on top labelled "<layer> (<theory_source>)"; log
        frequency and gain axes with plain-number tick labels; legend outside.
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
    for name, value in (("source", source), ("theory_source", theory_source)):
        if not isinstance(value, str):
            raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
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
            label=f"{name} ({source})",
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
            # On top of the first set (higher zorder), so that agreement shows as overlap.
            ax.plot(
                t_omega, row, "--", color=color, lw=1.2, zorder=3, label=f"{name} ({theory_source})"
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    readable_log_axis(ax.xaxis, *_positive_limits(ax, "x"))
    readable_log_axis(ax.yaxis, *_positive_limits(ax, "y"))
    ax.set_xlabel(_OMEGA_LABEL)
    ax.set_ylabel("gain per unit input amplitude")
    title = "Gain of each layer against frequency"
    if theory is not None:
        title += f"\n{theory_source}: dashed, drawn on top"
    ax.set_title(title, fontsize="medium")
    fig.legend(loc="outside right upper", fontsize="small")
    return fig


def plot_bode(
    responses: FrequencyResponse | Sequence[FrequencyResponse],
    *,
    units: Sequence[tuple[int, int]] | None = None,
    labels: Sequence[str] | None = None,
    db: bool = False,
) -> Figure:
    """Bode plot: gain |H_j(omega) e| (top) and phase arg(H_j(omega) e) (bottom) of chosen units.

    Each response (``frequency_response``, ``measure_response``) gets its line style (solid,
    then dashed, dotted, ...; later ones on top) and each unit its colour, so a measured and a
    linearised response of the same stack overlap where they agree. The phase follows
    ``FrequencyResponse``'s convention (the input sin(omega t) e drives
    |H_j e| sin(omega t + phase), unwrapped along frequency) and is drawn in radians with ticks
    at multiples of pi.

    Arguments:
        responses: one ``FrequencyResponse`` or a sequence of them on the same units.
        units: (layer, unit) pairs, 0-based, to draw (default: unit 0 of every layer).
        labels: one legend label per pair (default "layer l" for single-unit layers, else
            "layer l, unit j", 1-based).
        db: gain in decibels, 20 log10 |H e|, on a linear axis (default: |H e| on a log axis).

    Returns:
        Figure with two axes sharing the log frequency axis (gain, phase); the legend, outside,
        holds one entry per unit (its colour) and one per response (its line style, labelled by
        ``FrequencyResponse.source``). Lines are drawn response by response, unit by unit, gain
        lines on the top axes and phase lines on the bottom one.
    """
    group = [responses] if isinstance(responses, FrequencyResponse) else list(responses)
    if not group:
        raise ValueError("responses: expected at least one FrequencyResponse, got none")
    for r in group:
        if not isinstance(r, FrequencyResponse):
            raise TypeError(
                f"responses: expected FrequencyResponse objects, got {type(r).__name__}"
            )
    num_layers, _, num_units = group[0].unit_gain.shape
    for r in group[1:]:
        if r.unit_gain.shape[0] != num_layers or r.unit_gain.shape[2] != num_units:
            raise ValueError(
                f"responses: expected the same (layers, units per layer) = ({num_layers}, "
                f"{num_units}) in every response, got {tuple(r.unit_gain.shape[::2])}"
            )
    pairs = [(l, 0) for l in range(num_layers)] if units is None else [tuple(u) for u in units]
    for pair in pairs:
        if len(pair) != 2 or not (0 <= pair[0] < num_layers and 0 <= pair[1] < num_units):
            raise ValueError(
                f"units: expected (layer, unit) pairs with 0 <= layer < {num_layers} and "
                f"0 <= unit < {num_units}, got {pair}"
            )
    if labels is None:
        names = [
            f"layer {l + 1}" if num_units == 1 else f"layer {l + 1}, unit {j + 1}" for l, j in pairs
        ]
    else:
        names = list(labels)
    if len(names) != len(pairs):
        raise ValueError(f"labels: expected {len(pairs)} labels (one per unit), got {len(names)}")
    fig = Figure(figsize=(7.5, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    styles = ("-", "--", ":", "-.")
    gain_range = [np.inf, -np.inf]
    for k, r in enumerate(group):
        omega = np.asarray(r.omegas, dtype=np.float64)
        for c, (l, j) in enumerate(pairs):
            gain = np.asarray(r.unit_gain[l, :, j], dtype=np.float64)
            phase = np.asarray(r.unit_phase[l, :, j], dtype=np.float64)
            shown = 20 * np.log10(gain) if db else gain
            style = dict(color=f"C{c % 10}", ls=styles[k % 4], lw=1.4, zorder=2 + k)
            top.plot(omega, shown, **style)
            bottom.plot(omega, phase, **style)
            finite = gain[np.isfinite(gain) & (gain > 0)]
            if finite.size:
                gain_range = [min(gain_range[0], finite.min()), max(gain_range[1], finite.max())]
    top.set_xscale("log")
    if not db:
        top.set_yscale("log")
        if np.isfinite(gain_range[0]):
            readable_log_axis(top.yaxis, *_positive_limits(top, "y"))
    readable_log_axis(bottom.xaxis, *_positive_limits(bottom, "x"))
    pi_axis(bottom.yaxis, *_positive_limits(bottom, "y"))
    top.set_ylabel(r"gain $|H\,e|$ (dB)" if db else r"gain $|H\,e|$")
    bottom.set_ylabel(r"phase $\arg(H\,e)$ (rad)")
    bottom.set_xlabel(_OMEGA_LABEL)
    top.set_title("Bode plot: gain and phase of the response to sin(ωt) along e", fontsize="medium")
    bottom.set_title("phase: output ∝ sin(ωt + phase)", fontsize="small")
    handles = [Line2D([], [], color=f"C{c % 10}", lw=2, label=n) for c, n in enumerate(names)]
    handles += [
        Line2D([], [], color="0.3", ls=styles[k % 4], label=r.source) for k, r in enumerate(group)
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around the grid values: midpoints inside, half a step beyond the ends."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _boundary_segments(
    values: np.ndarray, level: float, p_edges: np.ndarray, q_edges: np.ndarray
) -> list:
    """Cell edges between neighbouring cells on different sides of ``level`` (> level: unstable):
    the boundary drawn along the grid, so it never cuts a cell."""
    unstable = values > level
    finite = np.isfinite(values)
    segments = []
    rows, cols = values.shape
    for i in range(rows):
        for j in range(cols - 1):
            if finite[i, j] and finite[i, j + 1] and unstable[i, j] != unstable[i, j + 1]:
                x = q_edges[j + 1]
                segments.append([(x, p_edges[i]), (x, p_edges[i + 1])])
    for i in range(rows - 1):
        for j in range(cols):
            if finite[i, j] and finite[i + 1, j] and unstable[i, j] != unstable[i + 1, j]:
                y = p_edges[i + 1]
                segments.append([(q_edges[j], y), (q_edges[j + 1], y)])
    return segments


_MAP_PANELS = {
    "max_real": (
        0.0,
        None,
        r"max Re $\lambda(J)$: continuous-time stack (ODE)",
        r"max Re $\lambda$ (0: boundary)",
    ),
    "spectral_radius": (
        1.0,
        0.0,
        "spectral radius of the {method} step map, Δt = {dt:g}",
        r"spectral radius $\rho$ (1: boundary)",
    ),
}


def plot_stability_map(
    smap: StabilityMap,
    *,
    p_label: str = "p",
    q_label: str = "q",
    panels: Sequence[str] = ("max_real", "spectral_radius"),
) -> Figure:
    """The stability map's panels: max Re lambda(J) (boundary 0) and the step map's spectral
    radius (boundary 1), each a grid of cells centred on the parameter values.

    Each panel's diverging colour map (``TwoSlopeNorm``) is white on its stability boundary,
    blue on the stable side and red on the unstable side, with round limits: the boundary -+ the
    largest distance from it rounded up (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten), the
    spectral radius never below 0; the colour bar's ticks are round numbers with the boundary
    among them. A map stable everywhere is blue everywhere. The boundary is drawn in black
    along the cell edges between a stable and an unstable neighbour (cells where Newton did not
    converge, NaN, are grey and take no part), so on a coarse grid it never cuts a cell.

    Arguments:
        smap: a ``StabilityMap`` (tensors or numpy arrays).
        p_label, q_label: axis labels of the two parameters (p on the vertical axis).
        panels: which maps to draw, in order: ``"max_real"`` and/or ``"spectral_radius"``
            (one of them, for figures that show the continuous-time panel once).

    Returns:
        Figure with one ``QuadMesh`` axes per panel (the values as given, cells centred on the
        grid), its colour bar, and the boundary as a ``LineCollection`` when it crosses the map.
    """
    chosen = list(panels)
    if not chosen or any(k not in _MAP_PANELS for k in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"panels: expected distinct names among {tuple(_MAP_PANELS)}, got {tuple(chosen)}"
        )
    p, q = (np.asarray(v, dtype=np.float64) for v in (smap.p, smap.q))
    p_edges, q_edges = _edges(p), _edges(q)
    fig = Figure(figsize=(5.5 * len(chosen), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(chosen)))
    for ax, key in zip(axes, chosen, strict=True):
        level, floor, title, bar_label = _MAP_PANELS[key]
        values = np.asarray(getattr(smap, key), dtype=np.float64)
        low, high = centred_limits(values, level, floor)
        norm = TwoSlopeNorm(vcenter=level, vmin=low, vmax=high)
        cmap = colormaps["RdBu_r"].with_extremes(bad="0.75")
        mesh = ax.pcolormesh(q_edges, p_edges, values, cmap=cmap, norm=norm)
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(bar_label)
        bar.set_ticks(round_ticks(low, high, level))
        segments = _boundary_segments(values, level, p_edges, q_edges)
        if segments:
            ax.add_collection(LineCollection(segments, colors="k", linewidths=1.5))
        ax.set_title(title.format(method=smap.method, dt=smap.dt), fontsize="medium")
        ax.set_xlabel(q_label)
        ax.set_ylabel(p_label)
    fig.suptitle(
        "Local stability of the fixed point:"
        + ("\n" if len(chosen) == 1 else " ")
        + "blue stable, red unstable, black line on the boundary",
        fontsize="medium",
    )
    return fig


def plot_eigenvalues(
    eigvals: ArrayLike,
    *,
    kind: str = "continuous",
    dt: float | None = None,
    methods: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
) -> Figure:
    """Eigenvalues in the complex plane against the stability boundary of their kind.

    ``kind="continuous"``: eigenvalues lambda of a continuous-time Jacobian J = dF/dh, drawn
    as dt * lambda with the imaginary axis (the boundary: Re lambda < 0 is stable) and, for each
    of ``methods`` (default Euler and RK4), the boundary |R(z)| = 1 of the step's stability
    region {z: |R(z)| <= 1} (Euler: the disc |1 + z| <= 1): a step dt is stable where every
    dt * lambda lies inside the method's region.

    ``kind="discrete"``: multipliers mu of a discrete map's Jacobian (a step map, a torch RNN)
    with the unit circle |mu| = 1 (the boundary: |mu| < 1 is stable); no dt, no methods.

    Arguments:
        eigvals: (..., n) complex eigenvalues (``eigenvalues``), or a sequence of such arrays
            (one colour each, e.g. one per layer).
        kind: ``"continuous"`` or ``"discrete"``.
        dt: continuous only: the step size that scales them (default 1).
        methods: continuous only: keys of ``STEP_POLYNOMIALS`` whose regions are drawn
            (default ``("euler", "rk4")``; ``()`` for none).
        labels: one legend label per group (default: "eigenvalues" for one group, else
            "layer 1", "layer 2", ...).

    Returns:
        Figure with one equal-aspect axes; the legend (outside) names the groups under a
        title saying what the points are, then the boundaries.
    """
    if kind not in ("continuous", "discrete"):
        raise ValueError(f"kind: expected 'continuous' or 'discrete', got {kind!r}")
    if kind == "discrete" and (dt is not None or methods):
        raise ValueError(
            "dt, methods: a discrete map's multipliers are read against the unit circle "
            f"unscaled; expected neither, got dt={dt!r}, methods={methods!r}"
        )
    dt = 1.0 if dt is None else dt
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < np.inf:
        raise ValueError(f"dt: expected a positive finite step, got {dt!r}")
    methods = () if kind == "discrete" else ("euler", "rk4") if methods is None else methods
    for m in methods:
        if m not in STEP_POLYNOMIALS:
            raise ValueError(f"methods: expected keys of {tuple(STEP_POLYNOMIALS)}, got {m!r}")
    given = list(eigvals) if isinstance(eigvals, (list, tuple)) else [eigvals]
    groups = [np.asarray(g).astype(np.complex128).ravel() * dt for g in given]
    if labels is None:
        names = (
            ["eigenvalues"] if len(groups) == 1 else [f"layer {i + 1}" for i in range(len(groups))]
        )
    else:
        names = list(labels)
    if len(names) != len(groups):
        raise ValueError(f"labels: expected {len(groups)} labels, got {len(names)}")
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    points = np.concatenate(groups) if groups else np.zeros(0)
    floor = 3.2 if kind == "continuous" else 1.3
    reach = max(floor, 1.1 * float(np.abs(points).max()) if points.size else 0.0)
    handles = []
    for k, (g, name) in enumerate(zip(groups, names, strict=True)):
        (line,) = ax.plot(g.real, g.imag, "o", color=f"C{k}", markersize=4, zorder=4, label=name)
        handles.append(line)
    if kind == "continuous":
        grid = np.linspace(-reach, reach, 401)
        zr, zi = np.meshgrid(grid, grid)
        z = zr + 1j * zi
        styles = ("-", "--", "-.", ":")
        for k, m in enumerate(methods):
            value = np.zeros_like(z)
            for c in reversed(STEP_POLYNOMIALS[m]):
                value = value * z + c
            color, style = f"C{k + 3}", styles[k % 4]
            ax.contour(zr, zi, np.abs(value), levels=[1.0], colors=color, linestyles=style)
            handles.append(Line2D([], [], ls=style, color=color, label=f"{m} step: |R(Δt λ)| = 1"))
        handles.append(ax.axvline(0.0, color="k", lw=0.8, label="stability boundary Re λ = 0"))
        ax.set_xlabel(r"$\mathrm{Re}(\Delta t\,\lambda)$")
        ax.set_ylabel(r"$\mathrm{Im}(\Delta t\,\lambda)$")
        what = r"eigenvalues $\Delta t\,\lambda$ of J"
        title = f"Eigenvalues of the continuous-time Jacobian J times Δt = {dt:g}"
        if methods:
            title += "\nand the step methods' stability regions"
    else:
        theta = np.linspace(0, 2 * np.pi, 361)
        (circle,) = ax.plot(
            np.cos(theta), np.sin(theta), color="k", lw=0.8, label="stability boundary |μ| = 1"
        )
        handles.append(circle)
        ax.axhline(0.0, color="0.8", lw=0.5, zorder=0)
        ax.axvline(0.0, color="0.8", lw=0.5, zorder=0)
        ax.set_xlabel(r"$\mathrm{Re}\,\mu$")
        ax.set_ylabel(r"$\mathrm{Im}\,\mu$")
        what = r"multipliers $\mu$ of the map"
        title = "Multipliers of the discrete map's Jacobian\nagainst the unit circle"
    ax.set_aspect("equal")
    ax.set_anchor("E")  # beside the legend: centred, the square can push its labels off the page
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_title(title, fontsize="medium")
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", title=what)
    return fig


_CLASS_STYLE = {
    "stable": ("o", "tab:blue"),
    "saddle": ("X", "tab:orange"),
    "unstable": ("^", "tab:red"),
    "non-hyperbolic": ("D", "tab:purple"),
}


def plot_fixed_points(
    fixed_points: Any,
    trajectories: ArrayLike,
    *,
    num_components: int = 3,
    title: str | None = None,
) -> Figure:
    """Fixed (and slow) points by stability class in the top principal components of the
    trajectories that they organise (Sussillo & Barak 2013's picture).

    The principal axes are those of the trajectories' states (centred by their mean;
    ``numpy.linalg.svd``), each axis signed so that its largest loading is positive; the points
    are projected on them. Classes (``FixedPoints.classification``): stable (blue circles),
    saddle (orange crosses), unstable (red triangles), non-hyperbolic (purple diamonds: an
    eigenvalue on the stability boundary); slow points (``is_fixed`` False) hollow.

    Arguments:
        fixed_points: a ``FixedPoints`` (``find_fixed_points``): ``points`` (K, ...) and
            ``classification`` (K labels); ``is_fixed`` (K,) used when present.
        trajectories: (B, T, ...) or (T, ...) states over time, the trailing dimensions those
            of one point (e.g. (num_layers, state_size)), or flattened to their product.
        num_components: 2 or 3 (a 3-D axes).
        title: the figure's title (default says what is shown).

    Returns:
        Figure with one axes (3-D for 3 components) labelled "PC 1 (x%)", ... (x: the share
        of the trajectories' variance along the axis):
        first the B trajectories (thin grey lines), then one marker line per class present
        (fixed points, then slow points), legend outside with the counts.
    """
    for attribute in ("points", "classification"):
        if not hasattr(fixed_points, attribute):
            raise TypeError(
                "fixed_points: expected a FixedPoints (points, classification), got "
                f"{type(fixed_points).__name__}"
            )
    if num_components not in (2, 3) or isinstance(num_components, bool):
        raise ValueError(f"num_components: expected 2 or 3, got {num_components!r}")
    points = np.asarray(fixed_points.points, dtype=np.float64)
    classes = list(fixed_points.classification)
    if points.ndim < 2 or len(classes) != points.shape[0]:
        raise ValueError(
            f"fixed_points: expected points (K, ...) with K classes, got points "
            f"{points.shape} and {len(classes)} classes"
        )
    unknown = sorted(set(classes) - set(_CLASS_STYLE))
    if unknown:
        raise ValueError(
            f"fixed_points: expected classes among {tuple(_CLASS_STYLE)}, got {unknown}"
        )
    n = int(np.prod(points.shape[1:]))
    points = points.reshape(points.shape[0], n)
    is_fixed = np.asarray(getattr(fixed_points, "is_fixed", np.ones(len(classes), bool)), bool)
    paths = np.asarray(trajectories, dtype=np.float64)
    shape = tuple(np.asarray(fixed_points.points).shape[1:])
    if paths.ndim > len(shape) and paths.shape[-len(shape) :] == shape:
        lead = paths.shape[: -len(shape)]
    elif paths.ndim > 1 and paths.shape[-1] == n:
        lead = paths.shape[:-1]
    else:
        raise ValueError(
            f"trajectories: expected shape (B, T, ...) or (T, ...) with trailing {shape} or "
            f"({n},), got {paths.shape}"
        )
    if len(lead) not in (1, 2) or not np.isfinite(paths).all():
        raise ValueError(
            f"trajectories: expected finite states of shape (B, T, ...) or (T, ...), got "
            f"{paths.shape}"
        )
    paths = paths.reshape(-1 if len(lead) == 2 else 1, lead[-1], n)
    flat = paths.reshape(-1, n)
    if n < num_components or flat.shape[0] < 2:
        raise ValueError(
            f"trajectories: expected at least 2 states of dimension >= num_components = "
            f"{num_components}, got {flat.shape[0]} of dimension {n}"
        )
    mean = flat.mean(0)
    _, sv, vt = np.linalg.svd(flat - mean, full_matrices=False)
    axes_ = vt[:num_components]
    signs = np.sign(axes_[np.arange(num_components), np.abs(axes_).argmax(1)])
    axes_ = axes_ * signs[:, None]
    share = sv[:num_components] ** 2 / max(float((sv**2).sum()), np.finfo(float).tiny)
    project = lambda v: (v - mean) @ axes_.T  # noqa: E731
    three = num_components == 3
    fig = Figure(figsize=(7, 5.5) if three else (7, 4.5), layout="constrained")
    ax = fig.add_subplot(projection="3d") if three else fig.add_subplot()
    for path in paths:
        ax.plot(*project(path).T, color="0.6", lw=0.6, alpha=0.8)
    handles = [Line2D([], [], color="0.6", lw=0.8, label=f"trajectories ({paths.shape[0]})")]
    coords = project(points)
    for fixed in (True, False):
        for name, (marker, color) in _CLASS_STYLE.items():
            mask = np.array([c == name for c in classes]) & (is_fixed == fixed)
            if not mask.any():
                continue
            what = "fixed point" if fixed else "slow point"
            (line,) = ax.plot(
                *coords[mask].T,
                marker,
                ls="none",
                markersize=7,
                color=color,
                markerfacecolor=color if fixed else "none",
                markeredgecolor=color if fixed else color,
                zorder=5,
                label=f"{name} {what} ({int(mask.sum())})",
            )
            handles.append(line)
    setters = [ax.set_xlabel, ax.set_ylabel]
    if isinstance(ax, Axes3D):  # three components
        setters.append(ax.set_zlabel)
    for k, setter in enumerate(setters):
        setter(f"PC {k + 1} ({100 * share[k]:.0f}%)")
    if isinstance(ax, Axes3D):
        ax.set_box_aspect(None, zoom=0.9)
    kind = getattr(fixed_points, "kind", None)
    default = (
        "Fixed points by stability in the trajectories' principal components\n"
        "(axes: PC k and its share of the variance)"
    )
    if kind is not None:
        default = default.replace("\n(", f"\n({kind}-time dynamics; ")
    ax.set_title(default if title is None else title, fontsize="medium")
    fig.legend(handles=handles, loc="outside right upper", fontsize="small")
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
        Figure with one image axes (and its colour bar); the image holds the plotted values;
        the layer axis has integer ticks 1..num_layers at the rows' centres.
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
    ticks = integer_ticks(values.shape[0])
    ax.set_yticks(ticks, [str(v) for v in ticks])
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
