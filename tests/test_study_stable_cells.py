"""The stable_cells study: its helpers against independent computations and its quick run's
findings recomputed from the metrics. No test asserts which way a finding comes out. (A quick
run's files and each claim's evidence are tested for every study in tests/test_studies.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnode.studies import (
    stable_cells,
)

STUDIES = {"stable_cells": stable_cells}


@pytest.fixture(scope="module")
def runs(study_run):
    """The study's quick run (made once per session): {name: (folder, metrics)}."""
    return {name: study_run(name) for name in STUDIES}


# -- stable_cells -----------------------------------------------------------------------------


def test_cells_have_about_equal_parameter_counts():
    counts = [
        stable_cells.count(stable_cells.build(c, stable_cells.hidden_for(c, 2200)))
        for c in stable_cells.CELLS
    ]
    assert max(counts) / min(counts) < 1.1


def test_step_spectrum_of_the_tanh_cell_is_numpys():
    torch.manual_seed(0)
    model = stable_cells.build("tanh", 5)
    f = model.layers[0]
    W = f.weight_hh.detach().numpy()
    d = 1 - np.tanh((f.bias_ih + f.bias_hh).detach().numpy()) ** 2
    expected = np.sort_complex(np.linalg.eigvals(d[:, None] * W))  # Euler step 1: 1 + (-I + DW)
    np.testing.assert_allclose(
        np.sort_complex(stable_cells.step_spectrum(model)), expected, atol=1e-12
    )


def test_decay_rate_of_an_exponential():
    t = np.arange(300)
    norms = 10.0 ** (-0.05 * (299 - t))  # falls 5 decades per 100 steps going back
    norms[:20] = 0.0  # underflowed values are ignored
    assert stable_cells.decay_rate(norms) == pytest.approx(5.0, rel=1e-10)


def test_the_tanh_control_has_an_orthogonal_recurrent_matrix():
    torch.manual_seed(0)
    W = stable_cells.build("tanh", 7).layers[0].weight_hh.detach().numpy()
    np.testing.assert_allclose(W @ W.T, np.eye(7), atol=1e-12)


def _imex_by_hand(model, x):
    """The IMEX recursion in numpy, one sample at a time (an independent loop)."""
    f = model.field
    V, W, Wz = (p.detach().numpy() for p in (f.weight_ih, f.weight_hh, f.weight_hz))
    b = (f.bias_ih + f.bias_hh).detach().numpy()
    dt, gamma, eps = model.dt, f.gamma, f.epsilon
    T, B, _ = x.shape
    out = np.zeros((T, B, model.hidden_size))
    for n in range(B):
        y = np.zeros(model.hidden_size)
        z = np.zeros(model.hidden_size)
        for k in range(T):
            a = np.tanh(W @ y + Wz @ z + V @ x[k, n] + b)
            z = (z + dt * a - dt * gamma * y) / (1 + dt * eps)
            y = y + dt * z
            out[k, n] = y
    return out


def test_cornn_imex_step_matches_a_hand_loop():
    torch.manual_seed(1)
    model = stable_cells.CoRNN(2, 5, dt=0.06, gamma=66.0, epsilon=15.0)
    x = torch.randn(30, 3, 2, dtype=torch.float64)
    ys, _ = model(x)
    np.testing.assert_allclose(ys.detach().numpy(), _imex_by_hand(model, x.numpy()), atol=1e-13)


def test_cornn_imex_step_spectrum_is_the_linearised_scheme():
    torch.manual_seed(2)
    model = stable_cells.CoRNN(1, 4, dt=0.06, gamma=66.0, epsilon=15.0)
    f = model.field
    W, Wz = f.weight_hh.detach().numpy(), f.weight_hz.detach().numpy()
    d = 1 - np.tanh((f.bias_ih + f.bias_hh).detach().numpy()) ** 2
    dt, c = model.dt, 1 / (1 + model.dt * f.epsilon)
    I = np.eye(4)
    jzy = c * dt * (d[:, None] * W - f.gamma * I)
    jzz = c * (I + dt * d[:, None] * Wz)
    jac = np.block([[I + dt * jzy, dt * jzz], [jzy, jzz]])
    np.testing.assert_allclose(
        np.sort_complex(stable_cells.step_spectrum(model)),
        np.sort_complex(np.linalg.eigvals(jac)),
        atol=1e-12,
    )


