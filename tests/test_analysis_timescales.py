"""rnnode.analysis.timescales against closed forms: the sine gain and the kick response of scalar
linear layers, the autocorrelation as a direct sum, decay times and band centres by hand."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import rnnode
from rnnode.analysis import autocorrelation, band_centre, decay_time, kick_response, trajectory_gain


def linear_layer(a: float) -> rnnode.ODERNN:
    """One scalar linear layer h_k = a h_{k-1} + x_k (Euler step 1: W_hh = a, W_ih = 1)."""
    model = rnnode.ODERNN(1, 1, 1, cell="linear", bias=False)
    with torch.no_grad():
        model.layers[0].weight_ih.fill_(1.0)
        model.layers[0].weight_hh.fill_(a)
    return model


def test_trajectory_gain_of_a_scalar_linear_layer_equals_the_formula():
    a = 0.7
    omegas = np.geomspace(0.05, 3.0, 7)
    x = torch.randn(300, 2, 1)  # linear: the trajectory does not change the gain
    gains = trajectory_gain(linear_layer(a), x, omegas, 1e-3, fit_from=100, seed=0)
    expected = 1 / np.sqrt(1 - 2 * a * np.cos(omegas) + a**2)
    np.testing.assert_allclose(gains.numpy(), expected, rtol=1e-9)  # transient 0.7^100 ~ 3e-16


def test_kick_response_of_a_scalar_linear_layer_is_a_power():
    a = 0.9
    curve = kick_response(linear_layer(a), torch.randn(80, 3, 1), [5, 20], 40, seed=0)
    # The layer is linear: the difference is a^j times the kick, to rounding of O(1) states.
    np.testing.assert_allclose(curve.numpy(), a ** np.arange(41), rtol=0, atol=1e-8)
    lag, edge = decay_time(curve)
    assert not edge and lag == pytest.approx(1 / math.log(1 / a), abs=0.02)


def test_decay_time_interpolates_and_flags_the_edge():
    lag, edge = decay_time(np.array([1.0, 0.6, 0.2, 0.1]))
    # 1/e = 0.3679 lies between 0.6 (lag 1) and 0.2 (lag 2).
    assert not edge and lag == pytest.approx(1 + (0.6 - 1 / math.e) / 0.4, rel=1e-12)
    assert decay_time(np.array([1.0, 0.9, 0.8])) == (2.0, True)


def test_autocorrelation_equals_the_direct_sum():
    h = torch.as_tensor(np.random.default_rng(6).standard_normal((50, 2, 3)))
    curve = autocorrelation(h, 5)
    c = h.numpy() - h.numpy().mean(0)
    for lag in range(6):
        direct = (c[: 50 - lag] * c[lag:]).sum() / (50 - lag) / ((c * c).sum() / 50)
        assert float(curve[lag]) == pytest.approx(direct, rel=1e-12)


def test_band_centre_of_a_single_peak_is_its_frequency():
    omegas = np.geomspace(0.1, 3.0, 9)
    gains = np.where(np.arange(9) == 4, 1.0, 0.0)[None]
    assert float(band_centre(omegas, gains)[0]) == pytest.approx(omegas[4], rel=1e-14)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: autocorrelation(torch.zeros(5, 1, 1), 5), ValueError, "max_lag: expected"),
        (lambda: decay_time([1.0]), ValueError, "curve: expected a 1-d curve"),
        (
            lambda: kick_response(linear_layer(0.5), torch.zeros(9, 1, 1), [5], 4),
            ValueError,
            "starts: expected indices in [0, 5)",
        ),
        (lambda: kick_response("model", torch.zeros(9, 1, 1), [0], 4), TypeError, "model:"),
        (
            lambda: trajectory_gain(linear_layer(0.5), torch.zeros(9, 1), [1.0]),
            ValueError,
            "x: expected a tensor of 3 dimensions",
        ),
        (lambda: band_centre([1.0, 2.0], [1.0]), ValueError, "gains: expected 2 values"),
    ],
)
def test_bad_arguments_name_themselves(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
