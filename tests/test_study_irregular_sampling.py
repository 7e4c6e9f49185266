"""The irregular-sampling study: its masks and inputs against numpy, its continuous model against
scipy's solve_ivp, its delta-t model against torch.nn.GRU, and its quick run's claims recomputed
from the metrics (never which way a finding comes out).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import torch

from rnnode.studies import irregular_sampling as study
from rnnode.studies import read_json
from rnnode.studies._claims import check_claims
from rnnode.studies._stats import mean_test


@pytest.fixture(scope="module")
def quick_run(study_run):
    folder, metrics = study_run("irregular_sampling")  # made once per session
    return metrics, folder


def _synthetic(length=120, seed=0):
    return np.random.default_rng(seed).normal(size=length).cumsum() + 10.0


# -- masks and inputs ----------------------------------------------------------------------------


def test_each_window_keeps_its_own_strictly_increasing_half():
    window, count = 32, 200
    kept = study.observation_times(count, window, seed=4)
    assert kept.shape == (count, window // 2)  # removed fraction: exactly one half
    assert (np.diff(kept, axis=1) > 0).all()
    assert kept.min() >= 0 and kept.max() < window
    assert len({tuple(row) for row in kept}) == count  # every sequence its own times
    np.testing.assert_array_equal(kept, study.observation_times(count, window, seed=4))
    assert not np.array_equal(kept, study.observation_times(count, window, seed=5))


@pytest.mark.parametrize(("window", "keep", "count"), [(32, 0.15, 5), (36, 0.15, 5), (32, 0.5, 16)])
def test_the_sparse_regime_keeps_its_share_of_each_window(window, keep, count):
    assert study.kept_count(window, keep) == count == max(2, round(window * keep))
    kept = study.observation_times(300, window, seed=1, keep=keep)
    assert kept.shape == (300, count)
    assert (np.diff(kept, axis=1) > 0).all() and kept.min() >= 0 and kept.max() < window
    # every offset is drawn about equally often (uniform masks): 300 * count / window each
    freq = np.bincount(kept.ravel(), minlength=window) / (300 * count / window)
    assert 0.6 < freq.min() and freq.max() < 1.4
    assert study.regime(keep) == f"keep{round(100 * keep)}"
    with pytest.raises(ValueError, match="keep"):
        study.kept_count(window, 0.0)


def test_the_windows_hold_the_kept_values_as_increments_and_a_fixed_horizon_target():
    raw = _synthetic()
    data = study.irregular_data("sunspots", seed=3, raw=raw)
    W, n = study.WINDOWS["sunspots"], study.WINDOWS["sunspots"] // 2
    split = int(round(0.8 * len(raw)))
    z = (raw - raw[:split].mean()) / raw[:split].std()
    starts = np.arange(len(raw) - W)
    kept = study.observation_times(len(starts), W, seed=3)
    test = starts + W >= split
    x = data.task.x_test.numpy()
    assert x.shape == (test.sum(), n + 1, 3)
    last = z[starts[test, None] + kept[test]][:, -1]
    np.testing.assert_allclose(data.last_test, last, rtol=0, atol=1e-15)
    np.testing.assert_allclose(data.target_test, z[starts[test] + W], rtol=0, atol=1e-15)
    values = (z[starts[test, None] + kept[test]] - last[:, None]) / data.d
    np.testing.assert_allclose(x[:, :n, 0], values, rtol=0, atol=1e-14)
    assert (x[:, n, 0] == 0).all()  # the placeholder at the forecast time
    np.testing.assert_array_equal(x[:, :n, 1], kept[test])
    assert (x[:, n, 1] == W).all()
    y = (z[starts[test] + W] - last) / data.d
    np.testing.assert_allclose(data.task.y_test[:, 0].numpy(), y, rtol=0, atol=1e-14)
    # Training targets all precede the test targets.
    assert len(data.task.y_train) == (~test).sum()


def test_the_delta_t_input_is_the_gap_since_the_previous_observation():
    data = study.irregular_data("sunspots", seed=1, raw=_synthetic())
    x = data.task.x_test[:5]
    times = x[..., 1].numpy()
    inputs, t = study.IrregularForecaster("delta_t", 4).solve_inputs(x)
    assert t is None
    previous = np.concatenate([times[:, :1] - 1, times[:, :-1]], axis=1)
    np.testing.assert_allclose(inputs[..., 1].numpy(), times - previous, rtol=0, atol=0)
    np.testing.assert_array_equal(inputs[..., 0].numpy(), x[..., 0].numpy())
    # The continuous model gets the times themselves, t_0 = t_1 - 1 first.
    value, t = study.IrregularForecaster("continuous", 4).solve_inputs(x)
    expected = np.concatenate([times[:, :1] - 1, times], axis=1)
    np.testing.assert_array_equal(t.numpy(), expected)
    assert value.shape == (5, x.shape[1], 1)


# -- the models' computations --------------------------------------------------------------------


def _gru_rate(field, x, h, tau):
    """(1 - z)(n - h) / tau with torch.nn.GRU's gates (r, z, n), in numpy."""
    wi, wh = field.weight_ih.detach().numpy(), field.weight_hh.detach().numpy()
    bi, bh = field.bias_ih.detach().numpy(), field.bias_hh.detach().numpy()
    gi, gh = wi @ x + bi, wh @ h + bh
    H = len(h)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    r, z = sig(gi[:H] + gh[:H]), sig(gi[H : 2 * H] + gh[H : 2 * H])
    n = np.tanh(gi[2 * H :] + r * gh[2 * H :])
    return (1 - z) * (n - h) / tau


