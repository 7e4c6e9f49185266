"""Predictive coding: layer-local prediction losses, no gradient across layers, a readout on top.

References: autograd's gradients (exactly zero where no path may exist), a numpy recomputation of
the local losses, and the backprop model built from the same seed.
"""

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies.predictive_coding import compare_with_backprop
from rnnode.training import PredictiveCoding, SequenceModel


def _model(skips=(1,), cell="rnn"):
    torch.manual_seed(4)
    return PredictiveCoding(rnnode.ODERNN(2, 3, 3, cell=cell, skips=skips), 2)


def _grads(module):
    return [p.grad for p in module.parameters()]


def _is_zero(grads):
    return all(g is None or not g.any() for g in grads)


@pytest.mark.parametrize("skips", [(1,), (1, 2)])
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_one_layers_loss_leaves_every_other_layer_untouched(skips, layer):
    model = _model(skips)
    x = torch.randn(4, 6, 2)
    prediction, solution = model.run(x)
    model.local_losses(solution, x)[layer].backward()
    for other in range(3):
        field, predictor = _grads(model.rnn.field(other)), _grads(model.predictors[other])
        if other == layer:
            assert not _is_zero(field) and not _is_zero(predictor)
        else:
            assert _is_zero(field) and _is_zero(predictor)
    assert _is_zero(_grads(model.head))


def test_the_readout_learns_alone_from_the_task_loss():
    model = _model()
    x, y = torch.randn(4, 6, 2), torch.randn(4, 2)
    rnnode.training.task_loss(model(x), y, "regression").backward()
    assert _is_zero(_grads(model.rnn)) and _is_zero(_grads(model.predictors))
    assert not _is_zero(_grads(model.head))


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_local_losses_match_numpy(cell):
    model = _model(skips=(1, 2), cell=cell)
    x = torch.randn(2, 5, 2)
    _, solution = model.run(x)
    losses = model.local_losses(solution, x)
    hidden = solution.hidden[:, 0].detach().numpy()  # (L, T + 1, batch, H)
    xs = x.transpose(0, 1).numpy()
    sources = {0: [xs], 1: [hidden[0, 1:], xs], 2: [hidden[1, 1:], hidden[0, 1:]]}
    for layer in range(3):
        s = np.concatenate(sources[layer], axis=-1)
        W = model.predictors[layer].weight.detach().numpy()
        b = model.predictors[layer].bias.detach().numpy()
        h = hidden[layer]
        guess = np.concatenate([h[1:-1], s[:-1]], axis=-1) @ W.T + b
        expected = np.mean((guess - h[2:]) ** 2)
        assert abs(losses[layer].item() - expected) < 1e-14


def test_cut_layers_change_no_value():
    rnn = rnnode.ODERNN(2, 3, 3, cell="gru", skips=(1, 2))
    x = torch.randn(5, 2, 2)
    cut = rnn.solve(x, detach_layers=True)
    assert torch.equal(cut.states, rnn.solve(x).states)
    (grad,) = torch.autograd.grad(cut.output.sum(), rnn.field(2).weight_ih)
    assert grad.any()
    lower = torch.autograd.grad(cut.output.sum(), rnn.field(0).weight_ih, allow_unused=True)[0]
    assert lower is None or not lower.any()


def test_prediction_is_the_backprop_models_prediction_at_the_same_weights():
    torch.manual_seed(5)
    pc = PredictiveCoding(rnnode.ODERNN(2, 3, 2), 2, per_step=True)
    torch.manual_seed(5)
    bp = SequenceModel(rnnode.ODERNN(2, 3, 2), 2, per_step=True)
    x = torch.randn(3, 4, 2)
    torch.testing.assert_close(pc(x), bp(x), rtol=0, atol=0)


def test_loss_sums_local_and_readout_losses():
    model = _model()
    model.local_weight = 0.25
    x, y = torch.randn(3, 5, 2), torch.randn(3, 2)
    total, parts = model.loss(x, y)
    expected = parts["task"] + 0.25 * sum(parts[f"local_{l}"] for l in range(3))
    assert abs(total.item() - expected) < 1e-14


def test_compare_with_backprop_starts_both_from_the_same_network():
    task = rnnode.training.sines_task(16, 8, 6, seed=1)

    def make_rnn():
        return rnnode.ODERNN(1, 4, 2)

    untrained = compare_with_backprop(task, make_rnn, steps=0, batch_size=8)
    assert untrained["predictive_coding"]["test"] == untrained["backprop"]["test"]
    trained = compare_with_backprop(task, make_rnn, steps=3, batch_size=8)
    pc, bp = trained["predictive_coding"], trained["backprop"]
    assert set(pc["history"]) == {
        "step",
        "loss",
        "task",
        "local_0",
        "local_1",
        "nfe",
        "backward_nfe",
    }
    # Euler step 1, 2 sampled layers: one evaluation per layer per sample step
    T = task.x_train.shape[1]
    assert pc["history"]["nfe"] == [2 * T] * 3
    assert len(pc["history"]["loss"]) == len(bp["history"]["loss"]) == 3
    # The first step scores the same untrained readout on the same batch.
    assert pc["history"]["task"][0] == bp["history"]["task"][0]
    assert pc["test"] != bp["test"]  # different learning rules, different networks after training


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: PredictiveCoding(rnnode.ODERNN(1, 2, bidirectional=True), 1), "rnn"),
        (lambda: PredictiveCoding(rnnode.ODERNN(1, 2, 2, coupling="continuous"), 1), "rnn"),
        (lambda: PredictiveCoding(rnnode.ODERNN(1, 2), 1, local_weight=-1.0), "local_weight"),
        (lambda: PredictiveCoding(rnnode.ODERNN(1, 2), 1)(torch.zeros(2, 1, 1)), "x"),
        (
            lambda: rnnode.ODERNN(1, 2, 2).solve(
                torch.zeros(2, 1), coupling="continuous", detach_layers=True
            ),
            "detach_layers",
        ),
    ],
)
def test_bad_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()
