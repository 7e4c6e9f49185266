"""The vanishing_gradients study: its quick run's statistics recomputed here from the metrics,
and its helpers against independent references: the mean-field factor by scipy quadrature, the
relative weight change and the linear probe on hand-made cases. No test asserts which way a
finding comes out. (A quick run's files and each claim's evidence are tested for every study in
tests/test_studies.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from rnnode.studies import vanishing_gradients as vanishing
from tests.helpers import assert_seed_finding

STUDIES = {"vanishing_gradients": vanishing}


@pytest.fixture(scope="module")
def runs(study_run):
    """The study's quick run (made once per session): {name: (folder, metrics)}."""
    return {name: study_run(name) for name in STUDIES}


# -- vanishing_gradients: theory ----------------------------------------------------------------


def _quad_gaussian(f, q: float) -> float:
    value, _ = integrate.quad(
        lambda z: f(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
        -np.inf,
        np.inf,
        epsabs=1e-14,
        epsrel=1e-13,
    )
    return value


def _quad_factor(gain: float, hidden: int, skips: bool) -> float:
    """The mean-field factor with scipy.integrate.quad and fixed-point iteration for q*: the
    inter-layer weights (1 matrix, 2 with skips) have variance gain^2 / 3, the recurrent one 1/3,
    the two biases 1 / (3 hidden) each."""
    sw2 = gain**2 / 3
    inter = 2 if skips else 1
    q = 1.0
    for _ in range(2000):
        new = (inter * sw2 + 1 / 3) * _quad_gaussian(lambda x: math.tanh(x) ** 2, q)
        new += 2 / (3 * hidden)
        if abs(new - q) < 1e-14:
            break
        q = new
    chi = sw2 * _quad_gaussian(
        lambda x: (2 * math.exp(-abs(x)) / (1 + math.exp(-2 * abs(x)))) ** 4, q
    )
    if not skips:
        return math.sqrt(chi)
    mu = (chi + math.sqrt(chi**2 + 4 * chi)) / 2  # mu^2 = chi mu + chi
    return math.sqrt(mu)


@pytest.mark.parametrize("skips", [False, True])
@pytest.mark.parametrize("gain", [0.5, 1.0, 3.0, 6.0])
def test_predicted_factor_matches_quadrature(gain, skips):
    # The fixed point converges geometrically; the quadratures are good to ~1e-13.
    expected = _quad_factor(gain, 16, skips)
    assert vanishing.predicted_factor(gain, 16, skips) == pytest.approx(expected, rel=1e-9)


def test_predicted_factor_at_the_default_init_is_the_issues_numbers():
    assert vanishing.predicted_factor(1.0, 16) == pytest.approx(0.534, abs=5e-4)
    assert vanishing.predicted_factor(1.0, 16, skips=True) == pytest.approx(0.809, abs=5e-4)


@pytest.mark.parametrize("skips", [False, True])
def test_critical_gain_is_where_the_factor_is_one(skips):
    g = vanishing.critical_gain(16, skips)
    assert vanishing.predicted_factor(g, 16, skips) == pytest.approx(1.0, abs=1e-10)
    assert (
        vanishing.predicted_factor(0.9 * g, 16, skips)
        < 1
        < vanishing.predicted_factor(1.1 * g, 16, skips)
    )


def test_crossing_gain_interpolates_and_falls_back_to_the_grids_end():
    assert vanishing.crossing_gain([1, 2, 3], [-1.0, -0.5, 0.5]) == pytest.approx(2.5)
    # The first upward crossing counts.
    assert vanishing.crossing_gain([1, 2, 3, 4], [-1.0, 1.0, -1.0, 1.0]) == pytest.approx(1.5)
    assert vanishing.crossing_gain([1, 2, 3], [-3.0, -2.0, -1.0]) == 3.0
    assert vanishing.crossing_gain([1, 2, 3], [1.0, 2.0, 3.0]) == 1.0


def test_per_layer_factor_recovers_a_geometric_decay():
    depths = [1, 2, 4, 8, 16]
    assert vanishing.per_layer_factor(depths, [3 * 0.6**d for d in depths]) == pytest.approx(
        0.6, rel=1e-12
    )


# -- vanishing_gradients: models and measurements -----------------------------------------------


@pytest.mark.parametrize("variant", vanishing.VARIANTS)
def test_readout_loss_is_the_sequence_models_loss(variant):
    torch.manual_seed(3)
    model = vanishing.build(variant, 3, 4)
    x, y = torch.randn(5, 2, 1), torch.randn(2, 1)
    solution = model.rnn.solve(x)
    ours = vanishing.readout_loss(model, y)(solution.output, solution.h_n)
    theirs, _ = model.loss(x.transpose(0, 1), y)
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-13)


