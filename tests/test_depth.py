"""analysis.depth against the typed formula, a dense numerical argmax, scipy's bounded scalar
minimiser and synthetic data with known parameters."""

import math

import numpy as np
import pytest
import scipy.optimize
import sympy as sp

from rnnode.analysis.depth import (
    accuracy_model,
    fit_accuracy_model,
    sweet_spot,
    sweet_spot_expression,
)

TRUE = dict(a_min=0.1, a_max=0.95, b=0.35, m=0.94)


def test_accuracy_model_broadcasts_and_matches_the_formula_elementwise():
    n = np.arange(0, 12).reshape(3, 4)
    b = np.array([0.2, 0.5, 1.0, 2.0])  # broadcast along the last axis
    values = accuracy_model(n, 0.1, 0.9, b, 0.95)
    assert values.shape == (3, 4)
    for i, j in np.ndindex(3, 4):
        N = float(n[i, j])
        expected = 0.1 + 0.8 * (1 - math.exp(-b[j] * N)) * 0.95**N
        assert values[i, j] == pytest.approx(expected, rel=1e-14, abs=1e-15)


def test_sweet_spot_expression_is_the_root_of_the_derivative():
    expr = sweet_spot_expression()
    symbols = {s.name: s for s in expr.free_symbols}
    assert set(symbols) == {"b", "m"}
    b, m = symbols["b"], symbols["m"]
    assert sp.simplify(expr - sp.log(1 - b / sp.log(m)) / b) == 0


