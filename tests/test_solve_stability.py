"""Fixed steps too large for tau are refused before solving, and states that leave the box the
exact flow keeps raise after it (issue 20, "silent wrong numbers" 1); the bridge is untouched."""

import pytest
import torch

import rnnode

_X = torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


# The cases: each returned huge, finite states (8.2e3 ... 3.0e58) with no error.
@pytest.mark.parametrize(
    "tau,kw,step,limit",
    [
        (0.1, {}, "step_size=None (the default", 2.0),
        (0.1, {"method": "rk4"}, "step_size=None (the default", 2.785),
        (0.1, {"method": "midpoint", "step_size": 0.5}, "step_size=0.5", 2.0),
        (0.3, {}, "step_size=None (the default", 2.0),
        (1e-2, {"method": "rk4"}, "step_size=None (the default", 2.785),
        (1e-4, {"method": "rk4"}, "step_size=None (the default", 2.785),
    ],
)
def test_a_step_beyond_the_stability_limit_for_tau_is_refused(tau, kw, step, limit):
    model = rnnode.ODERNN(2, 3, num_layers=2, tau=tau).double()
    with pytest.raises(ValueError) as info:
        model(_X, **kw)
    message = str(info.value)
    assert message.startswith("step_size: ") and step in message
    assert f"tau = {tau:.4g}" in message
    # The largest stable step: the method's limit times tau.
    assert f"step_size <= {limit * tau:.4g}" in message


@pytest.mark.parametrize("method,limit", [("euler", 2.0), ("midpoint", 2.0), ("rk4", 2.785)])
def test_the_largest_stable_step_itself_is_accepted(method, limit):
    """Just inside the limit the solve runs, and the same step 1% beyond it is refused."""
    tau = 4.0
    # dh/dt = (relu(u) - h) / tau: a leak at exactly 1/tau and no box to leave.
    model = rnnode.ODERNN(2, 3, nonlinearity="relu", tau=tau).double()
    with torch.no_grad():
        model.field(0).weight_hh.zero_()
    grid = torch.arange(7, dtype=torch.float64)  # one step per interval of the given width
    out, _ = model(_X, t=0.99 * limit * tau * grid, method=method)
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="step_size: step_size=None"):
        model(_X, t=1.01 * limit * tau * grid, method=method)


def test_per_layer_tau_is_checked_layer_by_layer():
    """The fastest layer decides: tau 0.3 in layer 2 fails Euler's one step per interval."""
    model = rnnode.ODERNN(2, 3, num_layers=2, tau=[2.0, 0.3]).double()
    with pytest.raises(ValueError, match="tau = 0.3 "):
        model(_X)


def test_learned_tau_is_read_as_it_is_now():
    model = rnnode.ODERNN(2, 3, tau=1.0, learn_tau=True).double()
    model(_X)
    with torch.no_grad():
        model.field(0).log_tau.fill_(torch.log(torch.tensor(0.2)).item())
    with pytest.raises(ValueError, match="tau = 0.2 "):
        model(_X)


def _fast_recurrence(cell, tau=1.0):
    """A stack whose W_hh makes the field's rate far faster than 1/tau (the pre-check cannot
    see it), so that a step well inside the leak's limit is still unstable."""
    model = rnnode.ODERNN(2, 3, cell=cell, tau=tau).double()
    field = model.field(0)
    with torch.no_grad():
        field.weight_hh.copy_(-5.0 * torch.eye(3, dtype=torch.float64).repeat(field.gates, 1))
    return model


@pytest.mark.parametrize(
    "cell,tau,kw",
    [
        ("rnn", 1.0, {"method": "midpoint"}),
        ("rnn", 1.0, {"method": "heun3"}),
        ("rnn", 0.55, {}),
        ("gru", 0.55, {}),
    ],
)
def test_states_outside_the_box_raise_divergence_error(cell, tau, kw):
    model = _fast_recurrence(cell, tau)
    with pytest.raises(rnnode.DivergenceError, match="the step is unstable") as info:
        model(_X, **kw)
    assert "left the bounded set that the exact flow never leaves" in str(info.value)
    # The reference: the same steps with the check switched off leave |h| <= 1.
    with torch.no_grad():
        reference = _euler_loop(model.field(0), _X, tau, kw.get("method", "euler"))
    assert reference.abs().max() > 1.0


def _euler_loop(field, x, tau, method):
    """The fixed steps of one layer by hand (held input, one step per unit interval)."""
    h = torch.zeros(x.shape[1], 3, dtype=x.dtype)
    out = []
    for k in range(x.shape[0]):
        u = field.project(x[k])

        def f(y, u=u):
            return (field.update(y, u) - y) / tau

        if method == "euler":
            h = h + f(h)
        elif method == "midpoint":
            h = h + f(h + 0.5 * f(h))
        else:  # heun3
            k1 = f(h)
            k2 = f(h + k1 / 3)
            k3 = f(h + 2 * k2 / 3)
            h = h + (k1 + 3 * k3) / 4
        out.append(h)
    return torch.stack(out)


def test_a_state_started_outside_the_box_may_relax_into_it():
    """The box is max(1, |h(0)|): a start at |h| = 3 decays towards it, which is no error."""
    model = rnnode.ODERNN(2, 3, tau=1.0).double()
    out, _ = model(_X, 3.0 * torch.ones(1, 3, 3, dtype=torch.float64))
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_bridge_still_equals_torch_and_raises_nothing(cell, dtype):
    """tau = 1 and one Euler step per sample: the discrete RNN, never beyond the limit, always in
    the box ."""
    torch.manual_seed(0)
    module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    reference = module(2, 5, num_layers=2).to(dtype)
    with torch.no_grad():  # large weights: saturated gates, |h| near 1
        for p in reference.parameters():
            p.mul_(4.0)
    x = 3.0 * torch.randn(30, 4, 2, dtype=dtype)
    bridge = rnnode.from_torch(reference)
    expected, _ = reference(x)
    got, _ = bridge(x)
    torch.testing.assert_close(got, expected)
    assert expected.abs().max() > 0.9  # near the box's edge
