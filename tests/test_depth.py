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
