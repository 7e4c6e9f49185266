"""The training studies (predictive_coding, bidirectional, sunspots): their helpers
against independent references (numpy, scipy, statsmodels) and the claims of their quick runs.

Each quick run goes through the real runner (``run_study``) into a temporary folder, once per
module; the tests then read the numbers that carry each claim from its metrics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import statsmodels.api as sm
import torch
from statsmodels.tsa.ar_model import AutoReg, ar_select_order

import rnnode
from rnnode.studies import (
    bidirectional,
    predictive_coding,
    read_json,
    run_study,
    sunspots,
)
from rnnode.studies._claims import check_claims
from rnnode.studies._run import json_bytes
from rnnode.studies._stats import bootstrap_interval
from tests.helpers import assert_seed_finding, assert_seed_verification

STUDIES = (predictive_coding, bidirectional, sunspots)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Metrics of every study's quick run, and the folder holding the runs."""
    out = tmp_path_factory.mktemp("runs")
    metrics = {
        study.__name__.rsplit(".", 1)[-1]: run_study(
            study, out=out, quick=True, seed=0, workers=1, show_progress=False
        )
        for study in STUDIES
    }
    return metrics, out


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_quick_run_writes_its_files_and_every_claim_carries_its_evidence(quick_runs, study):
    metrics, out = quick_runs
    name = study.__name__.rsplit(".", 1)[-1]
    folder = out / f"{name}-quick"
    assert read_json(folder / "metrics.json") == metrics[name]
    for file in ("config.json", "report.html"):
        assert (folder / file).is_file()
    claims = metrics[name]["claims"]
    assert len(claims) >= 2
    check_claims(claims)  # value, interval, control, seeds; the verdict follows from them
    for claim in claims.values():
        if claim["kind"] == "verification":
            assert claim["holds"], claim["statement"]  # code checks, not findings
        elif claim["test"].startswith("bootstrap over seeds"):
            assert claim["seeds"] == study.settings(True)["seeds"]
    # One saved point per seed: the sweep ran every seed of the quick setting.
    sweeps = [d for d in folder.iterdir() if d.is_dir()]
    assert sweeps
    for sweep_folder in sweeps:
        assert len(list(sweep_folder.glob("*.json"))) == study.settings(True)["seeds"]
    for png in folder.glob("*.png"):
        assert png.with_suffix(".pdf").is_file()
    assert len(list(folder.glob("*.png"))) >= 1


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_quick_setting_is_smaller_than_the_full_one(study):
    quick, full = study.settings(True), study.settings(False)
    assert set(quick) == set(full)
    for key in ("hidden_size", "num_layers", "steps", "seeds"):
        assert quick[key] <= full[key]
    assert full["seeds"] >= 5  # the full run's claims rest on several seeds


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


# -- bidirectional ----------------------------------------------------------------------------


def test_future_task_targets_compare_next_and_previous_inputs():
    task = bidirectional.future_task(5, 3, 6, seed=2)
    x = torch.cat([task.x_train, task.x_test])[..., 0].numpy()
    y = torch.cat([task.y_train, task.y_test]).numpy()
    assert x.shape == y.shape == (8, 6) and task.per_step and task.output_size == 2
    for n, k in np.ndindex(8, 6):
        before = x[n, k - 1] if k > 0 else 0.0
        after = x[n, k + 1] if k < 5 else 0.0
        assert y[n, k] == int(after > before)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"length": 1}, "length"), ({"num_train": 0}, "num_train"), ({"num_test": 2.0}, "num_test")],
)
def test_future_task_rejects_bad_sizes(kwargs, argument):
    with pytest.raises(ValueError, match=f"^{argument}: expected an integer"):
        bidirectional.future_task(**kwargs)


def test_the_causal_bound_is_three_quarters():
    """E[max(Phi(a), 1 - Phi(a))] over a ~ N(0, 1), by quadrature, is the middle steps' bound;
    with 1/2 at k = 1 and 1 at k = T the average over T steps stays 3/4."""
    middle, _ = scipy.integrate.quad(
        lambda a: max(scipy.stats.norm.cdf(a), scipy.stats.norm.sf(a)) * scipy.stats.norm.pdf(a),
        -np.inf,
        np.inf,
        epsabs=1e-13,
    )
    assert middle == pytest.approx(0.75, abs=1e-10)
    for length in (2, 5, 20):
        assert ((length - 2) * middle + 0.5 + 1.0) / length == pytest.approx(
            bidirectional.CAUSAL_BOUND, abs=1e-10
        )