@pytest.mark.parametrize("variant", ["plain", "skips"])
def test_build_multiplies_the_inter_layer_weights_alone_by_the_gain(variant):
    torch.manual_seed(0)
    base = vanishing.build(variant, 3, 4)
    torch.manual_seed(0)
    scaled = vanishing.build(variant, 3, 4, gain=2.5)
    names = []
    for (name, p), q in zip(base.rnn.named_parameters(), scaled.rnn.parameters(), strict=True):
        factor = 2.5 if name.endswith("weight_ih") else 1.0
        if factor != 1.0:
            names.append(name)
        torch.testing.assert_close(q, factor * p, rtol=0, atol=0, msg=name)
    assert len(names) == 3  # one weight_ih per layer (skip weights are inside it)
    # recurrent weights untouched: the time dynamics' Jacobian at rest does not change
    for layer in scaled.rnn.layers:
        assert layer.weight_hh.abs().max() <= 0.5 + 1e-12  # U(-1/sqrt(4), 1/sqrt(4))


def test_relative_change_on_a_hand_made_case():
    before = [torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])]
    after = [torch.tensor([3.0, 1.0]), torch.tensor([[4.0]])]
    assert vanishing.relative_change(before, after) == pytest.approx(1 / 5, rel=1e-15)
    twice = [2 * b for b in before]
    assert vanishing.relative_change(before, twice) == pytest.approx(1.0, rel=1e-15)
    assert vanishing.relative_change(before, before) == 0.0


# -- vanishing_gradients: the quick run's statistics --------------------------------------------


@pytest.mark.slow
def test_default_init_findings_are_computed_from_the_metrics(runs):
    _, m = runs["vanishing_gradients"]
    layer1 = {k: np.array(v) for k, v in m["layer1_gradient"].items()}
    assert m["per_layer_factor"]["plain"] == pytest.approx(
        vanishing.per_layer_factor(m["depths"], np.median(layer1["plain"], axis=1)), rel=1e-12
    )
    per_seed = {
        v: [vanishing.per_layer_factor(m["depths"], c) for c in layer1[v].T] for v in layer1
    }
    # pytest.approx takes no nested containers (pytest >= 9): compare variant by variant
    assert m["per_layer_factor_per_seed"].keys() == per_seed.keys()
    for variant, factors in per_seed.items():
        assert m["per_layer_factor_per_seed"][variant] == pytest.approx(factors, rel=1e-12)
    claims = m["claims"]
    # the default-init decay is skip_paths' verification, not counted again here
    assert "plain_vanishes_with_depth" not in claims and "skips_still_vanish" not in claims
    assert_seed_finding(
        claims["skips_slow_the_decay"], np.subtract(per_seed["skips"], per_seed["plain"])
    )
    ratio = np.log10(np.array(m["time_ratio_plain"])).mean(axis=0)
    assert_seed_finding(claims["vanishes_through_time"], ratio)
    # One layer: the three variants are the same stack and loss.
    np.testing.assert_allclose(layer1["skips"][0], layer1["plain"][0], rtol=1e-12)
    np.testing.assert_allclose(layer1["auxiliary"][0], layer1["plain"][0], rtol=1e-12)
    assert claims["auxiliary_keeps_gradient"]["holds"] == bool(
        np.all(layer1["auxiliary"] > vanishing.AUX_FLOOR * layer1["auxiliary"][0])
    )


