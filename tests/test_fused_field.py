"""The continuously coupled stack's joint field as one block-structured operation (``_Block``)
against the per-layer loop it replaces: equal to 1e-12 in float64, gradients included."""

import pytest
import torch

import rnnode
from rnnode import _block, _stack_ode

CASES = [
    pytest.param({"cell": "rnn"}, id="tanh"),
    pytest.param({"cell": "rnn", "nonlinearity": "relu"}, id="relu"),
    pytest.param({"cell": "gru"}, id="gru"),
    pytest.param({"cell": "lstm"}, id="lstm"),
    pytest.param({"cell": "linear", "tau": [1.5, 0.7, 2.0]}, id="linear-taus"),
    pytest.param({"cell": "rnn", "skips": (1, 2)}, id="tanh-skips12"),
    pytest.param({"cell": "lstm", "skips": (1, 2), "tau": 0.8}, id="lstm-skips12-tau"),
    pytest.param({"cell": "gru", "learn_tau": True, "tau": 1.3}, id="gru-learn-tau"),
    pytest.param({"cell": "rnn", "bias": False, "skips": (2,)}, id="tanh-nobias-skip2"),
]


def _model(kwargs, num_layers=3):
    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 4, num_layers, **kwargs).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # away from torch's small init, so that every term matters
    return model


def _solve(model, fuse, monkeypatch, x, **kw):
    """Outputs, final states and the gradients of a loss on both (x, every parameter)."""
    monkeypatch.setattr(_stack_ode, "_FUSE", fuse)
    used = []
    for name in ("rate", "rate_chain"):  # the plain stack takes the block's short path
        method = getattr(_block._Block, name)
        monkeypatch.setattr(
            _block._Block, name, lambda *a, method=method: used.append(1) or method(*a)
        )
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    sol = model.solve(x, coupling="continuous", **kw)
    states = sol.states
    loss = (sol.output**2).sum() + states.sin().sum()
    loss.backward()
    grads = [x.grad] + [p.grad for p in model.parameters()]
    assert bool(used) == fuse
    return sol.output.detach(), states.detach(), grads


def _assert_same(a, b, tol):
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=0, atol=tol)


@pytest.mark.parametrize("kwargs", CASES)
def test_fused_rk4_solve_equals_the_layer_loop(kwargs, monkeypatch):
    model = _model(kwargs)
    x = torch.randn(5, 3, 2, dtype=torch.float64)
    fused = _solve(model, True, monkeypatch, x, method="rk4", step_size=0.5)
    loop = _solve(model, False, monkeypatch, x, method="rk4", step_size=0.5)
    _assert_same(fused[:2], loop[:2], 1e-12)
    _assert_same(fused[2], loop[2], 1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        pytest.param({"method": "dopri5", "rtol": 1e-5, "atol": 1e-7}, id="dopri5"),
        pytest.param({"method": "euler", "adjoint": True, "interpolation": "cubic"}, id="adjoint"),
        pytest.param({"method": "midpoint", "interpolation": "linear"}, id="linear"),
        pytest.param({"method": "euler", "interpolation": "causal"}, id="causal"),
    ],
)
def test_fused_solves_equal_the_loop_for_other_methods_and_paths(kw, monkeypatch):
    model = _model({"cell": "gru", "skips": (1, 2)})
    x = torch.randn(4, 2, 2, dtype=torch.float64)
    fused = _solve(model, True, monkeypatch, x, **kw)
    loop = _solve(model, False, monkeypatch, x, **kw)
    _assert_same(fused[:2], loop[:2], 1e-12)
    _assert_same(fused[2], loop[2], 1e-12)


def test_fused_per_sample_times_equal_the_loop(monkeypatch):
    model = _model({"cell": "lstm"})
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    widths = torch.rand(4, 3, dtype=torch.float64) + 0.3
    t = torch.cat([torch.zeros(1, 3, dtype=torch.float64), widths.cumsum(0)])
    fused = _solve(model, True, monkeypatch, x, t=t, method="rk4", step_size=0.4)
    loop = _solve(model, False, monkeypatch, x, t=t, method="rk4", step_size=0.4)
    _assert_same(fused[:2], loop[:2], 1e-12)
    _assert_same(fused[2], loop[2], 1e-12)


def test_fused_gradients_pass_gradcheck():
    model = _model({"cell": "rnn", "skips": (1, 2)})
    weight = model.field(2).weight_ih  # stacked by the block: its gradient by differences
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)

    def solve(x):
        return model(x, coupling="continuous", method="rk4", step_size=0.5)[0]

    assert torch.autograd.gradcheck(solve, (x,))
    out = solve(x.detach())
    (g,) = torch.autograd.grad(out.sum(), [weight])
    eps, i, j = 1e-6, 1, 3
    with torch.no_grad():
        weight[i, j] += eps
        up = solve(x.detach()).sum()
        weight[i, j] -= 2 * eps
        down = solve(x.detach()).sum()
        weight[i, j] += eps
    assert abs(float(g[i, j]) - float(up - down) / (2 * eps)) < 1e-8


def test_fused_solve_matches_the_joint_field():
    # The block evaluates what ODERNN.joint_field (a per-layer reference) says at a held input.
    model = _model({"cell": "lstm", "skips": (1, 2)})
    x = torch.randn(1, 3, 2, dtype=torch.float64)
    h0 = torch.randn(3, 3, 4, dtype=torch.float64)
    c0 = torch.randn(3, 3, 4, dtype=torch.float64)
    t = torch.tensor([0.0, 1e-3], dtype=torch.float64)
    sol = model.solve(x, (h0, c0), t=t, coupling="continuous", method="euler")
    state0 = torch.cat([h0, c0], -1).transpose(0, 1)  # (B, L, S)
    rate = model.joint_field(state0, x[0])
    expected = state0 + 1e-3 * rate
    torch.testing.assert_close(sol.states[:, 0, 1].transpose(0, 1), expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"cell": "cornn", "num_layers": 2}, id="cornn"),
        pytest.param({"cell": "antisymmetric", "num_layers": 2}, id="antisymmetric"),
        pytest.param({"cell": "rnn", "num_layers": 1, "bidirectional": True}, id="bidirectional"),
    ],
)
def test_stacks_without_a_block_fall_back_to_the_loop(kwargs, monkeypatch):
    calls = []
    rate = _block._Block.rate
    monkeypatch.setattr(_block._Block, "rate", lambda *a: calls.append(1) or rate(*a))
    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 3, **kwargs).double()
    x = torch.randn(3, 2, 2, dtype=torch.float64)
    out, _ = model(x, coupling="continuous", method="rk4")
    assert not calls
    ref, _ = model(x, coupling="sampled", method="rk4") if kwargs["num_layers"] == 1 else (out, 0)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_the_chain_short_path_is_the_block_rate_to_the_bit(cell):
    """``rate_chain`` (a plain stack driven through its first layer) does ``rate``'s
    operations in the same order: the same numbers exactly, not just to rounding."""
    model = _model({"cell": cell, "tau": [1.0, 0.5, 2.0]})
    fields = list(model.layers)
    internal = [[]] + [[(i - 1, slice(None))] for i in range(1, 3)]
    weights = [[]] + [[f.weight_ih] for f in fields[1:]]
    block = _block._Block.make(fields, internal, weights)
    assert block.chain
    torch.manual_seed(1)
    y = torch.randn(3, 5, fields[0].state_size, dtype=torch.float64)
    drive = torch.randn(5, fields[0].weight_ih.shape[0], dtype=torch.float64)
    want = block.rate(y, [drive, None, None])
    assert torch.equal(block.rate_chain(y, drive), want)