def test_the_causal_rule_scores_the_bound_on_a_large_sample():
    task = bidirectional.future_task(1, 40000, 10, seed=0)
    accuracy = bidirectional.causal_bayes_accuracy(task.x_test, task.y_test)
    # Standard error sqrt(3/16 / 400000) ~ 7e-4 (with dependence within a sequence: < 2e-3).
    assert accuracy == pytest.approx(bidirectional.CAUSAL_BOUND, abs=5e-3)


def test_two_sided_task_targets_compare_the_signs_of_both_neighbours():
    task = bidirectional.two_sided_task(3, 2, 6, seed=1)
    x = torch.cat([task.x_train, task.x_test])[..., 0].numpy()
    y = torch.cat([task.y_train, task.y_test]).numpy()
    padded = np.pad(x, ((0, 0), (1, 1)))
    for n, k in np.ndindex(*y.shape):
        assert y[n, k] == int(padded[n, k] * padded[n, k + 2] > 0)
    assert np.all(y[:, 0] == 0) and np.all(y[:, -1] == 0)  # a neighbour is x_0 = 0 or x_{T+1}


def test_the_best_additive_rule_scores_the_additive_bound():
    """1[x_(k-1) > 0] + 1[x_(k+1) > 0] >= 2, an additive rule, scores 3/4 inside and 1 at the
    ends: ``additive_bound`` (which no additive rule exceeds, see the module docstring)."""
    task = bidirectional.two_sided_task(1, 20000, 8, seed=2)
    padded = torch.nn.functional.pad(task.x_test[..., 0], (1, 1))
    guess = ((padded[:, :-2] > 0).long() + (padded[:, 2:] > 0).long() >= 2).long()
    accuracy = float((guess == task.y_test).double().mean())
    # Standard error sqrt(3/16 / 120000) ~ 1.3e-3 over the inner steps.
    assert accuracy == pytest.approx(bidirectional.additive_bound(8), abs=6e-3)
    assert bidirectional.additive_bound(8) == pytest.approx((6 * 0.75 + 2) / 8, rel=1e-15)


def test_bidirectional_quick_numbers(quick_runs):
    m = quick_runs[0]["bidirectional"]
    bound = bidirectional.CAUSAL_BOUND
    # the causal and additive bounds are theorems: verifications, not findings
    assert_seed_verification(
        m["claims"]["unidirectional_is_causal"], m["accuracy"]["unidirectional"]
    )
    assert_seed_finding(
        m["claims"]["bidirectional_sees_the_future"], m["accuracy"]["bidirectional"]
    )
    assert m["claims"]["unidirectional_is_causal"]["bound"] == bound + bidirectional.BOUND_SLACK
    two_sided = m["two_sided_accuracy"]
    assert_seed_verification(
        m["claims"]["one_bidirectional_layer_is_additive"], two_sided["layers_1"]
    )
    assert_seed_finding(
        m["claims"]["two_bidirectional_layers_combine_sides"], two_sided["layers_2"]
    )
    for value in m["accuracy"]["causal_bayes"]:
        assert value == pytest.approx(bound, abs=bidirectional.BOUND_SLACK)


# -- sunspots ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sunspot_data():
    """The task and the normalised training series z_0..z_{split-1} behind its windows."""
    task = rnnode.training.sunspots_task(window=sunspots.WINDOW, dtype=torch.float64)
    z = np.concatenate([task.x_train[0, :, 0].numpy(), task.y_train[:, 0].numpy()])
    return task, z


@pytest.mark.parametrize("order", [1, 2, 9, 20])
def test_fit_ar_is_statsmodels_autoreg(sunspot_data, order):
    task, z = sunspot_data
    # hold_back = WINDOW: AutoReg fits the same targets z_20..z_{split-1} as the windows.
    reference = AutoReg(z, lags=order, trend="c", hold_back=sunspots.WINDOW).fit().params
    coefficients = sunspots.fit_ar(task.x_train, task.y_train, order)
    np.testing.assert_allclose(coefficients, reference, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        sunspots.predict_ar(task.x_train, coefficients),
        AutoReg(z, lags=order, trend="c", hold_back=sunspots.WINDOW).fit().fittedvalues,
        rtol=1e-10,
        atol=1e-12,
    )


