"""depth_tradeoff: its quick run through the real runner, every claim's evidence recomputed from
the metrics, and its helpers against independent references (numpy, scipy quadrature, a fresh
training run, the closed-form sweet spot). No test asserts a verdict."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.integrate
import torch

import rnnode
from rnnode.analysis.depth import accuracy_model
from rnnode.studies import depth_tradeoff as dt
from rnnode.studies._claims import check_claims
from rnnode.studies._run import json_bytes
from tests.helpers import assert_seed_finding


@pytest.fixture(scope="module")
def quick(study_run):
    return study_run("depth_tradeoff")  # (folder, metrics), made once per session


def _arrays(m):
    accuracy = {v: np.array(m["accuracy"][v], dtype=float) for v in dt.VARIANTS}
    return accuracy, np.array(m["depth0_accuracy"], dtype=float)


@pytest.mark.slow
def test_quick_run_writes_every_claim_with_value_interval_and_control(quick):
    folder, m = quick
    assert json.loads((folder / "metrics.json").read_text()) == m
    assert (folder / "report.html").is_file() and (folder / "config.json").is_file()
    for name in ("depth_curve", "m_vs_factor"):
        assert (folder / f"{name}.png").is_file() and (folder / f"{name}.pdf").is_file()
    claims = m["claims"]
    always = {
        "fit_within_seed_spread",
        "fit_beats_monotone",
        "accuracy_rises",
        "accuracy_falls",
        *(f"{v}_raises_deep_accuracy" for v in dt.VARIANTS[1:]),
    }
    gate = m["fit_gate"]
    verdicts = (
        claims["fit_within_seed_spread"]["verdict"],
        claims["fit_beats_monotone"]["verdict"],
    )
    assert gate["passed"] == (verdicts == ("supported", "supported"))
    # m and N* are read only through the gate: otherwise they are listed, not recorded
    assert set(claims) == (always | set(dt.GATED) if gate["passed"] else always)
    assert m["not_interpretable"] == ([] if gate["passed"] else list(dt.GATED))
    check_claims(claims)  # value, interval, bound, control label, seeds; verdict from interval
    for claim in claims.values():
        assert claim["kind"] == "finding"
        assert math.isfinite(claim["value"])
        assert claim["control"]["label"]
        assert claim["seeds"] == dt.settings(True)["seeds"]
        assert claim["effect"] is not None  # the smallest effect that matters is stated
        lo, hi = (float(v) for v in claim["interval"])
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi


@pytest.mark.slow
def test_every_point_is_saved_and_read_back(quick):
    folder, m = quick
    accuracy, _ = _arrays(m)
    saved = [json.loads(f.read_text()) for f in (folder / "points").glob("*.json")]
    cfg = dt.settings(True)
    assert len(saved) == len(dt.VARIANTS) * len(cfg["depths"]) * cfg["seeds"]
    for record in saved:
        p = record["point"]
        d, s = m["depths"].index(p["depth"]), m["seeds"].index(p["seed"])
        assert record["result"]["accuracy"] == list(accuracy[p["variant"]][:, d, s])
        norms = m["gradient_norms"][p["variant"]][d][s]
        assert record["result"]["gradient_norms"] == norms
        assert len(norms) == p["depth"]
    assert m["steps"] == [b * cfg["steps"] for b in dt.BUDGETS]
    for a in accuracy.values():
        assert a.shape == (len(dt.BUDGETS), len(cfg["depths"]), cfg["seeds"])
        assert np.all((a >= 0) & (a <= 1))


@pytest.mark.slow
def test_fits_sweet_spots_and_factors_recomputed_from_the_metrics(quick):
    _, m = quick
    accuracy, depth0 = _arrays(m)
    depths, seeds = m["depths"], m["seeds"]
    assert list(depth0) == [dt.constant_accuracy(s) for s in seeds]
    for v in dt.VARIANTS:
        # The factor: (||g^1|| / ||g^L||)^(1 / (L - 1)) of the deepest stack, per seed.
        deepest = [np.array(n) for n in m["gradient_norms"][v][-1]]
        factor = [(n[0] / n[-1]) ** (1 / (len(n) - 1)) for n in deepest]
        np.testing.assert_allclose(m["gradient_factor"][v], factor, rtol=1e-12)
        for k, b in enumerate(dt.BUDGETS):
            fit = m["fit"][v][f"{b}x"]
            assert fit == dt.fit_variant(depths, accuracy[v][k], depth0)
            assert 0 <= fit["a_min"] <= 1 and 0 <= fit["a_max"] <= 1
            assert fit["b"] > 0 and 0 < fit["m"] <= 1
            star = m["sweet_spot"][v][f"{b}x"]
            if fit["m"] < 1:
                closed = math.log(1 - fit["b"] / math.log(fit["m"])) / fit["b"]
                assert float(star) == pytest.approx(closed, rel=1e-12)
            else:
                assert float(star) == math.inf


@pytest.mark.slow
def test_fitted_findings_recomputed_from_the_metrics(quick):
    _, m = quick
    accuracy, depth0 = _arrays(m)
    depths, claims = m["depths"], m["claims"]
    plain = accuracy["plain"][-1]
    fit = m["fit"]["plain"][f"{dt.BUDGETS[-1]}x"]
    mean = plain.mean(axis=1)
    rms = np.sqrt(np.mean((accuracy_model(depths, **fit) - mean) ** 2))
    se = np.sqrt(np.mean(plain.std(axis=1, ddof=1) ** 2) / plain.shape[1])
    # the monotone alternative, by pool-adjacent-violators written out here
    blocks = [[v, 1] for v in np.concatenate([[depth0.mean()], mean])]
    i = 0
    while i < len(blocks) - 1:
        if blocks[i][0] > blocks[i + 1][0]:
            (a, na), (b, nb) = blocks[i], blocks.pop(i + 1)
            blocks[i] = [(a * na + b * nb) / (na + nb), na + nb]
            i = max(i - 1, 0)
        else:
            i += 1
    monotone = np.concatenate([[v] * n for v, n in blocks])[1:]
    rms_mono = np.sqrt(np.mean((monotone - mean) ** 2))
    assert claims["fit_within_seed_spread"]["value"] == pytest.approx(rms / se, rel=1e-9)
    assert claims["fit_beats_monotone"]["value"] == pytest.approx(
        (rms_mono - rms) / se, rel=1e-9, abs=1e-12
    )
    check = m["fit_checks"]["plain"][f"{dt.BUDGETS[-1]}x"]
    assert check["rms_fit"] == pytest.approx(rms, rel=1e-12)
    assert check["rms_monotone"] == pytest.approx(rms_mono, rel=1e-12, abs=1e-15)
    best = int(np.argmax(mean))
    assert m["best_depth"] == depths[best]
    for v in dt.VARIANTS:
        for b in dt.BUDGETS:
            star = float(m["sweet_spot"][v][f"{b}x"])
            inside = m["sweet_spot_inside_depths"][v][f"{b}x"]
            assert inside == (depths[0] <= star <= depths[-1])
    for v in dt.VARIANTS[1:]:
        assert_seed_finding(claims[f"{v}_raises_deep_accuracy"], accuracy[v][-1][-1] - plain[-1])
        assert claims[f"{v}_raises_deep_accuracy"]["control"]["value"] == pytest.approx(mean[-1])
    assert_seed_finding(claims["accuracy_rises"], plain[best] - plain[0])
    assert_seed_finding(claims["accuracy_falls"], plain[best] - plain[-1])


def _synthetic(noise: float, seeds: int = 5):
    """Accuracies on exact A(N) curves plus seed noise: (accuracy, depth0, factor, depths)."""
    depths = [1, 2, 3, 4, 6, 8]
    rng = np.random.default_rng(3)
    truth = {"plain": 0.6, "skips": 0.8, "auxiliary": 0.75, "critical_init": 0.7}
    n = np.array(depths, float)
    accuracy = {
        v: np.stack(
            [
                accuracy_model(n, 0.1, 0.95, 0.3 + 0.05 * k, mt)[:, None]
                + noise * rng.standard_normal((len(depths), seeds))
                for k in range(len(dt.BUDGETS))
            ]
        )
        for v, mt in truth.items()
    }
    depth0 = 0.1 + noise * rng.standard_normal(seeds)
    return accuracy, depth0, np.full(seeds, 0.5), depths


@pytest.mark.slow
def test_gate_records_the_fitted_findings_only_when_the_fit_passes(tmp_path):
    # Data on the curve pass the gate (within the spread, better than monotone) and m and N*
    # are read; flat data (no fall) fail the monotone comparison and m and N* are not read.
    from rnnode.studies._context import Context

    for noise, flat in ((0.002, False), (0.02, True)):
        accuracy, depth0, factor, depths = _synthetic(noise)
        if flat:
            rng = np.random.default_rng(4)
            accuracy = {v: 0.8 + noise * rng.standard_normal(a.shape) for v, a in accuracy.items()}
        data = {"accuracy": accuracy, "depth0": depth0, "factor": {"plain": factor}}
        ctx = Context("depth_tradeoff", tmp_path)
        cfg = {"depths": depths}
        out = dt._findings(ctx, cfg, list(range(5)), [100, 200, 400], data)
        claims = ctx.claims
        check_claims(claims)
        passed = out["gate"]["passed"]
        assert passed == (not flat)
        assert set(dt.GATED) <= set(claims) if passed else not set(dt.GATED) & set(claims)
        if passed:  # the recorded N* numbers are clipped to the measured depths
            full = out["full"]
            for v in dt.VARIANTS:
                assert depths[0] <= full[f"sweet_spot_{v}"] <= depths[-1]


# -- helpers ----------------------------------------------------------------------------------


def test_layer_factor_of_geometric_norms_is_their_ratio():
    norms = 3.0 * 0.6 ** np.arange(7)[::-1]  # layer l: 3 * 0.6^(L - l), shrinking downwards
    assert dt.layer_factor(norms) == pytest.approx(0.6, rel=1e-14)
    rng = np.random.default_rng(0)
    n = rng.uniform(0.1, 2.0, 9)
    assert dt.layer_factor(n) == pytest.approx((n[0] / n[-1]) ** (1 / 8), rel=1e-13)
    assert math.isnan(dt.layer_factor([1.0]))


def test_sweet_spots_are_clipped_to_the_measured_depths():
    assert dt.clip_sweet_spot(math.inf, [1, 2, 8]) == 8.0
    assert dt.clip_sweet_spot(0.3, [1, 2, 8]) == 1.0
    assert dt.clip_sweet_spot(3.5, [1, 2, 8]) == 3.5


def test_critical_gain_puts_the_mean_field_factor_at_one():
    # Independent of rnnode.analysis.meanfield: q* by fixed-point iteration with scipy quad.
    hidden = 16
    s2 = dt.critical_gain(hidden) ** 2 / 3

    def gauss(f, q):
        value, _ = scipy.integrate.quad(
            lambda z: f(math.sqrt(q) * z) * math.exp(-(z**2) / 2) / math.sqrt(2 * math.pi),
            -40,
            40,
            epsabs=1e-14,
            epsrel=1e-13,
            limit=200,
        )
        return value

    q = 1.0
    for _ in range(500):
        q = (s2 + 1 / 3) * gauss(lambda x: math.tanh(x) ** 2, q) + 2 / (3 * hidden)
    factor = math.sqrt(s2 * gauss(lambda x: 1 / math.cosh(x) ** 4, q))
    assert factor == pytest.approx(1.0, abs=1e-8)


def test_variants_differ_from_plain_only_where_they_should():
    task = dt._digits(0, torch.get_default_dtype())
    models = {}
    for v in dt.VARIANTS:
        torch.manual_seed(5)
        models[v] = dt.build(v, 3, 8, task)
    plain, critical = models["plain"].rnn, models["critical_init"].rnn
    gain = dt.critical_gain(8)
    for layer, (a, b) in enumerate(zip(plain.layers, critical.layers, strict=True)):
        scale = 1.0 if layer == 0 else gain
        torch.testing.assert_close(b.weight_ih, scale * a.weight_ih, rtol=1e-15, atol=0)
        torch.testing.assert_close(b.weight_hh, a.weight_hh, rtol=0, atol=0)
    assert tuple(models["skips"].rnn.skips) == (1, 2)
    assert models["auxiliary"].aux_weights == {0: dt.AUX_WEIGHT, 1: dt.AUX_WEIGHT}
    assert models["plain"].aux_weights == {} and tuple(plain.skips) == (1,)
    with pytest.raises(ValueError, match="variant: expected one of"):
        dt.build("residual", 2, 8, task)


@pytest.mark.slow
def test_a_budget_reads_the_same_run_as_training_for_that_many_steps():
    point = {"variant": "auxiliary", "depth": 2, "seed": 1, "quick": True}
    result = dt.depth_point(point)
    cfg = dt.settings(True)
    task = dt._digits(1, torch.get_default_dtype())
    torch.manual_seed(1)
    model = dt.build("auxiliary", 2, cfg["hidden_size"], task)
    fresh = rnnode.training.train(
        model,
        task,
        steps=dt.BUDGETS[1] * cfg["steps"],
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        seed=1,
        progress=False,
    )
    assert result["accuracy"][1] == fresh["test"]["accuracy"]
    assert result["diverged_at"] is None
    torch.manual_seed(123)  # the global generator's state must not matter
    assert json_bytes(dt.depth_point(point)) == json_bytes(result)


def test_untrained_gradient_norms_are_the_model_loss_gradients():
    # ||dLoss/dh_T^l|| at the last sample against autograd through a torch.nn.RNN copy.
    task = dt._digits(0, torch.get_default_dtype())
    torch.manual_seed(2)
    model = dt.build("plain", 3, 8, task)
    x = task.x_train[: dt.GRADIENT_BATCH]
    y = task.y_train[: dt.GRADIENT_BATCH]
    reference = rnnode.to_torch(model.rnn)
    layers = []
    h_in = x
    for layer in range(3):
        single = torch.nn.RNN(h_in.shape[-1], 8, batch_first=True)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(single, f"{name}_l0").copy_(getattr(reference, f"{name}_l{layer}"))
        out, _ = single(h_in)
        layers.append(out)
        h_in = out
    for out in layers:
        out.retain_grad()
    loss = rnnode.training.task_loss(model.head(layers[-1][:, -1]), y, model.kind)
    loss.backward()
    # The last sample's state reaches the loss only through the layers above at that sample.
    expected = [float(out.grad[:, -1].norm()) for out in layers]
    got = rnnode.analysis.gradients.gradient_norms(
        model.rnn, x.transpose(0, 1), dt.readout_loss(model, y)
    )[:, -1]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_fitted_numbers_recover_known_sweet_spot_shifts():
    # Noise-free curves with known (b, m) per variant, small seed-to-seed offsets: the shifts
    # are the log2 ratios of the closed-form sweet spots.
    depths = [1, 2, 3, 4, 6, 8, 12, 16, 24]
    truth = {"plain": 0.8, "skips": 0.9, "auxiliary": 0.95, "critical_init": 0.7}
    offsets = np.array([-0.002, 0.0, 0.002])
    depth0 = 0.1 + offsets

    def curve(m_true, b_true=0.6):
        clean = accuracy_model(np.array(depths, float), 0.1, 0.95, b_true, m_true)
        return clean[:, None] + offsets

    accuracy = {v: np.stack([curve(0.6), curve(mt), curve(mt)]) for v, mt in truth.items()}
    factor = np.array([0.5, 0.55, 0.6])
    numbers = dt.fitted_numbers(depths, accuracy, depth0, factor, (0, 1, 2))
    star = {v: math.log(1 - 0.6 / math.log(mt)) / 0.6 for v, mt in truth.items()}
    assert numbers["sweet_spot_plain"] == pytest.approx(star["plain"], rel=1e-4)
    for v in dt.VARIANTS[1:]:
        assert numbers[f"{v}_shift"] == pytest.approx(math.log2(star[v] / star["plain"]), abs=1e-4)
    assert numbers["m"] == pytest.approx(0.8, rel=1e-5)
    assert numbers["m_gap"] == pytest.approx(abs(0.8 - 0.55), rel=1e-4)
    star_first = math.log(1 - 0.6 / math.log(0.6)) / 0.6
    assert numbers["budget_shift"] == pytest.approx(
        abs(math.log2(star["plain"] / star_first)), abs=1e-4
    )
