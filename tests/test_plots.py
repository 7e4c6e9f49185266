"""analysis.plots: every figure holds the data it was given (lines, meshes, contours), with the
labels, ticks, legend entries and colour limits a reader needs; matplotlib objects, not pixels,
on the headless Agg canvas."""

import dataclasses
import re
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, QuadMesh
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from rnnode.analysis import StabilityMap, frequency_response
from rnnode.analysis.depth import accuracy_model, sweet_spot
from rnnode.analysis.plots import (
    plot_bode,
    plot_depth_curve,
    plot_eigenvalues,
    plot_fixed_points,
    plot_gain,
    plot_gradient_norms,
    plot_stability_map,
)


def _drawn(fig):
    """Lay the figure out and draw it on the Agg canvas (ticks and labels are final then)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _visible_tick_labels(axis, which="major"):
    low, high = sorted(axis.get_view_interval())
    ticks = axis.get_major_ticks() if which == "major" else axis.get_minor_ticks()
    return [
        (t.get_loc(), t.label1.get_text())
        for t in ticks
        if t.label1.get_visible() and low <= t.get_loc() <= high
    ]


def test_gain_figure_has_one_measured_and_one_theory_line_per_layer():
    omegas = np.linspace(0.1, 3.0, 9)
    gains = np.vstack([1 / (1.1 - np.cos(omegas)), 2 + np.sin(omegas), np.full(9, 0.5)])
    fine = np.linspace(0.1, 3.0, 50)
    theory = np.vstack([1 / (1.1 - np.cos(fine)), 2 + np.sin(fine), np.full(50, 0.5)])
    fig = plot_gain(omegas, gains, theory, theory_omegas=fine)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 6
    for l in range(3):
        np.testing.assert_array_equal(lines[l].get_xdata(), omegas)
        np.testing.assert_array_equal(lines[l].get_ydata(), gains[l])
        np.testing.assert_array_equal(lines[3 + l].get_xdata(), fine)
        np.testing.assert_array_equal(lines[3 + l].get_ydata(), theory[l])
        assert lines[3 + l].get_linestyle() == "--"
        assert lines[l].get_color() == lines[3 + l].get_color()  # same colour per layer
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    assert all(line.get_zorder() > lines[0].get_zorder() for line in lines[3:])  # theory on top
    assert ax.get_legend() is None  # the legend sits outside the axes, on the figure
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        f"layer {l} ({what})" for what in ("measured (sine probe)", "linearised") for l in (1, 2, 3)
    ]
    assert "linearised: dashed, drawn on top" in ax.get_title()
    assert ax.get_xlabel() == r"frequency $\omega$ (rad / unit time)"


def test_gain_figure_labels_curves_by_their_source():
    # The linearised frequency_response drawn alone is labelled linearised, not "measured".
    fig = plot_gain([0.5, 1.0], [[1.0, 2.0]], labels=["slow"], source="linearised")
    (line,) = fig.axes[0].get_lines()
    assert line.get_label() == "slow (linearised)"
    fig = plot_gain([0.5, 1.0], [[1.0, 2.0]], [[1.0, 2.0]], theory_source="closed form")
    assert [l.get_label() for l in fig.axes[0].get_lines()] == [
        "layer 1 (measured (sine probe))",
        "layer 1 (closed form)",
    ]


_PLAIN = re.compile(r"^-?\d+(\.\d+)?$")


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.8, 1.1), (0.45, 0.85), (0.05, 3.0), (1e-3, 50.0), (1.01, 1.05)],
)
def test_gain_axes_are_labelled_in_plain_numbers_never_on_minor_ticks(low, high):
    # The issue: a gain axis inside one decade read "8x10^-1"; minor ticks now carry no label,
    # and at least two major ticks in view carry plain decimals that equal their positions.
    omegas = np.geomspace(0.05, 3.0, 12)
    gains = np.geomspace(low, high, 12)[None]
    fig = plot_gain(omegas, gains)
    _drawn(fig)
    ax = fig.axes[0]
    for axis in (ax.xaxis, ax.yaxis):
        assert all(text == "" for _, text in _visible_tick_labels(axis, "minor"))
        major = _visible_tick_labels(axis)
        assert len(major) >= 2
        for loc, text in major:
            assert _PLAIN.match(text), text
            assert float(text) == pytest.approx(loc, rel=1e-9)


def _map():
    p = np.linspace(0.5, 3.0, 6)
    q = np.linspace(-1.0, 1.0, 5)
    max_real = (p[:, None] - 1.5) + 0.1 * q  # zero crossing inside the grid
    radius = 1 + 0.5 * max_real
    return StabilityMap(
        p=p,
        q=q,
        max_real=max_real,
        spectral_radius=radius,
        fixed_points=np.zeros((6, 5, 1, 2)),
        converged=np.ones((6, 5), dtype=bool),
        method="rk4",
        dt=0.5,
    )


def _mesh(ax):
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return mesh


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_xlabel() and ax.get_ylabel() and ax.collections]


def _sign_changes(values, level):
    up = values > level
    return int((up[:, 1:] != up[:, :-1]).sum() + (up[1:] != up[:-1]).sum())


def test_stability_map_figure_shows_both_maps_cells_and_boundaries():
    smap = _map()
    fig = plot_stability_map(smap, p_label="weight scale", q_label="input")
    panels = _panels(fig)
    assert len(panels) == 2
    for ax, values, level in zip(
        panels, (smap.max_real, smap.spectral_radius), (0.0, 1.0), strict=True
    ):
        mesh = _mesh(ax)
        np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(6, 5), values)
        # Cells centred on the grid values: edges at the midpoints, half a step beyond the ends.
        corners = mesh.get_coordinates()
        np.testing.assert_allclose(corners[0, :, 0], np.linspace(-1.25, 1.25, 6))
        np.testing.assert_allclose(corners[:, 0, 1], np.linspace(0.25, 3.25, 7))
        (boundary,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        segments = boundary.get_segments()
        assert len(segments) == _sign_changes(values, level)
        for seg in segments:  # every piece lies on a cell edge: it never cuts a cell
            x, y = seg[:, 0], seg[:, 1]
            vertical = x[0] == x[1]
            on = x[0] if vertical else y[0]
            edges = corners[0, :, 0] if vertical else corners[:, 0, 1]
            assert np.isclose(edges, on).any()
        assert ax.get_ylabel() == "weight scale" and ax.get_xlabel() == "input"
    assert "rk4" in panels[1].get_title() and "Δt = 0.5" in panels[1].get_title()
    for ax, level in zip(panels, (0.0, 1.0), strict=True):
        norm = _mesh(ax).norm
        assert norm.vcenter == level  # white on the stability boundary
        assert norm.vmin < level < norm.vmax


def _round(value):
    """A number written with at most 3 significant digits (0.5, 1.25, 2, -1.5)."""
    return value == 0 or abs(float(f"{value:.3g}") - value) < 1e-12 * max(1.0, abs(value))


def test_stability_map_colour_bars_have_round_limits_and_ticks_on_the_right_side_of_zero():
    # The map: the spectral radius ran from -0.534 with ticks at 0.562 and 2.534.
    smap = _map()
    smap.max_real = np.linspace(-1.256, 1.534, 30).reshape(6, 5)
    smap.spectral_radius = np.linspace(0.17, 2.534, 30).reshape(6, 5)
    fig = plot_stability_map(smap)
    _drawn(fig)
    left, right = _panels(fig)
    expected = {id(left): (-2.0, 2.0, 0.0), id(right): (0.0, 3.0, 1.0)}
    for ax in (left, right):
        norm = _mesh(ax).norm
        low, high, level = expected[id(ax)]
        assert (norm.vmin, norm.vcenter, norm.vmax) == (low, level, high)
        bar = _mesh(ax).colorbar.ax
        ticks = bar.get_yticks()
        shown = ticks[(ticks >= low - 1e-12) & (ticks <= high + 1e-12)]
        assert level in shown and len(shown) >= 3
        assert all(_round(t) for t in shown)
        assert shown.min() >= 0 if ax is right else True  # a spectral radius is never negative
        assert bar.get_ylabel().endswith("boundary)")


def test_stability_map_figure_without_a_boundary_has_no_boundary_line():
    smap = _map()
    smap.max_real = -np.abs(smap.max_real) - 1  # everywhere stable
    fig = plot_stability_map(smap)
    left = _panels(fig)[0]
    assert not [c for c in left.collections if isinstance(c, (LineCollection, ContourSet))]


def test_stability_map_can_show_one_panel_and_greys_unconverged_cells():
    smap = _map()
    smap.spectral_radius = smap.spectral_radius.copy()
    smap.spectral_radius[0, 0] = np.nan
    fig = plot_stability_map(smap, panels=("spectral_radius",))
    (ax,) = _panels(fig)
    assert "step map" in ax.get_title()
    mesh = _mesh(ax)
    assert np.allclose(mesh.cmap.get_bad(), (0.75, 0.75, 0.75, 1.0))
    (boundary,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    finite = np.where(np.isnan(smap.spectral_radius), 1e9, smap.spectral_radius)
    # The NaN cell takes no part: its two neighbours' edges are not drawn.
    assert len(boundary.get_segments()) <= _sign_changes(finite, 1.0)
    with pytest.raises(ValueError, match="panels: expected distinct names"):
        plot_stability_map(smap, panels=("ode",))


def test_an_everywhere_stable_map_is_drawn_on_the_stable_side_of_the_colour_map():
    # The case: max Re lambda from -0.41 to -0.03 was drawn deep red at the top.
    smap = _map()
    smap.max_real = np.linspace(-0.41, -0.03, 30).reshape(6, 5)
    smap.spectral_radius = 1.015 + 0 * smap.max_real  # just unstable: barely red
    fig = plot_stability_map(smap)
    left, right = _panels(fig)
    mesh = _mesh(left)
    rgba = mesh.cmap(mesh.norm(smap.max_real))
    assert np.all(rgba[..., 2] >= rgba[..., 0])  # blue at least as strong as red: stable
    assert mesh.norm.vcenter == 0.0 and mesh.norm.vmax == 0.5
    red = _mesh(right)
    value = red.norm(np.array([1.015]))[0]
    assert 0.5 < value <= 1.0  # on the unstable side of the centred map


def test_gradient_heat_map_holds_log_norms_layers_by_time():
    norms = np.outer([1.0, 0.1, 0.01], 2.0 ** -np.arange(7))
    fig = plot_gradient_norms(norms)
    ax = fig.axes[0]
    (image,) = ax.get_images()
    np.testing.assert_allclose(np.asarray(image.get_array()), np.log10(norms), rtol=1e-14)
    assert ax.get_ylabel() == "layer" and ax.get_xlabel() == "time"
    raw = plot_gradient_norms(norms, log=False).axes[0].get_images()[0]
    np.testing.assert_array_equal(np.asarray(raw.get_array()), norms)


@pytest.mark.parametrize(("layers", "expected"), [(3, [1, 2, 3]), (24, [1, 5, 10, 15, 20])])
def test_gradient_heat_map_has_integer_layer_ticks_at_the_rows(layers, expected):
    # The issue: layer ticks at 0.5, 1.5, ...; row l spans (l - 0.5, l + 0.5).
    fig = plot_gradient_norms(np.ones((layers, 5)))
    _drawn(fig)
    ax = fig.axes[0]
    assert list(ax.get_yticks()) == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(v) for v in expected]
    assert ax.get_ylim() == (0.5, layers + 0.5)


def test_depth_curve_shows_data_fit_and_sweet_spot():
    params = dict(a_min=0.1, a_max=0.9, b=0.4, m=0.93)
    depths = np.arange(1, 21)
    acc = accuracy_model(depths, **params)
    fig = plot_depth_curve(depths, acc, params, num_points=101)
    ax = fig.axes[0]
    data, curve, star = ax.get_lines()
    np.testing.assert_array_equal(data.get_xdata(), depths)
    np.testing.assert_array_equal(data.get_ydata(), acc)
    np.testing.assert_allclose(curve.get_ydata(), accuracy_model(curve.get_xdata(), **params))
    assert len(curve.get_xdata()) == 101
    expected = float(sweet_spot(0.4, 0.93))
    np.testing.assert_allclose(star.get_xdata(), [expected, expected])


def test_continuous_eigenvalue_plot_shows_points_axis_and_step_regions_not_the_unit_circle():
    eig = np.array([-0.5 + 0.5j, -0.5 - 0.5j, -2.2 + 0j])
    fig = plot_eigenvalues([eig, np.array([0.1j])], dt=0.5)
    (ax,) = fig.axes
    points = [line for line in ax.get_lines() if line.get_label().startswith("layer")]
    np.testing.assert_allclose(points[0].get_xdata(), 0.5 * eig.real)
    np.testing.assert_allclose(points[0].get_ydata(), 0.5 * eig.imag)
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 2 and all(list(c.levels) == [1.0] for c in contours)
    # The Euler boundary is the circle |1 + z| = 1.
    euler = contours[0].allsegs[0][0]
    np.testing.assert_allclose(np.abs(euler[:, 0] + 1j * euler[:, 1] + 1), 1.0, atol=2e-3)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "layer 1",
        "layer 2",
        "euler step: |R(Δt λ)| = 1",
        "rk4 step: |R(Δt λ)| = 1",
        "stability boundary Re λ = 0",
    ]
    assert legend.get_title().get_text() == r"eigenvalues $\Delta t\,\lambda$ of J"
    # No unit circle for a continuous-time Jacobian: no line of radius 1 about the origin.
    for line in ax.get_lines():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        assert not (x.size > 10 and np.allclose(np.hypot(x, y), 1.0))
    assert ax.get_xlabel() == r"$\mathrm{Re}(\Delta t\,\lambda)$"
    assert ax.get_ylabel() == r"$\mathrm{Im}(\Delta t\,\lambda)$"
    assert "lambda" not in " ".join([ax.get_title(), *[t.get_text() for t in legend.get_texts()]])


def test_discrete_eigenvalue_plot_shows_multipliers_against_the_unit_circle_only():
    mu = np.array([0.5 + 0.5j, 0.5 - 0.5j, -1.2])
    fig = plot_eigenvalues(mu, kind="discrete")
    (ax,) = fig.axes
    assert not [c for c in ax.collections if isinstance(c, ContourSet)]  # no step regions
    (points,) = [line for line in ax.get_lines() if line.get_label() == "eigenvalues"]
    np.testing.assert_array_equal(points.get_xdata(), mu.real)  # unscaled
    (circle,) = [line for line in ax.get_lines() if "|μ| = 1" in line.get_label()]
    np.testing.assert_allclose(np.hypot(circle.get_xdata(), circle.get_ydata()), 1.0, atol=1e-15)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "eigenvalues",
        "stability boundary |μ| = 1",
    ]
    assert legend.get_title().get_text() == r"multipliers $\mu$ of the map"
    assert ax.get_xlabel() == r"$\mathrm{Re}\,\mu$"
    assert ax.get_xlim() == pytest.approx((-1.32, 1.32))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "discrete", "dt": 0.5}, "dt, methods"),
        ({"kind": "discrete", "methods": ("euler",)}, "dt, methods"),
        ({"kind": "z"}, "kind: expected"),
        ({"methods": ("leapfrog",)}, "methods: expected keys"),
        ({"dt": -1.0}, "dt: expected a positive"),
        ({"labels": ["a", "b"]}, "labels: expected 1"),
    ],
)
def test_eigenvalue_plot_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_eigenvalues(np.array([0.1j]), **kwargs)


def _responses():
    # A chain of two scalar lags (continuous): layer 1 = 1 / (s + 1), layer 2 = layer 1 / (s + 2).
    A = np.array([[-1.0, 0.0], [1.0, -2.0]])
    omegas = np.geomspace(0.01, 50.0, 40)
    linear = frequency_response((A, np.eye(2)[:, :1], np.eye(2), None), omegas, kind="continuous")
    measured = dataclasses.replace(
        linear, unit_gain=linear.unit_gain * 1.01, source="measured (sine probe)"
    )
    return omegas, measured, linear


def test_bode_plot_draws_gain_and_unwrapped_phase_per_unit_and_response():
    omegas, measured, linear = _responses()
    fig = plot_bode([measured, linear])
    _drawn(fig)
    top, bottom = fig.axes
    gains, phases = top.get_lines(), bottom.get_lines()
    assert len(gains) == len(phases) == 4  # 2 responses x 2 layers
    for k, r in enumerate((measured, linear)):
        for l in range(2):
            line = gains[2 * k + l]
            np.testing.assert_array_equal(line.get_xdata(), omegas)
            np.testing.assert_array_equal(line.get_ydata(), r.unit_gain[l, :, 0].numpy())
            np.testing.assert_array_equal(phases[2 * k + l].get_ydata(), r.unit_phase[l, :, 0])
            assert line.get_linestyle() == ("-" if k == 0 else "--")
            assert line.get_color() == f"C{l}" and phases[2 * k + l].get_color() == f"C{l}"
    # Layer 2's phase runs to -arctan(50) - arctan(25) < -pi/2 - ..., continuously.
    np.testing.assert_allclose(
        phases[3].get_ydata(), -np.arctan(omegas) - np.arctan(omegas / 2), atol=1e-12
    )
    assert top.get_xscale() == bottom.get_xscale() == "log" and top.get_yscale() == "log"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "layer 1",
        "layer 2",
        "measured (sine probe)",
        "linearised",
    ]
    assert bottom.get_xlabel() == r"frequency $\omega$ (rad / unit time)"
    assert top.get_ylabel() == r"gain $|H\,e|$" and "phase" in bottom.get_ylabel()
    # Phase ticks: multiples of pi / 4 written with pi.
    written = {
        0: "0",
        -1: r"$-\pi/4$",
        -2: r"$-\pi/2$",
        -3: r"$-3\pi/4$",
        -4: r"$-\pi$",
        -6: r"$-3\pi/2$",
    }
    labels = _visible_tick_labels(bottom.yaxis)
    assert len(labels) >= 3
    for loc, text in labels:
        quarter = loc / (np.pi / 4)
        assert quarter == pytest.approx(round(quarter), abs=1e-9)
        assert text == written[round(quarter)]
    for _, text in _visible_tick_labels(top.yaxis):  # 8e-4 to 1: decades, plain decimals
        assert _PLAIN.match(text), text
    assert all(text == "" for _, text in _visible_tick_labels(top.yaxis, "minor"))


def test_bode_plot_in_decibels_and_chosen_units():
    _, _, linear = _responses()
    fig = plot_bode(linear, units=[(1, 0)], labels=["deep lag"], db=True)
    top, _ = fig.axes
    (line,) = top.get_lines()
    np.testing.assert_allclose(line.get_ydata(), 20 * np.log10(linear.unit_gain[1, :, 0].numpy()))
    assert top.get_yscale() == "linear" and top.get_ylabel() == r"gain $|H\,e|$ (dB)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["deep lag", "linearised"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: plot_bode([]), ValueError, "responses: expected at least one"),
        (lambda r: plot_bode([r, "x"]), TypeError, "responses: expected FrequencyResponse"),
        (lambda r: plot_bode(r, units=[(2, 0)]), ValueError, "units: expected"),
        (lambda r: plot_bode(r, labels=["a"]), ValueError, "labels: expected 2"),
    ],
)
def test_bode_plot_bad_arguments(call, error, match):
    _, _, linear = _responses()
    with pytest.raises(error, match=match):
        call(linear)


def _fixed_points(seed=0):
    """Trajectories in 6-D (2 layers x 3 states) that settle on 3 points; classes given."""
    rng = np.random.default_rng(seed)
    ends = rng.standard_normal((3, 6)) * [3.0, 2.0, 1.0, 0.3, 0.2, 0.1]
    t = np.linspace(0, 1, 25)[None, :, None]
    starts = rng.standard_normal((5, 1, 6))
    paths = starts + (ends[np.arange(5) % 3][:, None] - starts) * (1 - np.exp(-4 * t))
    points = SimpleNamespace(
        points=np.vstack([ends, ends[:1] + 0.5]).reshape(4, 2, 3),
        classification=["stable", "stable", "saddle", "unstable"],
        is_fixed=np.array([True, True, True, False]),
        kind="continuous",
    )
    return points, paths.reshape(5, 25, 2, 3)


@pytest.mark.parametrize("components", [2, 3])
def test_fixed_point_plot_projects_on_the_trajectories_principal_components(components):
    from sklearn.decomposition import PCA

    fp, paths = _fixed_points()
    fig = plot_fixed_points(fp, paths, num_components=components)
    _drawn(fig)
    (ax,) = fig.axes
    pca = PCA(components).fit(paths.reshape(-1, 6))
    expected = pca.transform(fp.points.reshape(4, 6))
    lines = ax.get_lines()
    assert len(lines) == 5 + 3  # 5 trajectories, then stable, saddle (fixed), unstable (slow)

    def coords(line):
        return np.column_stack(line.get_data_3d() if components == 3 else line.get_data())

    np.testing.assert_allclose(
        np.abs(coords(lines[0])), np.abs(pca.transform(paths[0].reshape(25, 6))), atol=1e-12
    )
    for line, rows in zip(lines[5:], ([0, 1], [2], [3]), strict=True):
        np.testing.assert_allclose(np.abs(coords(line)), np.abs(expected[rows]), atol=1e-12)
    labels = [ax.get_xlabel(), ax.get_ylabel()] + ([ax.get_zlabel()] if components == 3 else [])
    for k, (label, share) in enumerate(zip(labels, pca.explained_variance_ratio_, strict=True)):
        assert label == f"PC {k + 1} ({100 * share:.0f}%)"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "trajectories (5)",
        "stable fixed point (2)",
        "saddle fixed point (1)",
        "unstable slow point (1)",
    ]
    assert lines[-1].get_markerfacecolor() == "none"  # slow points hollow
    assert "principal components" in ax.get_title()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda fp, x: plot_fixed_points(np.zeros((2, 6)), x), TypeError, "fixed_points"),
        (lambda fp, x: plot_fixed_points(fp, x, num_components=4), ValueError, "num_comp"),
        (lambda fp, x: plot_fixed_points(fp, x[..., :2]), ValueError, "trajectories: expected"),
        (
            lambda fp, x: plot_fixed_points(
                SimpleNamespace(points=fp.points, classification=["odd"] * 4), x
            ),
            ValueError,
            "classes among",
        ),
    ],
)
def test_fixed_point_plot_bad_arguments(call, error, match):
    fp, paths = _fixed_points()
    with pytest.raises(error, match=match):
        call(fp, paths)


def _figure(name):
    params = dict(a_min=0.1, a_max=0.9, b=0.4, m=0.93)
    depths = np.arange(1, 21)
    omegas = np.geomspace(0.05, 3.0, 9)
    gains = np.vstack([1 / (1.1 - np.cos(omegas)), 2 + np.sin(omegas)])
    builders = {
        "gain": lambda: plot_gain(omegas, gains, gains * 1.01, labels=["a long layer name", "b"]),
        "map": lambda: plot_stability_map(
            _map(), p_label="recurrent scale p", q_label="input level q"
        ),
        "eigenvalues": lambda: plot_eigenvalues(np.array([-0.5 + 1j, -1.0])),
        "multipliers": lambda: plot_eigenvalues(np.array([0.5 + 0.5j, -0.9]), kind="discrete"),
        "one_map": lambda: plot_stability_map(_map(), panels=("spectral_radius",)),
        "bode": lambda: plot_bode(list(_responses()[1:])),
        "fixed_points_3d": lambda: plot_fixed_points(*_fixed_points()),
        "fixed_points_2d": lambda: plot_fixed_points(*_fixed_points(), num_components=2),
        "gradients": lambda: plot_gradient_norms(np.outer([1.0, 0.1], 2.0 ** -np.arange(7))),
        "depth": lambda: plot_depth_curve(depths, accuracy_model(depths, **params), params),
    }
    return builders[name]()


@pytest.mark.parametrize(
    "name",
    [
        "gain",
        "map",
        "one_map",
        "eigenvalues",
        "multipliers",
        "gradients",
        "depth",
        "bode",
        "fixed_points_3d",
        "fixed_points_2d",
    ],
)
def test_nothing_is_clipped_and_every_axes_is_labelled(name, tmp_path):
    fig = _figure(name)
    canvas_agg = FigureCanvasAgg(fig)
    canvas_agg.draw()  # lays out with the figure's layout engine
    renderer = canvas_agg.get_renderer()
    canvas = fig.bbox
    extents = [ax.get_tightbbox(renderer) for ax in fig.axes]
    extents += [legend.get_window_extent(renderer) for legend in fig.legends]
    if fig._suptitle is not None:
        extents.append(fig._suptitle.get_window_extent(renderer))
    for box in extents:
        assert box.x0 >= canvas.x0 - 0.5 and box.y0 >= canvas.y0 - 0.5
        assert box.x1 <= canvas.x1 + 0.5 and box.y1 <= canvas.y1 + 0.5
    data_axes = [ax for ax in fig.axes if ax.get_xlabel() and ax.get_ylabel()]
    assert data_axes and all(ax.get_title() for ax in data_axes)
    colorbars = [ax for ax in fig.axes if ax not in data_axes]
    assert all(ax.get_ylabel() for ax in colorbars)  # every colour bar is labelled


def test_figures_save_headless(tmp_path):
    fig = plot_gain([0.5, 1.0], [[1.0, 2.0]])
    fig.savefig(tmp_path / "gain.png")
    assert (tmp_path / "gain.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: plot_gain([0.1, 0.2], [[1.0, 2.0, 3.0]]), "gains: expected shape"),
        (lambda: plot_gain([0.1], [[1.0]], labels=["a", "b"]), "labels: expected 1"),
        (lambda: plot_gain([0.1], [[1.0]], theory=[[1.0, 2.0]]), "theory: expected shape"),
        (lambda: plot_gradient_norms(np.ones(3)), "norms: expected shape"),
        (lambda: plot_depth_curve([1, 2], [0.1, 0.2], {"b": 1.0}), "params: expected keys"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_fixed_point_plot_takes_find_fixed_points_output():
    # The real container: a 2-unit tanh layer with W = 2 I has three fixed points per axis at
    # x = 0 (h = tanh(2 h): 0 and +-0.957), 9 in all: 4 stable, 4 saddles, 1 unstable.
    import torch

    import rnnode
    from rnnode.analysis import find_fixed_points

    model = rnnode.ODERNN(1, 2, 1, cell="rnn", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.copy_(2 * torch.eye(2))
    grid = torch.linspace(-1.2, 1.2, 7)
    starts = torch.cartesian_prod(grid, grid).reshape(-1, 1, 2)
    found = find_fixed_points(model, torch.zeros(1), starts, opt_steps=0)
    t = torch.linspace(0, 1, 20)[None, :, None, None]
    paths = starts[:, None] * (1 - t) + found.points[0] * t  # (49, 20, 1, 2): lines to a point
    fig = plot_fixed_points(found, paths, num_components=2)
    counts = {c: found.classification.count(c) for c in ("stable", "saddle", "unstable")}
    assert counts == {"stable": 4, "saddle": 4, "unstable": 1}
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[1:] == [f"{c} fixed point ({n})" for c, n in counts.items()]
