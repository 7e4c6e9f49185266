"""analysis.plots: every figure holds the data it was given (lines, images, contours), headless."""

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from rnnode.analysis.depth import accuracy_model, sweet_spot
from rnnode.analysis.plots import (
    plot_depth_curve,
    plot_gain,
    plot_gradient_norms,
    plot_stability_map,
)
from rnnode.analysis.stability import StabilityMap


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
    assert ax.get_yscale() == "log"
    assert len(ax.get_legend().get_texts()) == 6


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


def test_stability_map_figure_without_a_boundary_has_no_contour():
    smap = _map()
    smap.max_real = -np.abs(smap.max_real) - 1  # everywhere stable
    fig = plot_stability_map(smap)
    left = fig.axes[0]
    assert not [c for c in left.collections if isinstance(c, ContourSet)]


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
