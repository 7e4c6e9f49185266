"""Mean-field theory (rnnode.analysis.meanfield) against scipy.integrate.quad and closed forms."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from rnnode.analysis import meanfield


def _quad(f, q):
    """E[f(sqrt(q) z)], z ~ N(0, 1), by adaptive quadrature (independent of the module's rule)."""

    def integrand(z):
        return f(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    return quad(integrand, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13, limit=200)[0]


def _sech4(x):
    return 1 / math.cosh(x) ** 4 if abs(x) < 150 else 0.0


@pytest.mark.parametrize("q", [0.0, 0.01, 0.5, 1.0, 6.3, 30.0])
def test_expectations_equal_adaptive_quadrature(q):
    tanh2 = meanfield.gaussian_expectation(lambda x: np.tanh(x) ** 2, q)
    sech4 = meanfield.gaussian_expectation(
        lambda x: 1 / np.cosh(np.minimum(np.abs(x), 150.0)) ** 4, q
    )
    assert tanh2 == pytest.approx(_quad(lambda x: math.tanh(x) ** 2, q), abs=1e-12)
    assert sech4 == pytest.approx(_quad(_sech4, q), abs=1e-12)


def test_gaussian_moments_are_exact():
    # E[(sqrt(q) z)^2] = q and E[(sqrt(q) z)^4] = 3 q^2
    q = np.array([0.3, 2.0, 9.0])
    np.testing.assert_allclose(meanfield.gaussian_expectation(lambda x: x**2, q), q, rtol=1e-13)
    np.testing.assert_allclose(
        meanfield.gaussian_expectation(lambda x: x**4, q), 3 * q**2, rtol=1e-12
    )


@pytest.mark.parametrize(("sw2", "sb2"), [(2.25, 0.0), (4.0, 0.0), (9.0, 0.0), (0.5, 0.05)])
def test_stable_variance_is_a_fixed_point_by_quad(sw2, sb2):
    q = float(meanfield.stable_variance(sw2, sb2))
    assert q > 0
    assert sw2 * _quad(lambda x: math.tanh(x) ** 2, q) + sb2 == pytest.approx(q, abs=1e-11)
    # stable: the map's slope at q* is below 1 (finite difference with quad)
    step = 1e-5
    slope = (
        sw2
        * (
            _quad(lambda x: math.tanh(x) ** 2, q + step)
            - _quad(lambda x: math.tanh(x) ** 2, q - step)
        )
        / (2 * step)
    )
    assert slope < 1


@pytest.mark.parametrize("g", [0.3, 0.9, 1.0])
def test_below_one_the_variance_vanishes_and_lambda_is_ln_g(g):
    assert meanfield.stable_variance(g * g) == 0.0
    assert meanfield.lyapunov_exponent(g) == pytest.approx(math.log(g), abs=1e-14)


@pytest.mark.parametrize("g", [1.5, 2.0, 3.0])
def test_lyapunov_exponent_equals_quad_formula(g):
    q = float(meanfield.stable_variance(g * g))
    expected = 0.5 * math.log(g * g * _quad(_sech4, q))
    assert float(meanfield.lyapunov_exponent(g)) == pytest.approx(expected, abs=1e-11)


def test_gradient_factor_at_zero_variance_is_sigma():
    np.testing.assert_allclose(meanfield.gradient_factor([0.25, 1.0, 4.0], 0.0), [0.5, 1, 2])


def test_arrays_broadcast():
    q = meanfield.stable_variance(np.array([[2.0], [3.0]]), np.array([0.0, 0.1]))
    assert q.shape == (2, 2)
    assert q[1, 1] == pytest.approx(float(meanfield.stable_variance(3.0, 0.1)), abs=0)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_variances_raise_naming_the_argument(bad):
    with pytest.raises(ValueError, match="weight_variance"):
        meanfield.stable_variance(bad)
    with pytest.raises(ValueError, match="q"):
        meanfield.gaussian_expectation(np.tanh, bad)
    with pytest.raises(ValueError, match="gain"):
        meanfield.lyapunov_exponent(0.0)
