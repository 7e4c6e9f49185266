"""Nothing silently wrong (issue "Nothing silently wrong"): each test failed before its fix.

References: a model built with the setting directly, finite differences in float64, torch.nn.
"""

import math

import pytest
import torch
from torch import nn

import rnnode
from rnnode._fields import make_field

# -- reloading weights keeps tau ---------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "antisymmetric", "cornn"])
def test_loading_a_state_dict_carries_tau_into_the_solve(cell):
    saved = rnnode.ODERNN(2, 3, cell=cell, tau=3.0)
    loaded = rnnode.ODERNN(2, 3, cell=cell)  # tau = 1 at construction
    x = torch.randn(6, 2, 2)
    loaded(x)  # solved once with tau = 1 before the load
    loaded.load_state_dict(saved.state_dict())
    assert float(loaded.layers[0].tau) == 3.0
    torch.testing.assert_close(loaded(x)[0], saved(x)[0], rtol=0, atol=0)


def test_tau_changed_in_place_back_to_one_is_seen():
    model = rnnode.ODERNN(2, 3, tau=2.0)
    reference = rnnode.ODERNN(2, 3)
    reference.load_state_dict(model.state_dict())  # tau 2 -> the reference solves with tau 2
    x = torch.randn(5, 1, 2)
    torch.testing.assert_close(reference(x)[0], model(x)[0], rtol=0, atol=0)
    with torch.no_grad():
        model.layers[0].fixed_tau.fill_(1.0)
    unit = rnnode.ODERNN(2, 3)
    unit.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x)[0], unit(x)[0], rtol=0, atol=0)


# -- dL/dt through linear and cubic interpolation --------------------------------------------


@pytest.mark.parametrize("interpolation", ["hold", "linear", "cubic"])
def test_gradient_with_respect_to_the_times_is_finite_differences(interpolation):
    """float64, rk4 on a fixed grid whose step counts do not change under the perturbation."""
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="gru")
    x = torch.randn(4, 2, 2)
    weights = torch.randn(4, 2, 3)
    t = torch.tensor([0.0, 0.7, 1.55, 2.3, 3.2], requires_grad=True)

    def loss(times):
        out, _ = model(x, t=times, method="rk4", step_size=0.5, interpolation=interpolation)
        return (out * weights).sum()

    (grad,) = torch.autograd.grad(loss(t), t)
    eps = 1e-6
    numeric = torch.zeros_like(grad)
    with torch.no_grad():
        for k in range(t.shape[0]):
            e = torch.zeros_like(t)
            e[k] = eps
            numeric[k] = (loss(t + e) - loss(t - e)) / (2 * eps)
    # Central differences: error ~ eps^2 * f''' + rounding 1e-16 / eps ~ 1e-10.
    torch.testing.assert_close(grad, numeric, rtol=1e-7, atol=1e-8)


# -- times are checked in the model's dtype ----------------------------------------------------


def test_times_that_collapse_in_the_models_dtype_are_refused():
    model = rnnode.ODERNN(2, 3).float()
    x = torch.randn(3, 1, 2, dtype=torch.float32)
    t = torch.tensor([0.0, 1.0, 1.0 + 1e-9, 2.0], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"t: expected strictly increasing times \(after the cast"):
        model(x, t=t)
    with pytest.raises(ValueError, match="t: expected strictly increasing"):
        model(x, t=t, method="dopri5")


# -- to_torch refuses a default solve that is not the discrete map; from_torch keeps frozen ------


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"method": "dopri5"}, "method='dopri5'"),
        ({"method": "rk4"}, "method='rk4'"),
        ({"step_size": 0.5}, "step_size=0.5"),
        ({"interpolation": "cubic"}, "interpolation='cubic'"),
        ({"coupling": "continuous", "num_layers": 2}, "coupling='continuous'"),
    ],
)
def test_to_torch_refuses_a_default_solve_other_than_the_discrete_map(kwargs, setting):
    model = rnnode.ODERNN(3, 4, cell="gru", **kwargs)
    with pytest.raises(ValueError, match=f"default solve has {setting}"):
        rnnode.to_torch(model)


def test_to_torch_of_one_continuous_layer_is_the_same_module():
    model = rnnode.ODERNN(3, 4, cell="gru", coupling="continuous")
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(model.to_torch()(x)[0], model(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
def test_from_torch_keeps_frozen_weights_frozen(cls):
    module = cls(3, 4, num_layers=2).double()
    module.weight_hh_l0.requires_grad_(False)
    module.bias_ih_l1.requires_grad_(False)
    model = rnnode.from_torch(module)
    assert not model.field(0).weight_hh.requires_grad
    assert not model.field(1).bias_ih.requires_grad
    assert model.field(0).weight_ih.requires_grad and model.field(1).weight_hh.requires_grad
    back = model.to_torch()
    assert not back.weight_hh_l0.requires_grad and not back.bias_ih_l1.requires_grad
    assert back.weight_ih_l0.requires_grad


# -- nonlinearity and tau ------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["gru", "lstm", "linear", "antisymmetric", "cornn"])
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "banana"])
def test_nonlinearity_for_other_cells_than_rnn_is_refused(cell, nonlinearity):
    with pytest.raises(ValueError, match="nonlinearity: applies to cell='rnn' only"):
        rnnode.ODERNN(2, 3, cell=cell, nonlinearity=nonlinearity)
    with pytest.raises(ValueError, match="nonlinearity: applies to cell='rnn' only"):
        make_field(cell, 2, 3, nonlinearity=nonlinearity)


