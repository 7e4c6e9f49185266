"""The discretization bridge: from_torch(m)(x, hx) equals m(x, hx); to_torch goes back exactly."""

import dataclasses
import itertools

import pytest
import torch
from torch import nn

import rnnode

CELLS = [
    (nn.RNN, {"nonlinearity": "tanh"}),
    (nn.RNN, {"nonlinearity": "relu"}),
    (nn.GRU, {}),
    (nn.LSTM, {}),
]
CONFIGS = list(
    itertools.product(
        range(len(CELLS)), (1, 3), (False, True), (False, True), (True, False), (False, True)
    )
)


def _make(
    cell: int, layers: int, bidirectional: bool, batch_first: bool, bias: bool, dtype=torch.float64
) -> nn.RNNBase:
    cls, kwargs = CELLS[cell]
    return cls(
        3,
        5,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
        **kwargs,
    ).to(dtype)


def _inputs(module: nn.RNNBase, with_hx: bool, unbatched: bool = False, T: int = 7, batch: int = 4):
    dtype = module.weight_ih_l0.dtype
    shape = (T, 3) if unbatched else ((batch, T, 3) if module.batch_first else (T, batch, 3))
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    if not with_hx:
        return x, None
    n = module.num_layers * (2 if module.bidirectional else 1)
    hshape = (n, 5) if unbatched else (n, batch, 5)
    h = torch.randn(hshape, dtype=dtype, requires_grad=True)
    if isinstance(module, nn.LSTM):
        return x, (h, torch.randn(hshape, dtype=dtype, requires_grad=True))
    return x, h


def _flat(out):
    """output and h_n (or (h_n, c_n)) as a flat list of tensors."""
    output, state = out
    return [output, *(state if isinstance(state, tuple) else (state,))]


def _compare(module, model, x, hx, tol):
    """Outputs, final states and every gradient of the two models agree to ``tol``."""
    ours, theirs = _flat(model(x, hx)), _flat(module(x, hx))
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=tol)
    # One random linear functional of every output, so every gradient path is exercised.
    weights = [torch.randn_like(b) for b in theirs]
    leaves = [x] + ([] if hx is None else list(hx if isinstance(hx, tuple) else (hx,)))
    loss_t = sum((w * b).sum() for w, b in zip(weights, theirs, strict=True))
    loss_o = sum((w * a).sum() for w, a in zip(weights, ours, strict=True))
    g_t = torch.autograd.grad(loss_t, leaves + list(module.parameters()))
    g_o = torch.autograd.grad(loss_o, leaves + list(_params_in_torch_order(module, model)))
    for a, b in zip(g_o, g_t, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)


def _params_in_torch_order(module, model):
    for name, _ in module.named_parameters():
        base, rest = name.split("_l", 1)
        layer = int(rest.split("_")[0])
        field = model.field(layer, 1 if name.endswith("_reverse") else 0)
        yield getattr(field, base)


@pytest.mark.parametrize("cell,layers,bidirectional,batch_first,bias,with_hx", CONFIGS)
def test_from_torch_float64_outputs_states_and_gradients(
    cell, layers, bidirectional, batch_first, bias, with_hx
):
    module = _make(cell, layers, bidirectional, batch_first, bias)
    model = rnnode.from_torch(module)
    x, hx = _inputs(module, with_hx)
    # Rounding only: each Euler step h + 1 * (Phi - h) differs from Phi by at most an ulp or so.
    _compare(module, model, x, hx, tol=1e-12)


@pytest.mark.parametrize("cell", range(len(CELLS)))
@pytest.mark.parametrize("with_hx", [False, True])
def test_from_torch_unbatched_input(cell, with_hx):
    module = _make(cell, 2, True, False, True)
    x, hx = _inputs(module, with_hx, unbatched=True)
    _compare(module, rnnode.from_torch(module), x, hx, tol=1e-12)


@pytest.mark.parametrize("cell", range(len(CELLS)))
def test_from_torch_float32(cell):
    module = _make(cell, 3, True, False, True, dtype=torch.float32)
    model = rnnode.from_torch(module)
    assert model.layers[0].weight_ih.dtype == torch.float32
    x, hx = _inputs(module, True, T=20)
    _compare(module, model, x, hx, tol=1e-5)


