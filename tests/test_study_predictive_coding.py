"""The predictive_coding study: its helpers against independent references (numpy, scipy,
statsmodels) and its quick run's numbers (through the real runner, once per session). No test
asserts which way a finding comes out. (A quick run's files and each claim's evidence are tested
for every study in tests/test_studies.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import (
    predictive_coding,
)
from rnnode.studies._run import json_bytes
from tests.helpers import assert_seed_finding, assert_seed_verification

STUDIES = (predictive_coding,)


@pytest.fixture(scope="module")
def quick_runs(study_run):
    """Metrics of the study's quick run (made once per session), and the folder holding it."""
    folder, metrics = study_run("predictive_coding")
    return {"predictive_coding": metrics}, folder.parent


# -- predictive coding ------------------------------------------------------------------------


def test_spread_is_the_trace_of_the_covariance_of_the_final_state():
    rnn = rnnode.ODERNN(3, 4, num_layers=2)
    x = torch.randn(7, 5, 3)
    with torch.no_grad():
        _, h_n = rnn(x.transpose(0, 1))  # (num_layers, batch, hidden), an independent path
    expected = [np.trace(np.cov(h_n[layer].numpy().T)) for layer in range(2)]
    np.testing.assert_allclose(predictive_coding.spread(rnn, x), expected, rtol=1e-12)


def test_next_input_loss_scores_the_next_input_from_the_state():
    """L_l = mean |Q_l(h_k) - s_{k+1}|^2 written out from the solution, and a state that ignores
    its input (all zero) scores the input's second moment, not zero."""
    torch.manual_seed(0)
    rnn = rnnode.ODERNN(3, 4, num_layers=2)
    model = predictive_coding.NextInputCoding(rnn, 2)
    x = torch.randn(5, 6, 3)
    _, solution = model.run(x)
    losses = model.local_losses(solution, x)
    h1 = solution.hidden[0, 0]  # (T + 1, batch, hidden)
    h2 = solution.hidden[1, 0]
    xs = x.transpose(0, 1)
    expected = [
        ((model.predictors[0](h1[1:-1]) - xs[1:]) ** 2).mean(),
        ((model.predictors[1](h2[1:-1]) - h1[2:]) ** 2).mean(),
    ]
    for ours, theirs in zip(losses, expected, strict=True):
        assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-12)
    with torch.no_grad():
        for p in model.predictors[0].parameters():
            p.zero_()
    zero = model.local_losses(solution, x)[0]
    assert float(zero.detach()) == pytest.approx(float((xs[1:] ** 2).mean()), rel=1e-12)


def test_start_end_and_lowest_window_means():
    curve = [float(k) for k in range(20)]  # windows of 2 steps
    assert predictive_coding.window_means(curve) == (0.5, 18.5, 0.5)
    assert predictive_coding.window_means([4.0, 2.0, 1.0, 3.0]) == (4.0, 3.0, 1.0)
    spike = [5.0] * 10 + [1.0, 1.0] + [9.0] * 8
    assert predictive_coding.window_means(spike) == (5.0, 9.0, 1.0)


@pytest.mark.slow
def test_predictive_coding_quick_numbers(quick_runs):
    m = quick_runs[0]["predictive_coding"]
    acc = {k: np.array(v) for k, v in m["accuracy"].items()}
    claims = m["claims"]
    assert_seed_finding(claims["backprop_learns"], acc["backprop"])
    assert_seed_finding(
        claims["backprop_beats_predictive_coding"], acc["backprop"] - acc["predictive_coding"]
    )
    assert_seed_finding(claims["below_reservoir"], acc["predictive_coding"] - acc["reservoir"])
    assert claims["below_reservoir"]["control"]["value"] == pytest.approx(acc["reservoir"].mean())
    lowest = np.array(m["local_error_lowest_ratio"]).max(axis=1)
    assert_seed_verification(claims["local_errors_fall"], lowest)  # the objective's optimum
    probes = {k: np.array(v) for k, v in m["probe_accuracy"].items()}
    assert_seed_finding(
        claims["next_input_probe_beats_untrained"], probes["next_input"] - probes["untrained"]
    )
    change = m["top_spread_log10_change"]
    assert_seed_finding(claims["next_input_keeps_spread"], change["next_input"])
    assert claims["next_input_keeps_spread"]["control"]["value"] == pytest.approx(
        np.mean(change["own_state"])
    )
    spread = {k: np.array(v) for k, v in m["top_spread"].items()}
    assert_seed_verification(
        claims["top_layer_collapses"], np.log10(spread["predictive_coding"] / spread["initial"])
    )
    # Local weight 0 leaves the layers as initialised (Adam steps zero gradients by zero).
    np.testing.assert_allclose(spread["reservoir"], spread["initial"], rtol=1e-12)


@pytest.mark.slow  # trains the point twice: seconds
@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_a_point_is_a_pure_function_of_its_settings_and_seed(study):
    """Same point, same numbers (on the CPU), bit for bit: seeds are set inside the point."""
    p = {"settings": {**study.settings(True), "steps": 3}, "seed": 4}
    first = study.point(p)
    torch.manual_seed(123)  # the global generator's state must not matter
    assert json_bytes(study.point(p)) == json_bytes(first)
