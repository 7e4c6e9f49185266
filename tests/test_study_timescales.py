"""The timescales study: its quick run through the real runner, and its machinery against
independent references (brute-force enumeration of the chain's paths, closed-form Jacobians and
gains of linear layers, scipy's Spearman). No test asserts which way a finding comes out.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

import rnnode
from rnnode.studies import run_study
from rnnode.studies import timescales as ts


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    metrics = run_study(ts, out=out, quick=True, seed=0, workers=1, show_progress=False)
    return out / "timescales-quick", metrics  # quick runs: OUT/NAME-quick


# -- the chain and its filter -------------------------------------------------------------------


def brute_force_posterior(x: np.ndarray) -> np.ndarray:
    """E[(s_k, f_k) | x_1..x_k] by summing the joint probability of every path of the chain."""
    P = ts.transition_matrix()
    means = ts.STATES.sum(-1)
    T = len(x)
    out = np.zeros((T, 2))
    for k in range(1, T + 1):
        total, weighted = 0.0, np.zeros(2)
        for path in itertools.product(range(4), repeat=k):
            p = 0.25
            for j in range(1, k):
                p *= P[path[j - 1], path[j]]
            for j in range(k):
                p *= math.exp(-0.5 * ((x[j] - means[path[j]]) / ts.NOISE) ** 2)
            total += p
            weighted += p * ts.STATES[path[k - 1]]
        out[k - 1] = weighted / total
    return out


def test_forward_filter_equals_brute_force_enumeration():
    x, _ = ts.hmm_sample(3, 6, np.random.default_rng(1))
    filtered = ts.hmm_filter(x)
    for i in range(3):
        np.testing.assert_allclose(filtered[i], brute_force_posterior(x[i]), rtol=0, atol=1e-12)


def test_chain_switch_rates_and_observation():
    x, states = ts.hmm_sample(400, 400, np.random.default_rng(2))
    switches = (np.diff(states, axis=1) != 0).mean((0, 1))
    # 400 * 399 transitions: binomial standard errors 1.2e-4 (slow) and 3.4e-4 (fast).
    assert switches[0] == pytest.approx(ts.SLOW_SWITCH, abs=1e-3)
    assert switches[1] == pytest.approx(ts.FAST_SWITCH, abs=2e-3)
    residual = x - states.sum(-1)
    assert residual.std() == pytest.approx(ts.NOISE, rel=1e-2)


def test_r_squared_leaves_out_the_burn_in():
    y = np.random.default_rng(3).standard_normal((4, 50, 2))
    p = y.copy()
    p[:, : ts.BURN_IN] += 100.0  # errors inside the burn-in do not count
    np.testing.assert_allclose(ts.r_squared(p, y), [1.0, 1.0], rtol=0, atol=1e-15)
    assert ts.r_squared(np.zeros_like(y), y)[0] < 0.05


# -- the model ----------------------------------------------------------------------------------


def test_stack_loop_equals_odernn_solve_and_tau_stays_above_one():
    rnn = ts.make_stack(3, 5, seed=4)
    x = torch.randn(30, 2, 1)
    loop = ts.layer_states(rnn, x)
    solved = rnn.solve(x).states  # (layers, directions, T + 1, batch, hidden)
    for l in range(3):
        torch.testing.assert_close(loop[l], solved[l, 0, 1:], rtol=0, atol=1e-12)
        tau = rnn.layers[l].tau.detach()
        assert tau.shape == (5,) and bool((tau > 1).all()) and bool((tau <= 100).all())
    with torch.no_grad():
        rnn.layers[0].raw_tau.fill_(-50.0)
    assert bool((rnn.layers[0].tau >= 1).all())  # 1 + softplus(-50) rounds to 1, never below


# -- measurements against closed forms ----------------------------------------------------------


def _linear_field(weight_hh: np.ndarray) -> rnnode.LinearField:
    n = weight_hh.shape[0]
    field = rnnode.LinearField(n, n, bias=False)
    with torch.no_grad():
        field.weight_hh.copy_(torch.as_tensor(weight_hh, dtype=field.weight_hh.dtype))
        field.weight_ih.copy_(torch.eye(n, dtype=field.weight_ih.dtype))
    return field


def test_local_timescale_of_a_linear_layer_with_known_spectral_radius():
    rng = np.random.default_rng(5)
    basis = rng.standard_normal((3, 3))
    # Eigenvalues 0.8 e^{+-0.5i} and -0.3: spectral radius 0.8.
    block = 0.8 * np.array([[math.cos(0.5), -math.sin(0.5)], [math.sin(0.5), math.cos(0.5)]])
    a = np.zeros((3, 3))
    a[:2, :2], a[2, 2] = block, -0.3
    field = _linear_field(basis @ a @ np.linalg.inv(basis))
    h, u = torch.randn(7, 3), torch.randn(7, 3)
    rho = ts.spectral_radii(field, h, u)
    np.testing.assert_allclose(rho, 0.8, rtol=1e-12)
    assert ts.local_timescale(rho) == pytest.approx(-1 / math.log(0.8), rel=1e-12)
    assert ts.local_timescale(1.5) == pytest.approx(-1 / math.log(ts.RHO_CAP), rel=1e-12)


def test_spectral_radius_of_the_unit_tau_field_equals_the_closed_form_jacobian():
    field = ts.UnitTauField(3, 4, torch.tensor([1.5, 2.0, 10.0, 50.0]))
    h, u = torch.randn(5, 4), torch.randn(5, 4)
    rho = ts.spectral_radii(field, h, u)
    with torch.no_grad():
        phi = torch.tanh(u + h @ field.weight_hh.T + field.bias_hh)
        inv_tau = 1 / field.tau
    for i in range(5):
        # J = I + diag(1 / tau) (diag(1 - phi^2) W_hh - I)
        d = (1 - phi[i] ** 2).numpy()
        w = field.weight_hh.detach().numpy()
        jac = np.eye(4) + inv_tau.numpy()[:, None] * (d[:, None] * w - np.eye(4))
        assert rho[i] == pytest.approx(np.abs(np.linalg.eigvals(jac)).max(), rel=1e-12)


def test_probe_gain_of_a_scalar_linear_layer_equals_the_formula():
    a = 0.7
    field = _linear_field(np.array([[a]]))
    omegas = np.geomspace(0.05, 3.0, 7)
    source = torch.zeros(300, 2, 1)
    states = torch.zeros(300, 2, 1)  # the unperturbed layer stays at rest
    gains = ts.probe_gain(field, source, states, omegas, fit_from=100, directions=1, seed=0)
    expected = 1 / np.sqrt(1 - 2 * a * np.cos(omegas) + a**2)
    np.testing.assert_allclose(gains, expected, rtol=1e-9)  # transient 0.7^100 ~ 3e-16


def test_perturbation_response_of_a_scalar_linear_layer_is_a_power():
    a = 0.9
    field = _linear_field(np.array([[a]]))
    drive = torch.randn(80, 3, 1)
    states = ts._run_layer(field, drive)
    curve = ts.perturbation_response(field, drive, states, [5, 20], 40, seed=0)
    # The layer is linear: the difference is a^j times the kick, to rounding of O(1) states.
    np.testing.assert_allclose(curve, a ** np.arange(41), rtol=0, atol=1e-8)
    lag, edge = ts.decay_time(curve)
    assert not edge and lag == pytest.approx(1 / math.log(1 / a), abs=0.02)


def test_decay_time_interpolates_and_flags_the_edge():
    lag, edge = ts.decay_time(np.array([1.0, 0.6, 0.2, 0.1]))
    # 1/e = 0.3679 lies between 0.6 (lag 1) and 0.2 (lag 2).
    assert not edge and lag == pytest.approx(1 + (0.6 - 1 / math.e) / 0.4, rel=1e-12)
    assert ts.decay_time(np.array([1.0, 0.9, 0.8])) == (2.0, True)


def test_autocorrelation_equals_the_direct_sum():
    h = torch.as_tensor(np.random.default_rng(6).standard_normal((50, 2, 3)))
    curve = ts.autocorrelation(h, 5)
    c = h.numpy() - h.numpy().mean(0)
    for lag in range(6):
        direct = (c[: 50 - lag] * c[lag:]).sum() / (50 - lag) / ((c * c).sum() / 50)
        assert curve[lag] == pytest.approx(direct, rel=1e-12)


def test_centroid_of_a_single_peak_is_its_frequency():
    omegas = np.geomspace(0.1, 3.0, 9)
    gains = np.where(np.arange(9) == 4, 1.0, 0.0)[None]
    assert ts.centroid(omegas, gains)[0] == pytest.approx(omegas[4], rel=1e-14)


# -- statistics on synthetic inputs -------------------------------------------------------------


def test_layer_spearman_and_the_shuffle_control():
    assert ts.layer_spearman([1.0, 2.0, 5.0, 9.0]) == pytest.approx(1.0)
    assert ts.layer_spearman([9.0, 5.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert ts.layer_spearman([3.0, 3.0, 3.0, 3.0]) == 0.0
    values = np.array([1.0, 4.0, 2.0, 8.0])
    assert ts.layer_spearman(values) == pytest.approx(
        stats.spearmanr([1, 2, 3, 4], values).statistic, rel=1e-14
    )
    perm = np.random.default_rng(8).permutation(4)
    expected = stats.spearmanr([1, 2, 3, 4], values[perm]).statistic
    assert ts.shuffled_spearman(values, np.random.default_rng(8)) == pytest.approx(expected)


def test_statistics_on_synthetic_runs():
    """Trained timescales rise, untrained fall: rho = +1 and -1, difference 2 in every seed;
    the shuffle control is recomputed here from its generator."""
    rising = {m: [1.0, 2.0, 3.0, 4.0] for m in ts.MEASURES}
    falling = {m: [4.0, 3.0, 2.0, 1.0] for m in ts.MEASURES}
    runs = [
        {
            "trained": {**rising, "band_centre": [1.0, 0.5, 0.2, 0.1]},
            "untrained": {**falling, "band_centre": [0.3, 0.3, 0.3, 0.3]},
        }
        for _ in range(5)
    ]
    seeds = list(range(10, 15))
    out = ts.statistics(runs, seeds)
    for m in ts.MEASURES:
        assert out[m]["trained"]["mean"] == pytest.approx(1.0)
        assert out[m]["untrained"]["mean"] == pytest.approx(-1.0)
        assert out[m]["trained_minus_untrained"]["mean"] == pytest.approx(2.0)
        assert out[m]["trained"]["sign_test_p"] == pytest.approx(2 / 2**5)
        shuffled = [
            stats.spearmanr(
                [1, 2, 3, 4], np.array(rising[m])[np.random.default_rng([s, 7]).permutation(4)]
            ).statistic
            for s in seeds
        ]
        np.testing.assert_allclose(out[m]["shuffled"]["per_seed"], shuffled, rtol=1e-14)
    assert out["band_centre"]["trained"]["mean"] == pytest.approx(-1.0)
    spread = np.std(np.log([1.0, 0.5, 0.2, 0.1]))
    assert out["spread"]["trained"]["mean"] == pytest.approx(spread, rel=1e-14)
    assert out["spread"]["untrained"]["mean"] == 0.0
    assert out["spread"]["trained_minus_untrained"]["interval"] == pytest.approx((spread, spread))


# -- the quick run ------------------------------------------------------------------------------


def test_quick_run_records_every_claim_with_its_evidence(quick):
    folder, m = quick
    assert json.loads((folder / "metrics.json").read_text()) == m
    for name in ("timescale_hierarchy", "filter_bank", "theory"):
        assert (folder / f"{name}.png").exists() and (folder / f"{name}.pdf").exists()
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
    for readout in ts.READOUTS:
        for m_name in (*ts.MEASURES, "band_centre"):
            assert any(k.startswith(f"{readout}_{m_name}") for k in m["claims"])


def test_quick_run_keeps_every_seed_and_recomputes_its_statistics(quick):
    _, m = quick
    cfg = m["settings"]
    for readout in ts.READOUTS:
        cond = m["conditions"][readout]
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
            assert r["qualifies"] == all(
                x >= ts.QUALIFY * o for x, o in zip(r["r2"], r["optimum_r2"], strict=True)
            )
        again = json.loads(
            json.dumps(rnnode.studies._run.plain(ts.statistics(chosen, cond["analysed_seeds"])))
        )
        assert again == cond["statistics"]
        local = m["claims"][f"{readout}_local_rises"]
        assert local["value"] == cond["statistics"]["local"]["trained"]["mean"]


def test_quick_points_are_kept_apart_and_counted(quick):
    folder, m = quick
    assert m["points_reused"] == 0 and m["points"] == 2 * m["settings"]["seeds"]
    assert len(list((folder / "points-quick").glob("*.json"))) == m["points"]
    assert not (folder / "points").exists()