@pytest.mark.parametrize("cell", range(len(CELLS)))
def test_to_torch_round_trip_is_exact(cell):
    module = _make(cell, 2, True, True, True)
    back = rnnode.from_torch(module).to_torch()
    assert type(back) is type(module)
    config = (back.num_layers, back.bidirectional, back.batch_first, back.bias)
    assert config == (2, True, True, True)
    for (name, p), (name_b, q) in zip(
        module.named_parameters(), back.named_parameters(), strict=True
    ):
        assert name == name_b and torch.equal(p, q)
    x, hx = _inputs(module, True)
    for a, b in zip(_flat(module(x, hx)), _flat(back(x, hx)), strict=True):
        assert torch.equal(a, b)


def test_fresh_odernn_to_torch_reproduces_the_odernn():
    model = rnnode.ODERNN(3, 5, num_layers=2, cell="gru", bidirectional=True)
    module = model.to_torch()
    x = torch.randn(6, 2, 3)
    for a, b in zip(_flat(model(x)), _flat(module(x)), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_dropout_is_carried_and_eval_mode_matches():
    module = nn.LSTM(3, 5, num_layers=3, dropout=0.3).double().eval()
    model = rnnode.from_torch(module)
    assert model.dropout == 0.3 and not model.training
    x, hx = _inputs(module, True)
    _compare(module, model, x, hx, tol=1e-12)
    model.train()
    y1, y2 = model(x)[0], model(x)[0]
    assert not torch.equal(y1, y2)  # dropout acts between layers in training mode


def test_proj_size_is_not_implemented():
    with pytest.raises(NotImplementedError, match="proj_size=2"):
        rnnode.from_torch(nn.LSTM(3, 5, proj_size=2))


def test_from_torch_rejects_other_modules():
    with pytest.raises(ValueError, match="module: expected torch.nn.RNN"):
        rnnode.from_torch(nn.Linear(3, 5))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"cell": "linear"}, "cell='linear'"),
        ({"skips": (1, 2), "num_layers": 3}, "skips"),
        ({"tau": 2.0}, "tau=2.0"),
        ({"learn_tau": True}, "learnable"),
    ],
)
def test_to_torch_refuses_models_without_a_torch_twin(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rnnode.ODERNN(3, 5, **kwargs).to_torch()


def test_bridge_defaults_are_euler_hold_sampled():
    model = rnnode.from_torch(nn.GRU(2, 3))
    assert dataclasses.asdict(model.defaults) == {
        "method": "euler",
        "step_size": None,
        "rtol": 1e-6,
        "atol": 1e-8,
        "interpolation": "hold",
        "coupling": "sampled",
        "engine": "rnnode",
    }
    assert model.defaults == rnnode.SolveSettings()


def test_explicit_step_one_on_unit_times_is_still_the_bridge():
    """Euler with step_size=1 on t = 0..T is the same grid as the default."""
    module = nn.RNN(3, 5, num_layers=2).double()
    model = rnnode.from_torch(module)
    x = torch.randn(9, 2, 3)
    torch.testing.assert_close(model(x, step_size=1.0)[0], module(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
def test_from_torch_of_a_meta_module_is_refused_at_once(cls):
    module = cls(2, 3, num_layers=2, device="meta")
    with pytest.raises(ValueError, match=r"^module: .*'meta' device"):
        rnnode.from_torch(module)
    model = rnnode.ODERNN(2, 3, cell=cls.__name__.lower()).to("meta")
    with pytest.raises(ValueError, match=r"^model: .*'meta' device"):
        rnnode.to_torch(model)


@pytest.mark.parametrize("direction", ["from_torch", "to_torch"])
def test_bridging_copies_the_weights_edits_afterwards_are_not_shared(direction):
    module = nn.LSTM(2, 3, num_layers=2)
    model = rnnode.from_torch(module)
    if direction == "to_torch":
        module = rnnode.to_torch(model)
    x = torch.randn(4, 1, 2)
    before = model(x)[0].detach().clone()
    assert module.weight_hh_l1.data_ptr() != model.field(1).weight_hh.data_ptr()
    with torch.no_grad():
        module.weight_hh_l1.add_(1.0)  # an edit of the torch module ...
    assert torch.equal(model(x)[0], before)  # ... does not reach the model,
    with torch.no_grad():
        model.field(0).weight_ih.mul_(2.0)  # and an edit of the model does not reach the module
    assert not torch.equal(module.weight_ih_l0, model.field(0).weight_ih)
    torch.testing.assert_close(module.weight_ih_l0 * 2, model.field(0).weight_ih, rtol=0, atol=0)