@pytest.mark.slow
def test_gain_sweep_findings_are_computed_from_the_metrics(runs):
    _, m = runs["vanishing_gradients"]
    cfg, claims = m["settings"], m["claims"]
    gains = np.array(cfg["gains"])
    for v in ("plain", "skips"):
        norms = np.array(m["gain_layer1_gradient"][v])  # (gains, depths, seeds)
        factors = np.array(
            [
                [vanishing.per_layer_factor(cfg["gain_depths"], norms[i, :, k]) for k in range(2)]
                for i in range(len(gains))
            ]
        )
        np.testing.assert_allclose(m["gain_factor"][v], factors, rtol=1e-12)
        gc = vanishing.critical_gain(cfg["hidden_size"], v == "skips")
        assert m["critical_gain"][v] == pytest.approx(gc, rel=1e-12)
        theory = np.log(
            [vanishing.predicted_factor(g, cfg["hidden_size"], v == "skips") for g in gains]
        )
        below, above = gains < vanishing.BELOW * gc, gains > vanishing.ABOVE * gc
        log_f = np.log(factors)
        assert_seed_finding(claims[f"vanishes_below_critical_{v}"], log_f[below].mean(axis=0))
        assert claims[f"vanishes_below_critical_{v}"]["control"]["value"] == pytest.approx(
            theory[below].mean(), rel=1e-12
        )
        assert_seed_finding(claims[f"grows_above_critical_{v}"], log_f[above].mean(axis=0))
        crossing = [abs(vanishing.crossing_gain(gains, log_f[:, k]) / gc - 1) for k in range(2)]
        assert_seed_finding(claims[f"crosses_near_critical_{v}"], crossing)
    # At gain 1 the sweep's stacks are the default-initialisation stacks of the same depth.
    first = np.array(m["layer1_gradient"]["plain"])[: len(cfg["gain_depths"])]
    at_one = np.array(m["gain_layer1_gradient"]["plain"])[list(gains).index(1.0)]
    np.testing.assert_allclose(at_one, first, rtol=1e-12)


@pytest.mark.slow
def test_training_findings_are_computed_from_the_metrics(runs):
    _, m = runs["vanishing_gradients"]
    cfg, claims = m["settings"], m["claims"]
    for init in cfg["inits"]:
        for v in cfg["train_variants"]:
            suffix = ("_skips" if v == "skips" else "") + (
                "_critical" if init == "critical" else ""
            )
            t = m["training"][init][v]
            ratios = {}
            for o in vanishing.OPTIMIZERS:
                change = np.array(t[o]["relative_change"])
                trained, untrained = (
                    np.array(t[o]["probe_trained"]),
                    np.array(t[o]["probe_untrained"]),
                )
                assert change.shape == trained.shape == (2, cfg["train_depth"])
                assert np.all(change > 0)
                assert np.all((trained >= 0) & (trained <= 1) & (untrained >= 0) & (untrained <= 1))
                ratios[o] = np.log10(change[:, 0] / change[:, -1])
                assert_seed_finding(claims[f"lowest_layer_changes_least_{o}{suffix}"], ratios[o])
                items = np.array(t[o]["probe_layer1_items"])
                assert items.shape[0] == 2 and set(np.unique(items)) <= {-1, 0, 1}
                # per seed, the items' mean is the accuracy difference of layer 1's probes
                np.testing.assert_allclose(
                    items.mean(axis=1), trained[:, 0] - untrained[:, 0], rtol=0, atol=1e-12
                )
                assert_seed_finding(claims[f"layer1_probe_above_untrained_{o}{suffix}"], items)
                assert claims[f"layer1_probe_above_untrained_{o}{suffix}"]["control"][
                    "value"
                ] == pytest.approx(untrained[:, 0].mean(), rel=1e-12)
            assert_seed_finding(
                claims[f"adam_moves_lowest_layer_more{suffix}"], ratios["adam"] - ratios["sgd"]
            )
            # The untrained probe does not depend on the optimiser: the same initial network.
            np.testing.assert_array_equal(t["sgd"]["probe_untrained"], t["adam"]["probe_untrained"])
