"""Readouts, auxiliary losses and the LSTM gate-coupling penalty.

References: torch.nn.LSTMCell unrolled by hand with the gates computed from its own weights,
numpy for the penalty and the task losses, and a direct comparison of gradient norms with and
without auxiliary heads.
"""

import numpy as np
import pytest
import torch
from torch import nn

import rnnode
from rnnode.training import SequenceModel, gate_coupling_penalty


def _lstm_reference(model, x):
    """Unroll torch.nn.LSTMCell per layer and direction; gates from the cell's own weights.

    Returns gates {name: (L, D, T, batch, H)} in forward time order and the top output.
    """
    H, D = model.hidden_size, model.num_directions
    layer_input = x
    gates = {k: [] for k in "ifgo"}
    for layer in range(model.num_layers):
        outs, per_dir = [], {k: [] for k in "ifgo"}
        for d in range(D):
            field = model.field(layer, d)
            cell = nn.LSTMCell(field.input_size, H)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).data.copy_(getattr(field, name).data)
            seq = layer_input if d == 0 else layer_input.flip(0)
            h = c = torch.zeros(x.shape[1], H)
            hs, g = [], {k: [] for k in "ifgo"}
            for s in seq:
                pre = s @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
                i, f, gg, o = pre.chunk(4, dim=-1)
                for name, value in zip(
                    "ifgo",
                    (torch.sigmoid(i), torch.sigmoid(f), torch.tanh(gg), torch.sigmoid(o)),
                    strict=True,
                ):
                    g[name].append(value)
                h, c = cell(s, (h, c))
                hs.append(h)
            hs = torch.stack(hs)
            outs.append(hs if d == 0 else hs.flip(0))
            for name in "ifgo":
                seq_g = torch.stack(g[name])
                per_dir[name].append(seq_g if d == 0 else seq_g.flip(0))
        for name in "ifgo":
            gates[name].append(torch.stack(per_dir[name]))
        layer_input = torch.cat(outs, dim=-1)
    return {k: torch.stack(v) for k, v in gates.items()}, layer_input


@pytest.mark.parametrize("bidirectional", [False, True])
def test_returned_gates_are_the_lstm_cells_gates(bidirectional):
    model = rnnode.ODERNN(2, 3, 3, cell="lstm", bidirectional=bidirectional)
    x = torch.randn(5, 2, 2)
    sol = model.solve(x, return_gates=True)
    gates, top = _lstm_reference(model, x)
    torch.testing.assert_close(sol.output, top, rtol=0, atol=1e-12)
    for name in "ifgo":
        assert sol.gates[name].shape == (3, model.num_directions, 5, 2, 3)
        torch.testing.assert_close(sol.gates[name], gates[name], rtol=0, atol=1e-12)


def test_continuous_coupling_gates_read_the_states_at_the_step_start():
    """Gates of the step from t_k: the layer's state at t_k, the held input x_{k+1} and the
    layer below's hidden state at t_k (the joint ODE's drive just after t_k)."""
    model = rnnode.ODERNN(2, 3, 2, cell="lstm", coupling="continuous")
    x = torch.randn(4, 2, 2)
    sol = model.solve(x, method="rk4", step_size=0.5, return_gates=True)
    H = 3
    for layer in range(2):
        f = model.field(layer)
        h = sol.states[layer, 0, :-1, :, :H]  # (T, batch, H) at t_0..t_{T-1}
        s = x if layer == 0 else sol.states[layer - 1, 0, :-1, :, :H]
        pre = s @ f.weight_ih.T + f.bias_ih + h @ f.weight_hh.T + f.bias_hh
        i, fg, g, o = pre.chunk(4, dim=-1)
        expected = {"i": i.sigmoid(), "f": fg.sigmoid(), "g": g.tanh(), "o": o.sigmoid()}
        for name, value in expected.items():
            torch.testing.assert_close(sol.gates[name][layer, 0], value, rtol=0, atol=1e-15)


def test_gate_coupling_penalty_matches_a_hand_computation():
    model = rnnode.ODERNN(2, 4, 3, cell="lstm")
    for field in model.layers:
        field.bias_ih.data -= 1.5  # close the gates somewhat, so the relu is active somewhere
    x = torch.randn(6, 3, 2)
    penalty = gate_coupling_penalty(model.solve(x, return_gates=True).gates, weight=0.7)
    gates, _ = _lstm_reference(model, x)
    o, i = gates["o"].detach().numpy(), gates["i"].detach().numpy()
    pairs = [np.maximum(1 - o[l] - i[l + 1], 0) ** 2 for l in range(2)]
    assert np.count_nonzero(np.stack(pairs)) > 0
    expected = 0.7 * np.mean(np.stack(pairs))
    assert abs(penalty.item() - expected) < 1e-14


def test_gate_coupling_penalty_passes_gradcheck():
    model = rnnode.ODERNN(1, 2, 2, cell="lstm")
    for field in model.layers:
        field.bias_ih.data -= 1.5  # keep the relu active
    x = torch.randn(3, 2, 1, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: gate_coupling_penalty(model.solve(x, return_gates=True).gates), (x,)
    )