def _hand_loss(model, x, v, t, delta):
    """The long run's loss (y_T . v summed) by the numpy IMEX loop, y_t shifted by ``delta``
    right after step t (z_t held)."""
    f = model.field
    V, W, Wz = (p.detach().numpy() for p in (f.weight_ih, f.weight_hh, f.weight_hz))
    b = (f.bias_ih + f.bias_hh).detach().numpy()
    y = np.zeros((x.shape[1], model.hidden_size))
    z = np.zeros_like(y)
    for k in range(x.shape[0]):
        a = np.tanh(y @ W.T + z @ Wz.T + x[k] @ V.T + b)
        z = (z + model.dt * (a - f.gamma * y)) / (1 + model.dt * f.epsilon)
        y = y + model.dt * z
        if k == t:
            y = y + delta
    return float((y * v).sum())


def test_cornn_long_run_gradients_match_finite_differences():
    torch.manual_seed(3)
    model = stable_cells.CoRNN(1, 3, dt=0.06, gamma=66.0, epsilon=15.0)
    T, B = 12, 2
    result = stable_cells.long_run(model, T, B, seed=0)
    generator = torch.Generator().manual_seed(5)  # the long run's draws, in its order
    x = torch.randn(T, B, 1, generator=generator, dtype=torch.float64).numpy()
    v = torch.randn(B, 3, generator=generator, dtype=torch.float64).numpy()
    assert len(result["gradient"]) == T
    h = 1e-6
    for t in (0, 5, T - 1):
        grad = np.zeros((B, 3))
        for index in np.ndindex(B, 3):
            e = np.zeros((B, 3))
            e[index] = h
            grad[index] = (_hand_loss(model, x, v, t, e) - _hand_loss(model, x, v, t, -e)) / (2 * h)
        # central differences of a smooth function: error O(h^2) ~ 1e-12, rounding ~ 1e-10
        assert result["gradient"][t] == pytest.approx(np.linalg.norm(grad), rel=1e-7)


def test_regressor_loss_is_the_mse_of_its_prediction():
    torch.manual_seed(4)
    model = stable_cells.Regressor(stable_cells.build("cornn", 3, input_size=2), 3, 1)
    x, y = torch.randn(5, 7, 2), torch.randn(5, 1)
    loss, parts = model.loss(x, y)
    ys, _ = model.rnn(x.transpose(0, 1))
    expected = ((model.head(ys[-1]) - y) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-14)
    assert parts["task"] == pytest.approx(float(expected.detach()), rel=1e-14)


@pytest.mark.slow
def test_findings_are_recomputed_from_the_metrics(runs):
    from rnnode.studies._claims import check_claims
    from rnnode.studies._stats import mean_test

    _, metrics = runs["stable_cells"]
    claims = metrics["claims"]
    check_claims(claims)
    rates = {c: np.array(v) for c, v in metrics["gradient_decay_rate"].items()}
    mse = {c: np.array(v) for c, v in metrics["test_mse"].items()}
    for c in ("cornn", "antisymmetric"):
        for name, diff in (
            (f"{c}_gradient_survives", rates["tanh"] - rates[c]),
            (f"{c}_beats_tanh_adding", mse["tanh"] - mse[c]),
        ):
            claim = claims[name]
            test = mean_test(diff, 0.0)
            assert claim["value"] == pytest.approx(test.value, rel=1e-12, abs=1e-15)
            assert claim["p_value"] == pytest.approx(test.p_value, rel=1e-9, abs=1e-15)
            assert claim["seeds"] == len(metrics["seeds"])
    assert claims["cornn_beats_tanh_adding"]["control"]["value"] == pytest.approx(
        float(mse["tanh"].mean()), rel=1e-12
    )
    # every seed's rate is the fit to its own norms (first seed kept in the metrics)
    first = np.array(metrics["gradient_norms_first_seed"]["tanh"], dtype=float)
    assert stable_cells.decay_rate(first) == pytest.approx(rates["tanh"][0], rel=1e-12)
