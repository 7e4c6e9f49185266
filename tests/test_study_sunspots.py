"""The sunspots study: its helpers against independent references (numpy, scipy, statsmodels)
and its quick run's numbers (through the real runner, once per session). No test asserts which
way a finding comes out. (A quick run's files and each claim's evidence are tested for every
study in tests/test_studies.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from statsmodels.tsa.ar_model import AutoReg, ar_select_order

import rnnode
from rnnode.studies import (
    sunspots,
)
from rnnode.studies._run import json_bytes
from rnnode.studies._stats import mean_test
from tests.helpers import assert_seed_finding

STUDIES = (sunspots,)


@pytest.fixture(scope="module")
def quick_runs(study_run):
    """Metrics of the study's quick run (made once per session), and the folder holding it."""
    folder, metrics = study_run("sunspots")
    return {"sunspots": metrics}, folder.parent


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


@pytest.mark.slow
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
        target, forecasts = np.array(r["test_target"]), r["forecasts"]
        per_seed = (np.array(r["forecast_odernn_per_seed"]) - target) ** 2  # (seeds, targets)
        sq = {k: (np.array(forecasts[k]) - target) ** 2 for k in ("persistence", "baseline")}
        # Seeds x test targets, crossed: the ODERNN's findings from its per-target errors.
        assert_seed_finding(
            claims[f"{series}_odernn_beats_persistence"],
            per_seed - sq["persistence"],
            control=sq["persistence"].mean(),
        )
        comparable = claims[f"{series}_odernn_comparable"]
        assert_seed_finding(comparable, per_seed - sunspots.BAND**2 * sq["baseline"])
        assert comparable["test"].startswith("Student-t over seeds x")
        # The statsmodels baseline against persistence: Student-t over test targets.
        gain = sq["baseline"] - sq["persistence"]
        claim = claims[f"{series}_baseline_beats_persistence"]
        expected = mean_test(gain, 0.0)
        assert claim["value"] == pytest.approx(gain.mean(), rel=1e-12)
        assert claim["interval"] == pytest.approx(list(expected.interval), rel=1e-12)
        assert claim["p_value"] == pytest.approx(expected.p_value, rel=1e-12)
        for name in ("odernn_beats_persistence", "baseline_beats_persistence", "odernn_comparable"):
            assert claims[f"{series}_{name}"]["effect"] == sunspots.EFFECT[series]
        # Every seed's RMSE is its forecasts' RMSE.
        np.testing.assert_allclose(odernn, np.sqrt(per_seed.mean(axis=1)), rtol=1e-12)


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


@pytest.mark.slow  # trains the point twice: seconds
@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_a_point_is_a_pure_function_of_its_settings_and_seed(study):
    """Same point, same numbers (on the CPU), bit for bit: seeds are set inside the point."""
    p = {"settings": {**study.settings(True), "steps": 3}, "seed": 4}
    if study is sunspots:
        p["series"] = "co2"
    first = study.point(p)
    torch.manual_seed(123)  # the global generator's state must not matter
    assert json_bytes(study.point(p)) == json_bytes(first)
