"""The predictive_inference study: its helpers against independent computations and its quick
run's findings recomputed from the metrics. No test asserts which way a finding comes out. (A
quick run's files and each claim's evidence are tested for every study in
tests/test_studies.py.)
"""

from __future__ import annotations

import pytest
import torch

from rnnode.studies import (
    predictive_inference,
)

STUDIES = {"predictive_inference": predictive_inference}


@pytest.fixture(scope="module")
def runs(study_run):
    """The study's quick run (made once per session): {name: (folder, metrics)}."""
    return {name: study_run(name) for name in STUDIES}


# -- predictive_inference ---------------------------------------------------------------------


def _tiny_network():
    torch.manual_seed(3)
    net = predictive_inference.Network(3, 4, 2, 5)
    x = torch.randn(6, 7, 3)
    y = torch.randint(0, 5, (6,))
    return net, x, y


def test_value_nodes_start_at_the_models_own_forward_pass():
    net, x, y = _tiny_network()
    values = net.forward_values(x)
    output = net.rnn(x.transpose(0, 1))[0]
    for t in range(7):
        torch.testing.assert_close(values[-1][t], output[t], rtol=0, atol=1e-14)
    # the energy at the forward pass is the loss: every prediction error is zero
    torch.testing.assert_close(net.energy(values, x, y), net.loss(x, y), rtol=0, atol=1e-14)


def test_without_inference_only_the_head_learns_and_its_update_is_exact():
    net, x, y = _tiny_network()
    pc = predictive_inference.pc_gradients(net, x, y, 0)
    bptt = predictive_inference.bptt_gradients(net, x, y)
    c = predictive_inference.cosines(net, pc, bptt)
    assert c["head"] == pytest.approx(1.0, abs=1e-12)
    assert c["layer1"] == 0.0 and c["layer2"] == 0.0


def test_inference_lowers_the_energy():
    net, x, y = _tiny_network()
    energies = [
        float(net.energy(predictive_inference.infer(net, x, y, n), x, y).detach())
        for n in (0, 1, 5, 20)
    ]
    assert all(b < a for a, b in zip(energies, energies[1:], strict=False))


def test_energy_at_the_forward_pass_is_beta_times_the_loss():
    net, x, y = _tiny_network()
    values = net.forward_values(x)
    for beta in (0.01, 0.3):
        torch.testing.assert_close(
            net.energy(values, x, y, beta), beta * net.loss(x, y), rtol=0, atol=1e-15
        )


def test_relax_checkpoints_equal_separate_relaxations():
    net, x, y = _tiny_network()
    path = predictive_inference.relax(net, x, y, [0, 3, 7], 0.01)
    for n, values in zip((0, 3, 7), path, strict=True):
        alone = predictive_inference.infer(net, x, y, n, 0.01)
        for row_a, row_b in zip(values, alone, strict=True):
            for a, b in zip(row_a, row_b, strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="checkpoints"):
        predictive_inference.relax(net, x, y, [3, 1])


@pytest.mark.slow
def test_small_beta_equilibrium_gives_the_bptt_gradient():
    # Millidge et al. 2022: at the equilibrium of inference the errors are -beta dL/dh + O(beta^2),
    # so dF/dtheta is beta dL/dtheta + O(beta^2): the cosine departs from 1 by O(beta^2) = 1e-8 at
    # beta = 1e-4; 1000 iterations reach the equilibrium (the relaxation contracts geometrically)
    net, x, y = _tiny_network()
    update = predictive_inference.pc_gradients(net, x, y, 1000, 1e-4)
    bptt = predictive_inference.bptt_gradients(net, x, y)
    for key, value in predictive_inference.cosines(net, update, bptt).items():
        assert value > 1 - 1e-6, key


@pytest.mark.slow
def test_quick_run_findings_recompute_from_the_metrics(runs):
    from scipy import stats

    from rnnode.studies._claims import check_claims

    _, metrics = runs["predictive_inference"]
    claims = metrics["claims"]
    check_claims(claims)
    cfg = metrics["settings"]
    beta, last = f"{cfg['beta']:g}", str(max(cfg["iterations"]))
    table = metrics["cosine"][beta]
    layers = [k for k in table if k != "head"]
    worst = [min(table[k][last]["samples"][s] for k in layers) for s in range(cfg["seeds"])]
    claim = claims["cosine_near_one"]
    assert claim["value"] == pytest.approx(sum(worst) / len(worst), abs=1e-14)
    mean, se = stats.tmean(worst), stats.sem(worst)
    half = stats.t.ppf(0.975, len(worst) - 1) * se
    assert claim["interval"] == pytest.approx([mean - half, mean + half], abs=1e-12)
    gap = [
        a - b
        for a, b in zip(
            metrics["accuracy"]["bptt"], metrics["accuracy"]["predictive coding"], strict=True
        )
    ]
    assert claims["accuracy_matches_backprop"]["value"] == pytest.approx(
        sum(gap) / len(gap), abs=1e-14
    )
    # the curve against beta is the table's last-iteration entry at every beta
    for key, by_beta in metrics["cosine_vs_beta"].items():
        for b, record in by_beta.items():
            assert record == metrics["cosine"][b][key][last]