def test_aic_order_is_statsmodels_choice(sunspot_data):
    task, z = sunspot_data
    order, criteria = sunspots.aic_order(task.x_train, task.y_train, sunspots.WINDOW)
    chosen = ar_select_order(z, sunspots.WINDOW, ic="aic", trend="c").ar_lags
    assert list(chosen) == list(range(1, order + 1))
    assert len(criteria) == sunspots.WINDOW and criteria[order - 1] == min(criteria)


def test_fit_ar_rejects_an_order_beyond_the_window(sunspot_data):
    task, _ = sunspot_data
    with pytest.raises(ValueError, match=r"^order: expected 1\.\.20"):
        sunspots.fit_ar(task.x_train, task.y_train, 21)


def test_sunspots_quick_numbers_against_the_raw_series(quick_runs, sunspot_data):
    m = quick_runs[0]["sunspots"]
    raw = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
    split = int(round(0.8 * len(raw)))
    # Persistence in sunspot numbers, straight from statsmodels' series.
    persistence = math.sqrt(np.mean((raw[split:] - raw[split - 1 : -1]) ** 2))
    scale = raw[:split].std()
    spots = m["sunspots"]
    assert spots["rmse_in_units"]["persistence"] == pytest.approx(persistence, rel=1e-12)
    assert spots["rmse_persistence"] == pytest.approx(persistence / scale, rel=1e-12)
    chosen = ar_select_order(sunspot_data[1], sunspots.WINDOW, ic="aic", trend="c").ar_lags
    assert spots["ar_order"] == len(chosen)
    for series in sunspots.SERIES:
        r, claims = m[series], m["claims"]
        odernn = np.array(r["rmse_odernn"])
        assert_seed_finding(
            claims[f"{series}_odernn_beats_persistence"], odernn - r["rmse_persistence"]
        )
        assert_seed_finding(claims[f"{series}_odernn_comparable"], odernn / r["rmse_baseline"])
        # The statsmodels baseline against persistence: a paired bootstrap over test targets.
        target, forecasts = np.array(r["test_target"]), r["forecasts"]
        gain = (np.array(forecasts["baseline"]) - target) ** 2 - (
            np.array(forecasts["persistence"]) - target
        ) ** 2
        claim = claims[f"{series}_baseline_beats_persistence"]
        assert claim["value"] == pytest.approx(gain.mean(), rel=1e-12)
        assert claim["interval"] == pytest.approx(list(bootstrap_interval(gain)), rel=1e-12)
        # Every seed's RMSE is its forecasts' RMSE.
        for forecast, value in zip(r["forecast_odernn_per_seed"], odernn, strict=True):
            assert value == pytest.approx(sunspots.rmse(forecast, target), rel=1e-12)


def test_increments_put_every_co2_target_in_the_training_range():
    """On levels, most of CO2's test targets lie above every training target; on increments,
    every test target lies inside the training targets' range."""
    task = sunspots.task_of("co2")
    assert float((task.y_test > task.y_train.max()).double().mean()) > 0.5
    shifted, d = sunspots.increments(task)
    assert shifted.y_train.std() == pytest.approx(1.0, rel=1e-12)
    assert (
        shifted.y_train.min() < shifted.y_test.min() < shifted.y_test.max() < shifted.y_train.max()
    )
    # The transform inverts: last value + d * increment is the target.
    back = task.x_test[:, -1, 0] + d * shifted.y_test[:, 0]
    torch.testing.assert_close(back, task.y_test[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_a_point_is_a_pure_function_of_its_settings_and_seed(study):
    """Same point, same numbers (on the CPU), bit for bit: seeds are set inside the point."""
    p = {"settings": {**study.settings(True), "steps": 3}, "seed": 4}
    if study is sunspots:
        p["series"] = "co2"
    first = study.point(p)
    torch.manual_seed(123)  # the global generator's state must not matter
    assert json_bytes(study.point(p)) == json_bytes(first)
