"""Vector fields: each relaxation field's Euler step is torch's cell; gradcheck in float64."""

import pytest
import torch
from torch import nn

import rnnode
from rnnode._fields import make_field

TORCH_CELLS = {
    "rnn": lambda: nn.RNNCell(3, 4),
    "gru": lambda: nn.GRUCell(3, 4),
    "lstm": lambda: nn.LSTMCell(3, 4),
}


def _field_from_cell(name, cell):
    field = make_field(name, 3, 4)
    with torch.no_grad():
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(field, p).copy_(getattr(cell, p))
    return field


@pytest.mark.parametrize("name", sorted(TORCH_CELLS))
def test_unit_euler_step_is_the_torch_cell(name):
    cell = TORCH_CELLS[name]().double()
    field = _field_from_cell(name, cell)
    x, h = torch.randn(5, 3), torch.randn(5, field.state_size)
    rate = field(torch.tensor(0.0), h, field.project(x))
    if name == "lstm":
        h_next, c_next = cell(x, (h[:, :4], h[:, 4:]))
        expected = torch.cat([h_next, c_next], dim=-1)
    else:
        expected = cell(x, h)
    torch.testing.assert_close(h + rate, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_tau_scales_the_field(tau):
    slow, unit = make_field("gru", 3, 4, tau=tau), make_field("gru", 3, 4)
    unit.load_state_dict(
        {k: v for k, v in slow.state_dict().items() if k != "fixed_tau"}, strict=False
    )
    h, u = torch.randn(2, 4), torch.randn(2, 12)
    t = torch.tensor(0.0)
    torch.testing.assert_close(slow(t, h, u) * tau, unit(t, h, u), rtol=1e-15, atol=0)


def test_linear_field_is_A_h_plus_B_x_plus_b():
    field = make_field("linear", 3, 4, tau=2.0)
    h, x = torch.randn(4), torch.randn(3)
    b = (field.bias_ih + field.bias_hh) / 2.0
    expected = field.A @ h + field.B @ x + b
    torch.testing.assert_close(
        field(torch.tensor(0.0), h, field.project(x)), expected, rtol=0, atol=1e-15
    )


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm", "linear"])
@pytest.mark.parametrize("learn_tau", [False, True])
def test_gradcheck_state_drive_and_parameters(name, learn_tau):
    field = make_field(name, 2, 3, tau=1.5, learn_tau=learn_tau)
    h = torch.randn(2, field.state_size, requires_grad=True)
    u = torch.randn(2, field.gates * 3, requires_grad=True)
    names = [n for n, _ in field.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in field.parameters())

    def f(h, u, *ps):
        weights = dict(zip(names, ps, strict=True))
        return torch.func.functional_call(field, weights, (torch.tensor(0.0), h, u))

    assert torch.autograd.gradcheck(f, (h, u, *params))


def test_relu_elman_field():
    field = make_field("rnn", 3, 4, nonlinearity="relu")
    h, u = torch.randn(6, 4), torch.randn(6, 4)
    expected = -h + torch.relu(u + h @ field.weight_hh.T + field.bias_hh)
    torch.testing.assert_close(field(torch.tensor(0.0), h, u), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"nonlinearity": "sigmoid"}, "nonlinearity: expected one of"),
        ({"tau": 0.0}, "tau: expected a positive"),
        ({"tau": -1.0}, "tau: expected a positive"),
    ],
)
def test_bad_field_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_field("rnn", 3, 4, **kwargs)


def test_unknown_cell_names_the_argument():
    with pytest.raises(ValueError, match="cell: expected one of"):
        make_field("transformer", 3, 4)
    assert {"rnn", "gru", "lstm", "linear"} <= set(rnnode.CELLS)
