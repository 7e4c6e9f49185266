"""analysis.plots: every figure holds the data it was given (lines, images, contours), headless."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from rnnode.analysis import StabilityMap
from rnnode.analysis.depth import accuracy_model, sweet_spot
from rnnode.analysis.plots import (
    plot_depth_curve,
    plot_eigenvalues,
    plot_gain,
    plot_gradient_norms,
    plot_stability_map,
)


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
    assert len(legend.get_texts()) == 6
    assert "theory" in ax.get_title()


def test_gain_figure_without_theory_and_with_labels():
    fig = plot_gain([0.5, 1.0], [[1.0, 2.0]], labels=["slow"])
    (line,) = fig.axes[0].get_lines()
    assert line.get_label() == "slow (measured)"


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


def test_stability_map_figure_shows_both_maps_and_their_boundaries():
    smap = _map()
    fig = plot_stability_map(smap, p_label="weight scale", q_label="input")
    panels = [ax for ax in fig.axes if ax.get_images() and ax.get_xlabel()]
    assert len(panels) == 2
    for ax, values, level in zip(
        panels, (smap.max_real, smap.spectral_radius), (0.0, 1.0), strict=True
    ):
        (image,) = ax.get_images()
        np.testing.assert_array_equal(np.asarray(image.get_array()), values)
        contours = [c for c in ax.collections if isinstance(c, (ContourSet, LineCollection))]
        assert len(contours) == 1
        np.testing.assert_array_equal(contours[0].levels, [level])
        assert ax.get_ylabel() == "weight scale" and ax.get_xlabel() == "input"
    assert "rk4" in panels[1].get_title()
    for ax, level in zip(panels, (0.0, 1.0), strict=True):
        norm = ax.get_images()[0].norm
        assert norm.vcenter == level  # white on the stability boundary
        assert norm.vmin < level < norm.vmax


def test_stability_map_figure_without_a_boundary_has_no_contour():
    smap = _map()
    smap.max_real = -np.abs(smap.max_real) - 1  # everywhere stable
    fig = plot_stability_map(smap)
    left = fig.axes[0]
    assert not [c for c in left.collections if isinstance(c, ContourSet)]


def test_an_everywhere_stable_map_is_drawn_on_the_stable_side_of_the_colour_map():
    # The case: max Re lambda from -0.41 to -0.03 was drawn deep red at the top.
    smap = _map()
    smap.max_real = np.linspace(-0.41, -0.03, 30).reshape(6, 5)
    smap.spectral_radius = 1.015 + 0 * smap.max_real  # just unstable: barely red
    fig = plot_stability_map(smap)
    left, right = (ax for ax in fig.axes if ax.get_images() and ax.get_xlabel())
    image = left.get_images()[0]
    rgba = image.cmap(image.norm(smap.max_real))
    assert np.all(rgba[..., 2] >= rgba[..., 0])  # blue at least as strong as red: stable
    assert image.norm.vcenter == 0.0 and image.norm.vmax >= 0.41
    red = right.get_images()[0]
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


def test_eigenvalue_plot_shows_points_unit_circle_and_step_regions():
    eig = np.array([-0.5 + 0.5j, -0.5 - 0.5j, -2.2 + 0j])
    fig = plot_eigenvalues([eig, np.array([0.1j])], dt=0.5, labels=["J", "edge"])
    (ax,) = fig.axes
    points = [line for line in ax.get_lines() if line.get_label() in ("J", "edge")]
    np.testing.assert_allclose(points[0].get_xdata(), 0.5 * eig.real)
    np.testing.assert_allclose(points[0].get_ydata(), 0.5 * eig.imag)
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 2 and all(list(c.levels) == [1.0] for c in contours)
    # The Euler boundary is the circle |1 + z| = 1.
    euler = contours[0].allsegs[0][0]
    np.testing.assert_allclose(np.abs(euler[:, 0] + 1j * euler[:, 1] + 1), 1.0, atol=2e-3)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "unit circle |z| = 1" in labels and any("rk4" in t for t in labels)
    assert ax.get_xlabel() == "Re(dt lambda)" and ax.get_title()


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
        "gradients": lambda: plot_gradient_norms(np.outer([1.0, 0.1], 2.0 ** -np.arange(7))),
        "depth": lambda: plot_depth_curve(depths, accuracy_model(depths, **params), params),
    }
    return builders[name]()


@pytest.mark.parametrize("name", ["gain", "map", "eigenvalues", "gradients", "depth"])
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