def _input_gate_rows(model):
    """Input-gate rows of weight_ih of layers 1..L-1: (D, H, D * H) each."""
    H, D = model.hidden_size, model.num_directions
    return [
        torch.stack([model.field(layer, d).weight_ih[:H] for d in range(D)])
        for layer in range(1, model.num_layers)
    ]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_input_weighted_penalty_matches_a_hand_computation(bidirectional):
    model = rnnode.ODERNN(2, 3, 3, cell="lstm", bidirectional=bidirectional)
    for field in model.layers:
        field.bias_ih.data -= 1.5  # close the gates somewhat, so the relu is active somewhere
    x = torch.randn(5, 2, 2)
    weights = _input_gate_rows(model)
    penalty = gate_coupling_penalty(
        model.solve(x, return_gates=True).gates,
        weight=0.7,
        weighting="input_weight",
        input_weights=weights,
    )
    gates, _ = _lstm_reference(model, x)
    o, i = gates["o"].detach().numpy(), gates["i"].detach().numpy()
    L, D, T, B, H = o.shape
    terms, active = [], 0
    for layer in range(L - 1):
        w = np.abs(weights[layer].detach().numpy())
        for d in range(D):
            norm = w[d] / w[d].sum()
            for t in range(T):
                for b in range(B):
                    total = 0.0
                    for up in range(H):
                        for dl in range(D):
                            for h in range(H):
                                v = max(1 - o[layer, dl, t, b, h] - i[layer + 1, d, t, b, up], 0)
                                active += v > 0
                                total += norm[up, dl * H + h] * v**2
                    terms.append(total)
    assert active > 0
    assert abs(penalty.item() - 0.7 * np.mean(terms)) < 1e-14


def test_input_weighted_penalty_with_identity_weights_is_the_uniform_penalty():
    model = rnnode.ODERNN(1, 4, 3, cell="lstm")
    for field in model.layers:
        field.bias_ih.data -= 1.5
    gates = model.solve(torch.randn(6, 3, 1), return_gates=True).gates
    eye = [-2.5 * torch.eye(4)[None], 0.1 * torch.eye(4)[None]]  # |.| and scale drop out
    weighted = gate_coupling_penalty(gates, 0.3, weighting="input_weight", input_weights=eye)
    uniform = gate_coupling_penalty(gates, 0.3)
    assert uniform.item() > 0
    assert abs(weighted.item() - uniform.item()) < 1e-15


def test_input_weighted_penalty_passes_gradcheck_and_leaves_the_weights_alone():
    model = rnnode.ODERNN(1, 2, 3, cell="lstm")
    for field in model.layers:
        field.bias_ih.data -= 1.5  # keep the relu active
    x = torch.randn(3, 2, 1, requires_grad=True)
    weights = _input_gate_rows(model)

    def penalty(x):
        gates = model.solve(x, return_gates=True).gates
        return gate_coupling_penalty(gates, weighting="input_weight", input_weights=weights)

    assert torch.autograd.gradcheck(penalty, (x,))
    model.zero_grad()
    penalty(x).backward()
    # The pair weights are constants: the gradient reaches weight_ih only through the gates, so
    # it equals the gradient with the weights passed detached.
    with_graph = [f.weight_ih.grad.clone() for f in model.layers]
    model.zero_grad()
    gates = model.solve(x, return_gates=True).gates
    detached = [w.detach().clone() for w in weights]
    gate_coupling_penalty(gates, weighting="input_weight", input_weights=detached).backward()
    for a, f in zip(with_graph, model.layers, strict=True):
        torch.testing.assert_close(a, f.weight_ih.grad, rtol=0, atol=0)


def _grad_norms(model, x, y):
    model.zero_grad()
    loss, _ = model.loss(x, y)
    loss.backward()
    return [
        torch.cat([p.grad.flatten() for p in model.rnn.field(layer).parameters()]).norm().item()
        for layer in range(model.rnn.num_layers)
    ]


def test_auxiliary_heads_send_larger_gradients_to_the_lower_layers():
    x, y = torch.randn(8, 20, 1), torch.randn(8, 1)
    norms = {}
    for name, aux in (("plain", None), ("aux", {0: 1.0, 1: 1.0})):
        torch.manual_seed(3)
        rnn = rnnode.ODERNN(1, 8, 6, tau=2.0)
        model = SequenceModel(rnn, 1, aux_weights=aux)
        norms[name] = _grad_norms(model, x, y)
    # The same stack and top readout (same seed): layers above the heads get the same gradient ...
    assert norms["aux"][2:] == pytest.approx(norms["plain"][2:], rel=1e-12)
    # ... while the heads reach layers 0 and 1 directly: gradients over twice as large.
    assert norms["aux"][0] > 2 * norms["plain"][0]
    assert norms["aux"][1] > 2 * norms["plain"][1]


