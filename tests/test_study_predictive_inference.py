"""The predictive_inference study: its quick run through the real runner, the evidence every claim
carries, and its helpers against independent computations. No test asserts which way a finding comes
out.
"""

from __future__ import annotations

import json

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


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDIES))
def test_quick_run_writes_files_and_claims_with_evidence(runs, name):
    folder, metrics = runs[name]
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert (folder / "report.html").exists()
    assert list(folder.glob("*.png")) and list(folder.glob("*.pdf"))
    kinds = {c["kind"] for c in metrics["claims"].values()}
    assert "finding" in kinds
    for claim in metrics["claims"].values():
        assert claim["statement"]
        if claim["kind"] == "finding":
            lo, hi = (float(v) for v in claim["interval"])  # JSON keeps +-inf as strings
            assert lo <= claim["value"] <= hi or claim["seeds"] < 3
            assert claim["control"]["label"] and claim["seeds"] >= 2
            assert claim["verdict"] in ("supported", "not supported", "inconclusive")


@pytest.mark.slow
def test_verifications_hold_in_the_quick_runs(runs):
    # verifications are theorems and formula checks: they must hold whatever the data
    for _, metrics in runs.values():
        for name, claim in metrics["claims"].items():
            if claim["kind"] == "verification":
                assert claim["holds"], name


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
