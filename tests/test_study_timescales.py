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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_quick_points_are_kept_apart_and_counted(quick):
    folder, m = quick
    assert m["points_reused"] == 0 and m["points"] == 2 * m["settings"]["seeds"]
    assert len(list((folder / "points-quick").glob("*.json"))) == m["points"]
    assert not (folder / "points").exists()
