"""Memory capacity (rnnode.analysis.memory): the estimator against closed forms (a delay line, a
random linear network by an explicit covariance series) and Jaeger's bound."""

import numpy as np
import pytest

from rnnode.analysis.memory import linear_memory_function, memory_function


def _linear_network(n, radius, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    A *= radius / np.abs(np.linalg.eigvals(A)).max()
    return A, rng.standard_normal(n)


def _simulate(A, b, u, noise_std=0.0, seed=1):
    rng = np.random.default_rng(seed)
    h, out = np.zeros(len(b)), np.empty((len(u), len(b)))
    for t, value in enumerate(u):
        h = A @ h + b * value + noise_std * rng.standard_normal(len(b))
        out[t] = h
    return out


def _delay_line(n):
    A = np.eye(n, k=-1)  # shift register: h_t = (u_t, u_{t-1}, ..., u_{t-n+1})
    b = np.zeros(n)
    b[0] = 1.0
    return A, b


def test_delay_line_remembers_exactly_n_steps():
    A, b = _delay_line(5)
    m = linear_memory_function(A, b, 9)
    np.testing.assert_allclose(m, [1, 1, 1, 1, 1, 0, 0, 0, 0], atol=1e-14)
    u = np.random.default_rng(0).standard_normal(4000)
    est = memory_function(_simulate(A, b, u), u, 9, washout=10)
    np.testing.assert_allclose(est[:5], 1.0, atol=1e-12)
    # beyond the line the inputs are independent of the state: chance correlation ~ 1 / T_test
    assert est[5:].max() < 5e-3


@pytest.mark.parametrize("radius", [0.5, 0.9])
def test_closed_form_equals_the_covariance_series(radius):
    A, b = _linear_network(4, radius, 3)
    Q = 0.01 * np.eye(4)
    C = sum(
        np.linalg.matrix_power(A, j) @ (np.outer(b, b) + Q) @ np.linalg.matrix_power(A, j).T
        for j in range(600)
    )
    expected = [
        np.linalg.matrix_power(A, k) @ b @ np.linalg.solve(C, np.linalg.matrix_power(A, k) @ b)
        for k in range(10)
    ]
    np.testing.assert_allclose(linear_memory_function(A, b, 10, noise=Q), expected, rtol=1e-10)


def test_noiseless_capacity_sums_to_n():
    A, b = _linear_network(5, 0.8, 4)
    assert linear_memory_function(A, b, 400).sum() == pytest.approx(5.0, abs=1e-8)


def test_estimator_agrees_with_closed_form_under_noise():
    A, b = _linear_network(4, 0.8, 5)
    u = np.random.default_rng(6).standard_normal(40000)
    states = _simulate(A, b, u, noise_std=0.1)
    est = memory_function(states, u, 12, washout=50)
    exact = linear_memory_function(A, b, 12, noise=0.01 * np.eye(4))
    # standard error of a squared correlation on 20000 held-out samples is below 0.005
    np.testing.assert_allclose(est, exact, atol=0.02)
    assert est.sum() <= 4


def test_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match="states, inputs"):
        memory_function(np.zeros((10, 2)), np.zeros(9), 2)
    with pytest.raises(ValueError, match="max_delay"):
        memory_function(np.zeros((10, 2)), np.zeros(10), 0)
    with pytest.raises(ValueError, match="train_fraction"):
        memory_function(np.zeros((10, 2)), np.zeros(10), 2, train_fraction=1.0)
    with pytest.raises(ValueError, match="spectral radius"):
        linear_memory_function(2 * np.eye(2), np.ones(2), 3)
    with pytest.raises(ValueError, match="noise"):
        linear_memory_function(0.5 * np.eye(2), np.ones(2), 3, noise=np.eye(3))