@pytest.mark.parametrize(("b", "m"), [(0.35, 0.94), (1.0, 0.8), (0.05, 0.99), (3.0, 0.5)])
def test_sweet_spot_is_the_dense_numerical_argmax(b, m):
    star = float(sweet_spot(b, m))
    grid = np.linspace(0.0, 5 * star, 500_001)
    dense = grid[np.argmax(accuracy_model(grid, 0.2, 0.9, b, m))]
    assert abs(star - dense) <= grid[1] - grid[0]
    bounded = scipy.optimize.minimize_scalar(
        lambda n: -accuracy_model(n, 0.2, 0.9, b, m),
        bounds=(0.0, 5 * star),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert star == pytest.approx(bounded.x, rel=1e-6)


def test_sweet_spot_is_vectorized_and_infinite_without_decay():
    stars = sweet_spot([0.35, 1.0, 0.5], [0.94, 0.8, 1.0])
    assert stars.shape == (3,)
    assert stars[0] == pytest.approx(float(sweet_spot(0.35, 0.94)), rel=1e-15)
    assert np.isinf(stars[2])


def test_fit_recovers_known_parameters_from_noisy_data():
    rng = np.random.default_rng(0)
    depths = np.arange(1, 41)
    clean = accuracy_model(depths, **TRUE)
    noisy = clean + rng.normal(0.0, 0.002, depths.shape)
    fit = fit_accuracy_model(depths, noisy)
    assert set(fit) == {"a_min", "a_max", "b", "m"}
    for key, value in TRUE.items():
        assert fit[key] == pytest.approx(value, rel=0.05), key
    assert float(sweet_spot(fit["b"], fit["m"])) == pytest.approx(
        float(sweet_spot(TRUE["b"], TRUE["m"])), rel=0.05
    )


def test_fit_of_noise_free_data_is_exact():
    depths = np.arange(0, 30)
    fit = fit_accuracy_model(depths, accuracy_model(depths, **TRUE))
    for key, value in TRUE.items():
        assert fit[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sweet_spot(-1.0, 0.9), "b: expected positive"),
        (lambda: sweet_spot(1.0, 1.5), r"m: expected retention factors in \(0, 1\]"),
        (lambda: fit_accuracy_model([1, 2, 3], [0.1, 0.2, 0.3]), "accuracies: expected"),
        (lambda: fit_accuracy_model([1, 2, 3, 4], [0.1, 0.2]), "accuracies: expected"),
        (lambda: fit_accuracy_model([-1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]), "depths: expected"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _unbounded_fit(depths, accuracies):
    """The same least squares as fit_accuracy_model without the box (for the tests below)."""
    n, acc = np.asarray(depths, float), np.asarray(accuracies, float)
    best = None
    for b0 in (0.05, 0.2, 0.7, 2.0):
        for m0 in (0.7, 0.9, 0.98):
            fit = scipy.optimize.least_squares(
                lambda t: accuracy_model(n, *t) - acc,
                [acc.min(), acc.max(), b0, m0],
                method="lm",
            )
            if best is None or fit.cost < best.cost:
                best = fit
    return dict(zip(("a_min", "a_max", "b", "m"), best.x, strict=True))


def test_bounded_fit_recovers_parameters_near_the_accuracy_ceiling():
    truth = dict(a_min=0.1, a_max=0.99, b=0.8, m=0.9)
    rng = np.random.default_rng(1)
    depths = np.repeat(np.arange(0, 16), 3)
    noisy = np.clip(accuracy_model(depths, **truth) + rng.normal(0, 0.003, depths.shape), 0, 1)
    fit = fit_accuracy_model(depths, noisy)
    for key, value in truth.items():
        assert fit[key] == pytest.approx(value, rel=0.03), key


# A steep rise to about 0.97 and a steep fall: least squares without the box explains the peak
# with a level above 1 (the m^N factor has already eroded it when the capacity term saturates).
PUSHING = (
    np.array([0, 1, 2, 3, 4, 6, 8, 12], dtype=float),
    np.array([0.1, 0.9, 0.97, 0.95, 0.9, 0.75, 0.6, 0.3]),
)


def test_unbounded_fit_of_the_pushing_data_leaves_the_unit_interval():
    # The premise of the next test: these data do push A_max above 1.
    assert _unbounded_fit(*PUSHING)["a_max"] > 1.05


def test_bounded_fit_never_returns_a_max_above_one_on_data_that_push_it_there():
    fit = fit_accuracy_model(*PUSHING)
    assert 0 <= fit["a_min"] <= 1 and 0 <= fit["a_max"] <= 1
    assert fit["b"] > 0 and 0 < fit["m"] <= 1
    # It is the constrained optimum: no feasible start with A_max = 1 does better.
    residual = accuracy_model(PUSHING[0], **fit) - PUSHING[1]
    assert fit["a_max"] == pytest.approx(1.0, abs=1e-9)
    assert np.sum(residual**2) < np.sum((PUSHING[1] - PUSHING[1].mean()) ** 2)


def test_bounded_fit_stays_inside_the_box_on_random_curves():
    rng = np.random.default_rng(7)
    depths = np.array([0, 1, 2, 3, 4, 6, 8, 12], dtype=float)
    for _ in range(25):
        acc = np.clip(
            accuracy_model(depths, rng.uniform(0, 0.3), rng.uniform(0.6, 1.4), 2.0, 0.9)
            + rng.normal(0, 0.05, depths.shape),
            0,
            1,
        )
        fit = fit_accuracy_model(depths, acc, m_bounds=(0.01, 1.0))
        assert 0 <= fit["a_min"] <= 1 and 0 <= fit["a_max"] <= 1, fit
        assert 1e-3 <= fit["b"] <= 20 and 0.01 <= fit["m"] <= 1, fit


@pytest.mark.parametrize("bad", [1.2, -0.1, float("nan")])
def test_fit_refuses_accuracies_outside_the_unit_interval(bad):
    with pytest.raises(ValueError, match=r"accuracies: expected fractions in \[0, 1\]"):
        fit_accuracy_model([0, 1, 2, 3], [0.1, 0.5, bad, 0.4])


def test_bounded_fit_is_no_worse_than_many_bounded_local_fits():
    # The grid-started fit against scipy's bounded least squares from 48 starts spread over the
    # box: the same or a lower residual (the global optimum on these noisy curves).
    rng = np.random.default_rng(3)
    depths = np.repeat([0, 1, 2, 3, 4, 6, 8, 12], 2).astype(float)
    low, high = [0, 0, 1e-3, 1e-3], [1, 1, 20, 1]
    for _ in range(4):
        acc = np.clip(
            accuracy_model(depths, 0.1, rng.uniform(0.7, 1), rng.uniform(0.2, 3), 0.9)
            + rng.normal(0, 0.04, depths.shape),
            0,
            1,
        )

        def cost(theta, acc=acc):
            return float(np.sum((accuracy_model(depths, *theta) - acc) ** 2))

        fit = fit_accuracy_model(depths, acc)
        best = min(
            cost(
                scipy.optimize.least_squares(
                    lambda t, acc=acc: accuracy_model(depths, *t) - acc,
                    [0.1, 0.9, b0, m0],
                    bounds=(low, high),
                ).x
            )
            for b0 in np.geomspace(0.01, 15, 8)
            for m0 in (0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
        )
        assert cost(list(fit.values())) <= best + 1e-10


def test_plot_depth_curve_draws_into_a_given_axes_with_label_and_colour():
    from matplotlib.figure import Figure

    from rnnode.analysis.plots import plot_depth_curve

    fig = Figure()
    ax = fig.add_subplot()
    depths = np.arange(0, 9)
    for k, m in enumerate((0.9, 0.8)):
        params = dict(a_min=0.1, a_max=0.9, b=0.5, m=m)
        assert (
            plot_depth_curve(
                depths,
                accuracy_model(depths, **params),
                params,
                ax=ax,
                label=f"run {k}",
                color=f"C{k}",
            )
            is fig
        )
    lines = ax.get_lines()
    assert len(lines) == 6 and not ax.get_title()
    data, curve, star = lines[3:]
    assert data.get_label() == "run 1: measured" and data.get_color() == "C1"
    assert curve.get_color() == star.get_color() == "C1"
    np.testing.assert_allclose(star.get_xdata(), [float(sweet_spot(0.5, 0.8))] * 2)