def test_the_continuous_forecast_is_the_gru_ode_solved_by_scipy_with_the_last_value_held():
    """Each sequence alone: x_k held on [t_k, t_{k+1}), 0 on [t_0, t_1); DOP853 to the forecast
    time; RK4 at step 0.1 agrees to 1e-10 (seen: 9e-12; its global error is O(step^4))."""
    data = study.irregular_data("sunspots", seed=2, raw=_synthetic())
    x = data.task.x_test[:3]
    torch.manual_seed(0)
    model = study.IrregularForecaster("continuous", 3, tau=2.0, method="rk4", step_size=0.1)
    with torch.no_grad():
        got = model(x)[:, 0].numpy()
    field = model.rnn.field(0)
    head_w, head_b = model.head.weight.detach().numpy()[0], float(model.head.bias.detach())
    for b in range(3):
        values, times = x[b, :, 0].numpy(), x[b, :, 1].numpy()
        knots = np.concatenate([[times[0] - 1], times])
        held = np.concatenate([[0.0], values[:-1]])  # the input on each interval
        h = np.zeros(3)
        for k in range(len(knots) - 1):
            solved = scipy.integrate.solve_ivp(
                lambda s, h, u=held[k]: _gru_rate(field, np.array([u]), h, 2.0),
                (knots[k], knots[k + 1]),
                h,
                method="DOP853",
                rtol=1e-12,
                atol=1e-13,
            )
            h = solved.y[:, -1]
        assert abs(got[b] - (head_w @ h + head_b)) < 1e-10


def test_the_delta_t_model_is_torch_gru_on_value_and_gap():
    data = study.irregular_data("sunspots", seed=2, raw=_synthetic())
    x = data.task.x_test[:4]
    torch.manual_seed(0)
    model = study.IrregularForecaster("delta_t", 5)
    gru = torch.nn.GRU(2, 5, batch_first=True)
    gru.load_state_dict(model.rnn.to_torch().state_dict())
    inputs = torch.stack([x[..., 0], x[..., 2]], dim=-1)
    with torch.no_grad():
        expected = model.head(gru(inputs)[0][:, -1])
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-13)


def test_the_loss_change_compares_the_last_tenth_with_the_tenth_before():
    curve = [5.0] * 80 + [2.0] * 10 + [1.0] * 10
    assert study.loss_change(curve) == pytest.approx(-0.5, abs=1e-15)


# -- the quick run -------------------------------------------------------------------------------


def _regimes(metrics):
    for series in study.settings(True)["series"]:
        for keep in study.settings(True)["keep"]:
            yield series, study.regime(keep), metrics[series][study.regime(keep)]


