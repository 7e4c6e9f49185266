"""Skip connections: ODERNN(..., skips=offsets) in both couplings, every cell.

References: the number of gradient paths counted by enumeration (and Binet's formula for
Fibonacci), and hand-written stacks that step torch.nn's cells (sampled coupling) or Euler on
the joint field built from torch.nn's cells (continuous coupling).
"""

import itertools
import math

import pytest
import torch
from torch import nn

import rnnode


def _paths(distance: int, offsets: tuple[int, ...]) -> int:
    """Number of ordered ways to climb ``distance`` layers with steps from ``offsets``."""
    count = 0
    for n in range(distance + 1):
        for steps in itertools.product(offsets, repeat=n):
            count += sum(steps) == distance
    return count


def _sources(layer: int, offsets: tuple[int, ...]) -> list[int]:
    """Layers feeding ``layer`` by increasing offset; -1 is the input, read once."""
    found = []
    for s in sorted(offsets):
        j = max(layer - s, -1)
        if j not in found:
            found.append(j)
    return found


@pytest.mark.parametrize("num_layers", [2, 3, 5, 7])
@pytest.mark.parametrize("skips", [(1,), (1, 2), (1, 3), (1, 2, 3), (2,)])
def test_unit_weight_gradient_counts_the_paths(skips, num_layers):
    """Linear layers, W_ih = 1, W_hh = 0, no bias: one Euler step makes h_l = sum of its
    sources, so dh_top/dh_bottom at the same sample time is the number of paths."""
    model = rnnode.ODERNN(1, 1, num_layers, cell="linear", bias=False, skips=skips)
    for field in model.layers:
        field.weight_ih.data.fill_(1.0)
        field.weight_hh.data.zero_()
    sol = model.solve(torch.randn(3, 2, 1), track_state_gradients=True)
    loss = sol.states[-1, 0, -1].sum()  # top state at t_T, summed over the batch
    grad = sol.state_gradients(loss)[0, 0, -1]  # d loss / d bottom state at t_T, (batch, 1)
    expected = _paths(num_layers - 1, skips)
    assert torch.equal(grad, torch.full_like(grad, float(expected)))


@pytest.mark.parametrize("num_layers", [4, 8])
def test_offsets_one_and_two_give_fibonacci(num_layers):
    model = rnnode.ODERNN(1, 1, num_layers, cell="linear", bias=False, skips=(1, 2))
    for field in model.layers:
        field.weight_ih.data.fill_(1.0)
        field.weight_hh.data.zero_()
    sol = model.solve(torch.randn(2, 1, 1), track_state_gradients=True)
    grad = sol.state_gradients(sol.states[-1, 0, -1].sum())[0, 0, -1]
    phi = (1 + math.sqrt(5)) / 2
    fibonacci = round(phi**num_layers / math.sqrt(5))  # F_n with F_1 = F_2 = 1, n = num_layers
    assert float(grad) == fibonacci


def _torch_cells(model):
    """torch.nn cells carrying the weights of each layer's field (forward direction)."""
    cls = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}.get(model.cell)
    cells = []
    for layer in range(model.num_layers):
        field = model.field(layer)
        if cls is None:  # linear: h' = W_hh h + W_ih s + b
            cells.append(field)
            continue
        cell = cls(field.input_size, field.hidden_size)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(field, name).data)
        cells.append(cell)
    return cells


def _phi(cell, s, state, H):
    """The discrete update (h, [c]) -> next, on a concatenated state."""
    if isinstance(cell, nn.LSTMCell):
        h, c = cell(s, (state[..., :H], state[..., H:]))
        return torch.cat([h, c], dim=-1)
    if isinstance(cell, (nn.RNNCell, nn.GRUCell)):
        return cell(s, state)
    return s @ cell.weight_ih.T + state @ cell.weight_hh.T + cell.bias_ih + cell.bias_hh


CELLS = ["rnn", "gru", "lstm", "linear"]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("skips", [(1, 2), (1, 3), (2, 1, 4)])
def test_sampled_coupling_is_the_discrete_skip_stack(cell, skips):
    L, H, T = 4, 3, 5
    model = rnnode.ODERNN(2, H, L, cell=cell, skips=skips)
    x = torch.randn(T, 2, 2)
    out, _ = model(x)
    sol = model.solve(x)
    cells = _torch_cells(model)
    S = model.field(0).state_size
    outputs = {-1: x}
    for layer in range(L):
        s = torch.cat([outputs[j] for j in _sources(layer, skips)], dim=-1)
        state, hs = torch.zeros(2, S), []
        for k in range(T):
            state = _phi(cells[layer], s[k], state, H)
            hs.append(state)
        traj = torch.stack(hs)
        torch.testing.assert_close(sol.states[layer, 0, 1:], traj, rtol=0, atol=1e-12)
        outputs[layer] = traj[..., :H]
    torch.testing.assert_close(out, outputs[L - 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("skips", [(1, 2), (1, 3)])
def test_continuous_coupling_is_euler_on_the_joint_skip_field(cell, skips):
    """Every layer reads its sources' states at the same instant; the held input x_k on
    [t_{k-1}, t_k); Euler with 4 steps per interval, written out by hand."""
    L, H, T, substeps = 4, 2, 3, 4
    model = rnnode.ODERNN(2, H, L, cell=cell, skips=skips, coupling="continuous")
    x = torch.randn(T, 2, 2)
    sol = model.solve(x, method="euler", step_size=1.0 / substeps)
    cells = _torch_cells(model)
    S = model.field(0).state_size
    states = [torch.zeros(2, S) for _ in range(L)]
    expected = [torch.stack(states)]
    for k in range(T):
        for _ in range(substeps):
            sources = {-1: x[k], **{j: states[j][..., :H] for j in range(L)}}
            drives = [torch.cat([sources[j] for j in _sources(l, skips)], -1) for l in range(L)]
            rates = [_phi(cells[l], drives[l], states[l], H) - states[l] for l in range(L)]
            states = [s + r / substeps for s, r in zip(states, rates, strict=True)]
        expected.append(torch.stack(states))
    expected = torch.stack(expected, dim=1)  # (L, T + 1, batch, S)
    torch.testing.assert_close(sol.states[:, 0], expected, rtol=0, atol=1e-12)


def test_input_is_read_once_when_several_offsets_reach_below():
    model = rnnode.ODERNN(3, 4, 3, skips=(1, 2, 5))
    assert model.field(0).input_size == 3  # offsets 1, 2, 5 all reach the input
    assert model.field(1).input_size == 4 + 3  # layer 0 and the input (offsets 2 and 5)
    assert model.field(2).input_size == 4 + 4 + 3


@pytest.mark.parametrize(
    ("skips", "error"),
    [
        ((), ValueError),
        ((0,), ValueError),
        ((1, 1), ValueError),
        ((-1,), ValueError),
        ((1.5,), TypeError),
        (2, TypeError),
        ("12", TypeError),
        ((True,), TypeError),
    ],
)
def test_bad_skips_are_rejected(skips, error):
    with pytest.raises(error, match="skips: expected distinct positive integer offsets"):
        rnnode.ODERNN(1, 2, 3, skips=skips)
