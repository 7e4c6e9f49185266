"""The gate_coupling study: its helpers against independent computations (numpy's trapezoid,
torch.autograd.grad, the package's penalty called directly) and the machinery of its quick run
(every claim carries value, interval and control; the statistics recomputed from the metrics).
No test asserts a finding's verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import gate_coupling, read_json
from rnnode.studies._claims import check_claims
from rnnode.training import SequenceModel, gate_coupling_penalty, task_loss
from tests.helpers import assert_seed_finding


@pytest.fixture(scope="module")
def quick_run(study_run):
    folder, metrics = study_run("gate_coupling")  # made once per session
    return metrics, folder


def _samples(metrics, depth, variant, key):
    return np.array([r[key] for r in metrics["results"][str(depth)][variant]], dtype=np.float64)


@pytest.mark.slow
def test_quick_run_writes_its_files_and_every_claim_carries_its_evidence(quick_run):
    metrics, folder = quick_run
    assert read_json(folder / "metrics.json") == metrics
    for file in ("config.json", "report.html", "learning_curves.png", "lower_gradient.png"):
        assert (folder / file).is_file()
    assert (folder / "accuracy.pdf").is_file()
    cfg = gate_coupling.settings(True)
    claims = metrics["claims"]
    check_claims(claims)  # value, interval, control, seeds; the verdict follows from them
    findings = {k: c for k, c in claims.items() if c["kind"] == "finding"}
    # Per depth: baseline; per weight 3 rules x 2 pairings and the pairing comparison.
    assert len(findings) == (1 + 7 * len(cfg["gate_weights"])) * len(cfg["depths"])
    for claim in findings.values():
        assert claim["seeds"] == cfg["seeds"]
        assert claim["control"]["label"]
        assert len(claim["interval"]) == 2
        assert claim["effect"] in (gate_coupling.EFFECT_ACCURACY, gate_coupling.EFFECT_DECADES)
    for claim in claims.values():
        if claim["kind"] == "verification":
            assert claim["holds"], claim["statement"]  # what the training optimised
    # One saved point per (arm, depth, seed): no penalty and every pairing at every weight.
    points = list((folder / "trainings").glob("*.json"))
    arms = gate_coupling.arms(cfg["gate_weights"])
    assert len(arms) == 1 + 2 * len(cfg["gate_weights"])
    assert len(points) == len(arms) * len(cfg["depths"]) * cfg["seeds"]


@pytest.mark.slow
def test_quick_run_statistics_are_recomputed_from_the_metrics(quick_run):
    metrics, _ = quick_run
    claims = metrics["claims"]
    for depth in metrics["settings"]["depths"]:
        none = {k: _samples(metrics, depth, "none", k) for k in ("final_accuracy", "area")}
        none["trained_ratio"] = _samples(metrics, depth, "none", "trained_ratio")
        assert_seed_finding(claims[f"baseline_learns_{depth}"], none["final_accuracy"], control=0.1)
        assert claims[f"baseline_learns_{depth}"]["bound"] == gate_coupling.LEARNED
        weights = metrics["settings"]["gate_weights"]
        for w in weights:
            tag = gate_coupling.weight_tag(w)
            for variant, prefix in (("uniform", "penalty"), ("input_weight", "weighted_penalty")):
                for rule, key in (
                    ("raises_accuracy", "final_accuracy"),
                    ("trains_faster", "area"),
                    ("raises_lower_gradient", "trained_ratio"),
                ):
                    claim = claims[f"{prefix}_{rule}_{depth}_{tag}"]
                    assert (claim["comparison"], claim["bound"]) == (">", 0.0)
                    difference = _samples(metrics, depth, f"{variant}_{tag}", key) - none[key]
                    assert_seed_finding(claim, difference, control=none[key].mean())
            uniform = _samples(metrics, depth, f"uniform_{tag}", "final_accuracy")
            assert_seed_finding(
                claims[f"input_weight_beats_uniform_{depth}_{tag}"],
                _samples(metrics, depth, f"input_weight_{tag}", "final_accuracy") - uniform,
                control=uniform.mean(),
            )
            # The verifications' values are the largest differences of the penalties.
            for variant, name in (("uniform", "uniform"), ("input_weight", "weighted")):
                runs = metrics["results"][str(depth)]
                own = [r["penalties"][variant] for r in runs[f"{variant}_{tag}"]]
                plain = [r["penalties"][variant] for r in runs["none"]]
                worst = max(a - b for a, b in zip(own, plain, strict=True))
                assert claims[f"{name}_penalty_lowered_{depth}_{tag}"]["value"] == pytest.approx(
                    worst
                )
        for arm in gate_coupling.arms(weights):
            for r in metrics["results"][str(depth)][arm]:
                assert r["final_accuracy"] == r["accuracy"][-1]
                assert r["area"] == pytest.approx(
                    np.trapezoid(r["accuracy"], r["step"]) / r["step"][-1], rel=1e-12
                )
                assert r["trained_ratio"] == pytest.approx(np.mean(r["log10_ratio"][1:]))
                assert r["step"] == list(
                    range(0, metrics["settings"]["steps"] + 1, metrics["settings"]["eval_every"])
                )


def test_weight_tags_name_each_arm():
    assert gate_coupling.weight_tag(0.1) == "w0p1" and gate_coupling.weight_tag(10.0) == "w10"
    assert gate_coupling.arms([0.1, 1.0]) == [
        "none",
        "uniform_w0p1",
        "uniform_w1",
        "input_weight_w0p1",
        "input_weight_w1",
    ]


def test_learning_area_is_the_mean_accuracy_under_the_trapezoid():
    steps, acc = [0, 10, 30, 60], [0.1, 0.4, 0.5, 0.9]
    expected = np.trapezoid(acc, steps) / 60
    assert gate_coupling.learning_area(steps, acc) == pytest.approx(expected, rel=1e-15)
    assert gate_coupling.learning_area([0, 5], [0.3, 0.3]) == pytest.approx(0.3, rel=1e-15)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradient_ratio_against_autograd(bidirectional):
    torch.manual_seed(0)
    rnn = rnnode.ODERNN(1, 3, 3, cell="lstm", bidirectional=bidirectional)
    model = SequenceModel(rnn, 4, kind="classification")
    x, y = torch.randn(5, 7, 1), torch.tensor([0, 1, 2, 3, 0])
    ratio = gate_coupling.gradient_ratio(model, x, y)
    loss = task_loss(model(x), y, "classification")
    layers = [
        [p for d in range(rnn.num_directions) for p in rnn.field(layer, d).parameters()]
        for layer in (0, 2)
    ]
    norms = [
        torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=True)])
        .norm()
        .item()
        for params in layers
    ]
    assert ratio == pytest.approx(np.log10(norms[0] / norms[1]), rel=1e-12)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_input_gate_rows_are_the_input_gate_weights_and_feed_the_penalty():
    torch.manual_seed(1)
    rnn = rnnode.ODERNN(2, 3, 3, cell="lstm", bidirectional=True)
    rows = gate_coupling.input_gate_rows(rnn)
    assert [tuple(r.shape) for r in rows] == [(2, 3, 6), (2, 3, 6)]
    for layer in (1, 2):
        for d in (0, 1):
            assert torch.equal(rows[layer - 1][d], rnn.field(layer, d).weight_ih[:3])
    assert not any(r.requires_grad for r in rows)
    with torch.no_grad():
        gates = rnn.solve(torch.randn(4, 2, 2), return_gates=True).gates
    both = gate_coupling.penalties(rnn, gates)
    assert both["uniform"] == float(gate_coupling_penalty(gates))
    assert both["input_weight"] == float(
        gate_coupling_penalty(gates, weighting="input_weight", input_weights=rows)
    )


@pytest.mark.parametrize("pairing", ["uniform", "input_weight"])
def test_coupled_model_loss_is_task_loss_plus_the_chosen_penalty(pairing):
    torch.manual_seed(2)
    task = rnnode.training.digits_task("pixels", seed=0)
    rnn = rnnode.ODERNN(1, 3, 2, cell="lstm")
    model = gate_coupling._Coupled(rnn, task, 0.7, pairing)
    x, y = task.x_train[:4, :10], task.y_train[:4]
    total, parts = model.loss(x, y)
    solution = rnn.solve(x.transpose(0, 1), return_gates=True)
    weights = gate_coupling.input_gate_rows(rnn) if pairing == "input_weight" else None
    penalty = gate_coupling_penalty(
        solution.gates, 0.7, weighting=pairing, input_weights=weights
    ).item()
    main = task_loss(model(x), y, "classification").item()
    assert parts["task"] == pytest.approx(main, rel=1e-13)
    assert parts["gate_penalty"] == pytest.approx(penalty, rel=1e-13)
    assert total.item() == pytest.approx(main + penalty, rel=1e-13)


def test_quick_setting_is_smaller_than_the_full_one():
    quick, full = gate_coupling.settings(True), gate_coupling.settings(False)
    assert set(quick) == set(full)
    for key in ("hidden_size", "steps", "seeds", "batch_size"):
        assert quick[key] <= full[key]
    assert full["seeds"] >= 10  # issue 19: every full run with findings
    assert len(full["gate_weights"]) == 3
    assert all(4 <= depth <= 8 for depth in full["depths"])  # deep stacks, as the issue asks
    assert full["steps"] % full["eval_every"] == 0