def test_auxiliary_loss_is_the_weighted_sum_of_head_losses():
    torch.manual_seed(1)
    model = SequenceModel(rnnode.ODERNN(2, 3, 3), 2, per_step=True, aux_weights={0: 0.3, 1: 0.5})
    x, y = torch.randn(4, 5, 2), torch.randn(4, 5, 2)
    loss, parts = model.loss(x, y)
    sol = model.rnn.solve(x.transpose(0, 1))
    expected = 0.0
    for layer, w in ((0, 0.3), (1, 0.5), (2, 1.0)):
        head = model.head if layer == 2 else model.aux_heads[str(layer)]
        h = sol.hidden[layer, 0, 1:].transpose(0, 1).detach().numpy()  # (batch, T, H)
        W, b = head.weight.detach().numpy(), head.bias.detach().numpy()
        expected += w * np.mean((h @ W.T + b - y.numpy()) ** 2)
    assert abs(loss.item() - expected) < 1e-13
    assert abs(parts["task"] + parts["auxiliary"] - expected) < 1e-13


def test_gate_weight_adds_the_penalty():
    torch.manual_seed(2)
    rnn = rnnode.ODERNN(1, 3, 2, cell="lstm")
    plain = SequenceModel(rnn, 1)
    coupled = SequenceModel(rnn, 1, gate_weight=0.4)
    coupled.head.load_state_dict(plain.head.state_dict())
    x, y = torch.randn(3, 4, 1), torch.randn(3, 1)
    penalty = gate_coupling_penalty(rnn.solve(x.transpose(0, 1), return_gates=True).gates, 0.4)
    assert penalty.item() > 0
    total, parts = coupled.loss(x, y)
    assert abs(total.item() - plain.loss(x, y)[0].item() - penalty.item()) < 1e-14
    assert parts["gate_penalty"] == penalty.item()


def test_task_losses_match_numpy():
    scores, labels = torch.randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])
    s = scores.numpy()
    log_softmax = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(6), labels.numpy()].mean()
    assert (
        abs(float(rnnode.training.task_loss(scores, labels, "classification")) - expected) < 1e-14
    )
    metrics = rnnode.training.task_metrics(scores, labels, "classification")
    assert metrics["accuracy"] == np.mean(s.argmax(axis=1) == labels.numpy())
    a, b = torch.randn(3, 2), torch.randn(3, 2)
    mse = np.mean((a.numpy() - b.numpy()) ** 2)
    assert abs(float(rnnode.training.task_loss(a, b, "forecast")) - mse) < 1e-15
    assert rnnode.training.task_metrics(a, b, "regression")["rmse"] == pytest.approx(
        np.sqrt(mse), abs=1e-15
    )


def test_layer_features_of_the_top_layer_are_the_output():
    model = rnnode.ODERNN(2, 3, 2, bidirectional=True)
    x = torch.randn(4, 2, 2)
    sol = model.solve(x)
    assert torch.equal(rnnode.training.layer_features(sol, 1), sol.output)


def _lstm(num_layers):
    return rnnode.ODERNN(1, 2, num_layers, cell="lstm")


def _lstm_gates(num_layers=1):
    return _lstm(num_layers).solve(torch.zeros(2, 1), return_gates=True).gates


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: SequenceModel(rnnode.ODERNN(1, 2, 2), 1, aux_weights={1: 1.0}), "aux_weights"),
        (lambda: SequenceModel(rnnode.ODERNN(1, 2, 2), 1, aux_weights={0: -1.0}), "aux_weights"),
        (lambda: SequenceModel(rnnode.ODERNN(1, 2, 2, cell="gru"), 1, gate_weight=1), "gate_"),
        (lambda: SequenceModel(_lstm(1), 1, gate_weight=1), "gate_weight"),
        (lambda: SequenceModel(rnnode.ODERNN(1, 2), 1, kind="ranking"), "kind"),
        (lambda: SequenceModel(rnnode.ODERNN(1, 2), 1)(torch.zeros(2, 1)), "x"),
        (lambda: rnnode.ODERNN(1, 2).solve(torch.zeros(2, 1), return_gates=True), "return_gates"),
        (lambda: gate_coupling_penalty(_lstm_gates()), "gates"),
        (lambda: gate_coupling_penalty(_lstm_gates(2), weighting="abs"), "weighting"),
        (
            lambda: gate_coupling_penalty(_lstm_gates(2), weighting="input_weight"),
            "input_weights",
        ),
        (
            lambda: gate_coupling_penalty(
                _lstm_gates(2), weighting="input_weight", input_weights=[torch.ones(1, 2, 3)]
            ),
            r"input_weights\[0\]",
        ),
        (
            lambda: gate_coupling_penalty(
                _lstm_gates(2), weighting="input_weight", input_weights=[torch.zeros(1, 2, 2)]
            ),
            r"input_weights\[0\]",
        ),
        (
            lambda: gate_coupling_penalty(_lstm_gates(2), input_weights=[torch.ones(1, 2, 2)]),
            "input_weights",
        ),
        (
            lambda: rnnode.training.task_loss(torch.zeros(2, 1), torch.zeros(2), "regression"),
            "target",
        ),
    ],
)
def test_bad_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()