@pytest.mark.slow
def test_quick_run_writes_every_claim_with_value_interval_and_control(quick_run):
    metrics, folder = quick_run
    assert read_json(folder / "metrics.json") == metrics
    claims = metrics["claims"]
    check_claims(claims)
    cfg = study.settings(True)
    expected = {"delta_t_is_torch_gru"} | {
        f"{s}_{study.regime(k)}_{name}"
        for s in cfg["series"]
        for k in cfg["keep"]
        for name in (
            "continuous_beats_delta_t",
            "continuous_beats_persistence",
            "delta_t_beats_persistence",
        )
    }
    assert set(claims) == expected
    assert claims["delta_t_is_torch_gru"]["holds"]
    for name, claim in claims.items():
        if claim["kind"] != "finding":
            continue
        assert claim["seeds"] == cfg["seeds"]
        assert claim["control"]["value"] is not None and claim["control"]["label"]
        assert len(claim["interval"]) == 2
        assert claim["effect"] == study.EFFECT[name.split("_keep")[0]]
        assert "test items" in claim["test"]  # seeds x test targets, crossed
    for png in ("forecasts.png", "rmse.png"):
        assert (folder / png).is_file() and (folder / png).with_suffix(".pdf").is_file()


@pytest.mark.slow
def test_quick_run_findings_recompute_from_the_per_target_squared_errors(quick_run):
    metrics, _ = quick_run
    for series, tag, r in _regimes(metrics):
        target = np.asarray(r["target"])
        sq = {kind: (np.asarray(r["forecasts"][kind]) - target) ** 2 for kind in study.MODELS}
        sq["persistence"] = (np.asarray(r["persistence_forecasts"]) - target) ** 2
        for kind in (*study.MODELS, "persistence"):  # the per-seed RMSEs are the same numbers
            np.testing.assert_allclose(
                np.sqrt(sq[kind].mean(axis=1)),
                r["rmse"][kind if kind != "persistence" else "persistence"],
                rtol=1e-12,
            )
        pairs = {
            "continuous_beats_delta_t": ("continuous", "delta_t"),
            "continuous_beats_persistence": ("continuous", "persistence"),
            "delta_t_beats_persistence": ("delta_t", "persistence"),
        }
        for name, (a, b) in pairs.items():
            claim = metrics["claims"][f"{series}_{tag}_{name}"]
            diff = sq[a] - sq[b]
            assert diff.shape == (study.settings(True)["seeds"], target.size)
            assert claim["value"] == pytest.approx(diff.mean(), abs=1e-15)
            assert claim["control"]["value"] == pytest.approx(sq[b].mean(), abs=1e-15)
            expected = mean_test(diff, 0.0)
            assert [float(v) for v in claim["interval"]] == pytest.approx(
                list(expected.interval), rel=1e-12
            )
            assert claim["p_value"] == pytest.approx(expected.p_value, abs=1e-15)


@pytest.mark.slow
def test_quick_run_rmses_recompute_from_the_saved_forecasts(quick_run):
    """First seed: each RMSE from its forecasts and the series' own values (statsmodels)."""
    metrics, _ = quick_run
    for series, _, m in _regimes(metrics):
        first = m["first_seed"]
        offset, scale = m["normalization"]
        raw = study.series_values(series)
        target = (raw[np.asarray(first["target_index"])] - offset) / scale
        np.testing.assert_allclose(first["target"], target, rtol=0, atol=1e-12)
        for name in ("continuous", "delta_t", "persistence"):
            rmse = np.sqrt(np.mean((np.asarray(first[name]) - target) ** 2))
            assert m["rmse"][name][0] == pytest.approx(rmse, abs=1e-12)
        assert all(np.isfinite(m["loss_change"][kind]).all() for kind in study.MODELS)
        # The training history's NFE: Euler, one evaluation per interval (n + 1 of them), for
        # the delta-t GRU; RK4 with at least one step of 4 evaluations per interval otherwise.
        intervals = m["kept"] + 1
        seeds = study.settings(True)["seeds"]
        assert m["nfe_per_step"]["delta_t"] == [float(intervals)] * seeds
        assert all(v >= 4 * intervals for v in m["nfe_per_step"]["continuous"])
