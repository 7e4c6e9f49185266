"""The timescales study: its quick run through the real runner, and its machinery against
independent references (brute-force enumeration of the chain's paths, closed-form Jacobians and
gains of linear layers, scipy's Spearman). No test asserts which way a finding comes out.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

import rnnode
from rnnode.studies import timescales as ts
from rnnode.studies._claims import check_claims


@pytest.fixture(scope="module")
def quick(study_run):
    return study_run("timescales")  # (folder, metrics), made once per session


# -- the task's score -------------------------------------------------------------------


def test_r_squared_leaves_out_the_burn_in():
    y = np.random.default_rng(3).standard_normal((4, 50, 2))
    p = y.copy()
    p[:, : ts.BURN_IN] += 100.0  # errors inside the burn-in do not count
    np.testing.assert_allclose(ts.r_squared(p, y), [1.0, 1.0], rtol=0, atol=1e-15)
    assert ts.r_squared(np.zeros_like(y), y)[0] < 0.05


# -- the model ----------------------------------------------------------------------------------


def test_layer_states_equal_a_hand_euler_loop_and_tau_stays_above_one():
    rnn = ts.make_stack(3, 5, seed=4)
    x = torch.randn(30, 2, 1)
    states = ts.layer_states(rnn, x)
    source = x
    for l, field in enumerate(rnn.layers):
        w_ih, w_hh = field.weight_ih.detach(), field.weight_hh.detach()
        b = (field.bias_ih + field.bias_hh).detach()
        tau, h, loop = field.tau.detach(), torch.zeros(2, 5), []
        for u in source:  # h_k = h_{k-1} + (tanh(W_ih u_k + W_hh h_{k-1} + b) - h_{k-1}) / tau
            h = h + (torch.tanh(u @ w_ih.T + h @ w_hh.T + b) - h) / tau
            loop.append(h)
        torch.testing.assert_close(states[l], torch.stack(loop), rtol=0, atol=1e-12)
        assert tau.shape == (5,) and bool((tau > 1).all()) and bool((tau <= 100).all())
        source = states[l]
    with torch.no_grad():
        rnn.layers[0].raw_tau.fill_(-50.0)
    assert bool((rnn.layers[0].tau >= 1).all())  # 1 + softplus(-50) rounds to 1, never below


# -- measurements against closed forms ----------------------------------------------------------


def _linear_layer(weight_hh: np.ndarray) -> rnnode.ODERNN:
    """One linear layer h_k = W_hh h_{k-1} + x_k (Euler step 1; W_ih = I, no bias)."""
    n = weight_hh.shape[0]
    model = rnnode.ODERNN(n, n, 1, cell="linear", bias=False)
    field = model.layers[0]
    with torch.no_grad():
        field.weight_hh.copy_(torch.as_tensor(weight_hh, dtype=field.weight_hh.dtype))
        field.weight_ih.copy_(torch.eye(n, dtype=field.weight_ih.dtype))
    return model


def test_local_timescale_of_a_linear_layer_with_known_spectral_radius():
    rng = np.random.default_rng(5)
    basis = rng.standard_normal((3, 3))
    # Eigenvalues 0.8 e^{+-0.5i} and -0.3: spectral radius 0.8.
    block = 0.8 * np.array([[math.cos(0.5), -math.sin(0.5)], [math.sin(0.5), math.cos(0.5)]])
    a = np.zeros((3, 3))
    a[:2, :2], a[2, 2] = block, -0.3
    layer = _linear_layer(basis @ a @ np.linalg.inv(basis))
    h, u = torch.randn(7, 3), torch.randn(7, 3)
    rho = ts.spectral_radii(layer, h, u)
    np.testing.assert_allclose(rho, 0.8, rtol=1e-12)
    assert ts.local_timescale(rho) == pytest.approx(-1 / math.log(0.8), rel=1e-12)
    assert ts.local_timescale(1.5) == pytest.approx(-1 / math.log(ts.RHO_CAP), rel=1e-12)


def test_spectral_radius_of_the_unit_tau_field_equals_the_closed_form_jacobian():
    rnn = ts.make_stack(2, 4, seed=1)
    rnn.layers[1] = field = ts.UnitTauField(4, 4, torch.tensor([1.5, 2.0, 10.0, 50.0]))
    h, u = torch.randn(5, 4), torch.randn(5, 4)
    rho = ts.spectral_radii(ts.single_layer(rnn, 1), h, u)
    with torch.no_grad():
        z = u @ field.weight_ih.T + field.bias_ih + h @ field.weight_hh.T + field.bias_hh
        phi = torch.tanh(z)
        inv_tau = 1 / field.tau
    for i in range(5):
        # J = I + diag(1 / tau) (diag(1 - phi^2) W_hh - I)
        d = (1 - phi[i] ** 2).numpy()
        w = field.weight_hh.detach().numpy()
        jac = np.eye(4) + inv_tau.numpy()[:, None] * (d[:, None] * w - np.eye(4))
        assert rho[i] == pytest.approx(np.abs(np.linalg.eigvals(jac)).max(), rel=1e-12)


def test_homogeneous_init_has_one_tau_and_the_spread_inits_weights():
    spread = ts.make_stack(3, 5, seed=2, init="spread")
    homogeneous = ts.make_stack(3, 5, seed=2, init="homogeneous")
    for a, b in zip(spread.layers, homogeneous.layers, strict=True):
        torch.testing.assert_close(b.tau, torch.full((5,), ts.TAU_HOMOGENEOUS), rtol=1e-12, atol=0)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
        assert b.raw_tau.requires_grad  # learnable
    with pytest.raises(ValueError, match="init"):
        ts.make_stack(3, 5, seed=2, init="uniform")


def test_single_timescale_task_switches_both_states_at_one_rate():
    assert ts.TASKS["one_level"]["slow_switch"] == ts.TASKS["one_level"]["fast_switch"]
    assert ts.ONE_SWITCH == pytest.approx(math.sqrt(ts.SLOW_SWITCH * ts.FAST_SWITCH), rel=1e-15)
    cfg = {"num_train": 4, "num_valid": 2, "num_eval": 64, "length": 2000}
    _, held = ts.hmm_task(cfg, 0, "one_level")
    y = np.asarray(held["y"])
    flips = (np.diff(y, axis=1) != 0).mean(axis=(0, 1))  # per state, share of steps that flip
    np.testing.assert_allclose(flips, ts.ONE_SWITCH, atol=0.004)  # 128,000 draws: se 0.0008


# -- per-unit and integrated timescales ---------------------------------------------------------


def test_unit_timescales_are_each_units_own_autocorrelation_time():
    rng = np.random.default_rng(1)
    T, B = 3000, 2
    a = np.array([0.5, 0.9, 0.97])
    h = np.zeros((T, B, 3))
    for k in range(1, T):  # AR(1) units: autocorrelation a^lag, 1/e time -1/ln a
        h[k] = a * h[k - 1] + rng.standard_normal((B, 3))
    states = torch.as_tensor(np.concatenate([h, np.ones((T, B, 1))], axis=-1))  # a frozen unit
    times, edges = ts.unit_timescales(states, 200)
    assert times.shape == (3,) and not edges.any()  # the frozen unit is left out
    for i in range(3):
        lag, _ = rnnode.analysis.decay_time(
            rnnode.analysis.autocorrelation(states[..., i : i + 1], 200)
        )
        assert times[i] == lag
    np.testing.assert_allclose(times, -1 / np.log(a), rtol=0.25)  # sampling error of 3000 steps


def test_integrated_response_of_an_exponential_is_its_time_constant():
    tau = 7.0
    curve = 3 * np.exp(-np.arange(400) / tau)
    # trapezoid rule on exp(-k / tau): (1 + e^{-1/tau}) / (2 (1 - e^{-1/tau})) = tau + O(1/tau)
    q = math.exp(-1 / tau)
    expected = (1 + q) / (2 * (1 - q)) - (q**399) / 2 * (1 + q) / (1 - q)
    assert ts.integrated_response(curve) == pytest.approx(expected, rel=1e-12)
    assert ts.integrated_response(curve) == pytest.approx(tau, rel=2e-3)


# -- statistics on synthetic inputs -------------------------------------------------------------


def test_layer_spearman():
    assert ts.layer_spearman([1.0, 2.0, 5.0, 9.0]) == pytest.approx(1.0)
    assert ts.layer_spearman([9.0, 5.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert ts.layer_spearman([3.0, 3.0, 3.0, 3.0]) == 0.0
    values = np.array([1.0, 4.0, 2.0, 8.0])
    assert ts.layer_spearman(values) == pytest.approx(
        stats.spearmanr([1, 2, 3, 4], values).statistic, rel=1e-14
    )


def test_statistics_on_synthetic_runs():
    """Trained timescales rise, untrained fall: rho = +1 and -1, difference 2 in every seed."""
    rising = {m: [1.0, 2.0, 3.0, 4.0] for m in ts.MEASURES}
    falling = {m: [4.0, 3.0, 2.0, 1.0] for m in ts.MEASURES}
    runs = [
        {
            "trained": {**rising, "band_centre": [1.0, 0.5, 0.2, 0.1]},
            "untrained": {**falling, "band_centre": [0.3, 0.3, 0.3, 0.3]},
        }
        for _ in range(5)
    ]
    out = ts.statistics(runs)
    for m in ts.MEASURES:
        assert out[m]["trained"]["mean"] == pytest.approx(1.0)
        assert out[m]["untrained"]["mean"] == pytest.approx(-1.0)
        np.testing.assert_allclose(out[m]["trained_minus_untrained"]["per_seed"], 2.0)
    assert out["band_centre"]["trained"]["mean"] == pytest.approx(-1.0)
    spread = np.std(np.log([1.0, 0.5, 0.2, 0.1]))
    assert out["spread"]["trained"]["mean"] == pytest.approx(spread, rel=1e-14)
    assert out["spread"]["untrained"]["mean"] == 0.0


# -- the quick run ------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_run_records_every_claim_with_its_evidence(quick):
    folder, m = quick
    assert json.loads((folder / "metrics.json").read_text()) == m
    for name in ("timescale_hierarchy", "filter_bank", "theory"):
        assert (folder / f"{name}.png").exists() and (folder / f"{name}.pdf").exists()
    check_claims(m["claims"])
    kinds = {c["kind"] for c in m["claims"].values()}
    assert kinds == {"verification", "finding"}
    for name, claim in m["claims"].items():
        if claim["kind"] == "verification":
            # The formula checks are verifications: they must hold.
            assert claim["holds"], name
            assert claim["value"] < claim["bound"]
            continue
        assert isinstance(claim["value"], float)
        lo, hi = (float(v) for v in claim["interval"])  # JSON keeps +-inf as strings
        assert lo <= claim["value"] <= hi or not math.isfinite(lo)
        assert claim["control"]["label"] and claim["control"]["value"] is not None
        assert claim["seeds"] >= 2 and claim["bound"] == 0.0
        assert claim["verdict"] in ("supported", "not supported", "inconclusive")
    findings = [k for k, c in m["claims"].items() if c["kind"] == "finding"]
    assert len(findings) == len(ts.HIERARCHY) * (len(ts.MEASURES) + 1) + len(ts.SPREAD_PAIRS)


@pytest.mark.slow
def test_quick_run_keeps_every_seed_and_recomputes_its_statistics(quick):
    from rnnode.studies._stats import mean_test

    _, m = quick
    cfg = m["settings"]
    assert set(m["conditions"]) == set(ts.CONDITIONS)
    for name, cond in m["conditions"].items():
        assert (cond["init"], cond["readout"], cond["task"]) == ts.CONDITIONS[name]
        assert len(cond["runs"]) == cfg["seeds"]
        used = cond["analysed_seeds"]
        chosen = [r for s, r in zip(m["seeds"], cond["runs"], strict=True) if s in used]
        for r in cond["runs"]:
            for which in ("trained", "untrained"):
                a = r[which]
                assert np.array(a["gain"]).shape == (cfg["layers"], len(cfg["probe_omegas"]))
                assert np.array(a["tau_units"]).shape == (cfg["layers"], cfg["hidden"])
                assert min(min(t) for t in a["tau_units"]) > 1
                for l, g in enumerate(a["gain"]):
                    top = int(np.argmax(g))
                    assert a["preferred_edge"][l] == (top in (0, len(g) - 1))
                    assert a["integrated"][l] == pytest.approx(
                        ts.integrated_response(a["perturbation_curve"][l]), rel=1e-12
                    )
                    assert a["tau"][l] == pytest.approx(np.median(a["tau_units"][l]), rel=1e-12)
            if cond["init"] == "homogeneous":
                np.testing.assert_allclose(r["untrained"]["tau_units"], ts.TAU_HOMOGENEOUS)
            assert r["qualifies"] == all(
                x >= ts.QUALIFY * o for x, o in zip(r["r2"], r["optimum_r2"], strict=True)
            )
        again = json.loads(json.dumps(rnnode.studies._run.plain(ts.statistics(chosen))))
        assert again == cond["statistics"]
        if name not in ts.HIERARCHY:
            continue
        for measure in (*ts.MEASURES, "band_centre"):
            verb = "falls" if measure == "band_centre" else "rises"
            claim = m["claims"][f"{name}_{measure}_{verb}"]
            diff = np.array([ts.layer_spearman(r["trained"][measure]) for r in chosen]) - np.array(
                [ts.layer_spearman(r["untrained"][measure]) for r in chosen]
            )
            test = mean_test(diff, 0.0)
            assert claim["value"] == pytest.approx(test.value, rel=1e-12, abs=1e-15)
            assert claim["p_value"] == pytest.approx(test.p_value, rel=1e-9, abs=1e-15)
            assert claim["control"]["value"] == pytest.approx(
                cond["statistics"][measure]["untrained"]["mean"], rel=1e-12, abs=1e-15
            )
    for init, (two, one) in ts.SPREAD_PAIRS.items():
        fb = m["filter_bank"][init]
        spreads = {}
        for k in (two, one):
            cond = m["conditions"][k]
            spreads[k] = [
                ts.log_spread(r["trained"]["band_centre"])
                for s, r in zip(m["seeds"], cond["runs"], strict=True)
                if s in fb["analysed_seeds"]
            ]
            np.testing.assert_allclose(fb[k], spreads[k], rtol=1e-12)
        test = mean_test(np.subtract(spreads[two], spreads[one]), 0.0)
        claim = m["claims"][f"{init}_filter_bank"]
        assert claim["value"] == pytest.approx(test.value, rel=1e-12, abs=1e-15)
        assert claim["p_value"] == pytest.approx(test.p_value, rel=1e-9, abs=1e-15)


@pytest.mark.slow
def test_quick_points_are_kept_apart_and_counted(quick):
    folder, m = quick
    assert m["points_reused"] == 0
    assert m["points"] == len(ts.CONDITIONS) * m["settings"]["seeds"]
    assert len(list((folder / "points-quick").glob("*.json"))) == m["points"]
    assert not (folder / "points").exists()