def test_rnn_nonlinearity_default_and_choice():
    assert rnnode.ODERNN(2, 3).nonlinearity == "tanh"
    assert rnnode.ODERNN(2, 3, cell="gru").nonlinearity is None
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of \('tanh', 'relu'\)"):
        rnnode.ODERNN(2, 3, nonlinearity="banana")


@pytest.mark.parametrize("tau", [math.inf, -math.inf, math.nan, 0.0, -2.0, [1.0, math.inf]])
def test_non_finite_or_non_positive_tau_is_refused(tau):
    with pytest.raises(ValueError, match=r"tau(\[1\])?: expected a positive finite number"):
        rnnode.ODERNN(2, 3, num_layers=2, tau=tau)


# -- wrong types name the argument ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: rnnode.ODERNN(2, 3, tau="abc"), "tau"),
        (lambda: rnnode.ODERNN(2, 3, tau=None), "tau"),
        (lambda: rnnode.ODERNN(2, 3, tau=torch.tensor(2.0)), "tau"),
        (lambda: rnnode.ODERNN(2, 3, num_layers=2, tau=[1.0, "2"]), r"tau\[1\]"),
        (lambda: rnnode.ODERNN(2, 3, num_layers=2, dropout="0.5"), "dropout"),
        (lambda: rnnode.ODERNN(2, 3, skips=2), "skips"),
        (lambda: rnnode.ODERNN(2, 3, cell="cornn", cell_options={"gamma": "x"}), "gamma"),
        (lambda: rnnode.ODERNN(2, 3, cell="cornn", cell_options={"epsilon": None}), "epsilon"),
        (lambda: rnnode.ODERNN(2, 3, cell="antisymmetric", cell_options={"gamma": "x"}), "gamma"),
        (lambda: rnnode.ODERNN("2", 3), "input_size"),
        (lambda: rnnode.ODERNN(2, 3.0), "hidden_size"),
        (lambda: rnnode.ODERNN(2, 3, num_layers=True), "num_layers"),
        (lambda: rnnode.ODERNN(2, 3, cell=3), "cell"),
        (lambda: rnnode.ODERNN(2, 3, bidirectional="yes"), "bidirectional"),
        (lambda: rnnode.ODERNN(2, 3, learn_tau=1), "learn_tau"),
        (lambda: rnnode.ODERNN(2, 3, method=None), "method"),
        (lambda: rnnode.ODERNN(2, 3, method="rk4", step_size="0.5"), "step_size"),
        (lambda: rnnode.ODERNN(2, 3, rtol="1e-3"), "rtol"),
        (lambda: rnnode.ODERNN(2, 3)(torch.randn(2, 1, 2), adjoint="no"), "adjoint"),
        (lambda: make_field("rnn", 2, 3, tau="abc"), "tau"),
    ],
)
def test_wrong_types_raise_type_errors_naming_the_argument(build, name):
    with pytest.raises(TypeError, match=f"^{name}: expected"):
        build()


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: rnnode.ODERNN(2, 3, num_layers=2, dropout=1.0), "dropout"),
        (lambda: rnnode.ODERNN(2, 3, num_layers=2, dropout=-0.1), "dropout"),
        (lambda: rnnode.ODERNN(2, 3, cell="cornn", cell_options={"gamma": 0.0}), "gamma"),
        (lambda: rnnode.ODERNN(2, 3, cell="antisymmetric", cell_options={"gamma": -1}), "gamma"),
        (lambda: rnnode.ODERNN(0, 3), "input_size"),
        (lambda: rnnode.ODERNN(2, 3, method="dopri5", step_size=0.5), "step_size"),
    ],
)
def test_wrong_values_raise_value_errors_naming_the_argument(build, name):
    with pytest.raises(ValueError, match=f"^{name}: .*expected"):
        build()


# -- issue 8's bugs in the core ---------------------------------------------------------------


def test_cornn_reset_parameters_resets_weight_hz():
    field = make_field("cornn", 2, 16)
    with torch.no_grad():
        for p in field.parameters():
            p.fill_(7.0)
    field.reset_parameters()
    bound = 1 / math.sqrt(16)
    for name, p in field.named_parameters():
        assert float(p.detach().abs().max()) <= bound, name
    # The construction's numbers are unchanged: weight_hz is drawn after the torch.nn weights.
    torch.manual_seed(3)
    a = make_field("cornn", 2, 4)
    torch.manual_seed(3)
    b = make_field("rnn", 2, 4)
    expected = torch.empty(4, 4).uniform_(-0.5, 0.5)
    torch.testing.assert_close(a.weight_hh, b.weight_hh, rtol=0, atol=0)
    torch.testing.assert_close(a.weight_hz, expected, rtol=0, atol=0)


def test_adjoint_segments_share_the_contiguous_inter_layer_weights():
    """The inter-layer columns are made contiguous once per solve, not once per interval."""
    from rnnode._stack_ode import _StackODE

    made = []
    original = _StackODE.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self._internal_weights)

    model = rnnode.ODERNN(2, 3, num_layers=3, coupling="continuous", method="dopri5")
    try:
        _StackODE.__init__ = spy
        out, _ = model(torch.randn(4, 1, 2), adjoint=True)
    finally:
        _StackODE.__init__ = original
    out.sum().backward()
    # The solve's ODE, one segment per interval, and each segment's copy reading leaf copies of
    # its path tensors (the adjoint's backward pass stops there instead of walking the path).
    assert len(made) == 1 + 2 * 4
    first = made[0]
    for later in made[1:]:
        rows = zip(first, later, strict=True)
        pairs = [(a, b) for r, o in rows for a, b in zip(r, o, strict=True)]
        assert pairs and all(a is b for a, b in pairs)
