"""ODERNN as a module: shapes, bidirectional semantics, state gradients, the joint field, errors."""

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch import nn

import rnnode

TORCH = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@settings(max_examples=25, deadline=None)
@given(
    cell=st.sampled_from(["rnn", "gru", "lstm", "linear"]),
    num_layers=st.integers(1, 3),
    hidden=st.integers(1, 4),
    inputs=st.integers(1, 3),
    T=st.integers(1, 5),
    batch=st.integers(1, 3),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    unbatched=st.booleans(),
)
def test_shapes_are_torchs(
    cell, num_layers, hidden, inputs, T, batch, bidirectional, batch_first, unbatched
):
    model = rnnode.ODERNN(
        inputs, hidden, num_layers, cell=cell, bidirectional=bidirectional, batch_first=batch_first
    )
    reference = TORCH.get(cell, nn.RNN)(
        inputs, hidden, num_layers, bidirectional=bidirectional, batch_first=batch_first
    ).double()
    shape = (
        (T, inputs) if unbatched else ((batch, T, inputs) if batch_first else (T, batch, inputs))
    )
    x = torch.randn(shape)
    out, h = model(x)
    out_t, h_t = reference(x)
    assert out.shape == out_t.shape
    for a, b in zip(h if cell == "lstm" else (h,), h_t if cell == "lstm" else (h_t,), strict=True):
        assert a.shape == b.shape
    sol = model.solve(x)
    D = 2 if bidirectional else 1
    state = (2 if cell == "lstm" else 1) * hidden
    assert sol.states.shape == (
        (num_layers, D, T + 1, state) if unbatched else (num_layers, D, T + 1, batch, state)
    )
    assert sol.times.shape == (T + 1,)


def test_reverse_direction_on_irregular_times_is_the_forward_field_on_reflected_time():
    """A bidirectional layer's reverse half equals a forward layer run on the flipped input with
    reflected times; its output at sample k is its state at t_{k-1}."""
    model = rnnode.ODERNN(2, 3, bidirectional=True, method="rk4", step_size=0.2)
    forward_only = rnnode.ODERNN(2, 3, method="rk4", step_size=0.2)
    forward_only.layers[0] = model.field(0, 1)
    x = torch.randn(5, 2, 2)
    t = torch.tensor([0.0, 0.4, 1.5, 1.9, 3.0, 3.3])
    out, h_n = model(x, t=t)
    reflected = t[0] + t[-1] - t.flip(0)
    out_r, h_r = forward_only(x.flip(0), t=reflected)
    torch.testing.assert_close(out[..., 3:], out_r.flip(0), rtol=0, atol=1e-14)
    torch.testing.assert_close(h_n[1], h_r[0], rtol=0, atol=1e-14)


def test_state_gradients_are_backprop_through_time():
    """dLoss/dh_t^l from one backward pass equals autograd on a hand-unrolled torch.nn.RNNCell."""
    module = nn.RNN(2, 3, num_layers=2).double()
    model = rnnode.from_torch(module)
    x = torch.randn(6, 1, 2)
    sol = model.solve(x, track_state_gradients=True)
    loss = sol.output.pow(2).sum()
    grads = sol.state_gradients(loss)[:, 0, :, 0]  # (L, T+1, H)

    cells = []
    for layer in range(2):
        cell = nn.RNNCell(2 if layer == 0 else 3, 3).double()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(module, f"{name}_l{layer}"))
        cells.append(cell)
    hidden = [[torch.zeros(1, 3, requires_grad=True)] for _ in range(2)]
    for k in range(6):
        below = x[k]
        for layer, cell in enumerate(cells):
            h = cell(below, hidden[layer][-1])
            hidden[layer].append(h)
            below = h
    reference_loss = sum(h.pow(2).sum() for h in hidden[1][1:])
    flat = [h for layer in hidden for h in layer]
    reference = torch.autograd.grad(reference_loss, flat)
    reference = torch.stack([torch.cat(reference[i * 7 : (i + 1) * 7]) for i in range(2)])
    torch.testing.assert_close(grads, reference, rtol=0, atol=1e-14)


def test_state_gradients_need_tracking_and_fixed_steps():
    model = rnnode.ODERNN(2, 3)
    sol = model.solve(torch.randn(4, 1, 2))
    with pytest.raises(ValueError, match="track_state_gradients=True"):
        sol.state_gradients(sol.output.sum())
    with pytest.raises(ValueError, match="state gradients need a fixed-step method"):
        model.solve(torch.randn(4, 1, 2), method="dopri5", track_state_gradients=True)


def test_joint_field_is_the_continuous_stacks_vector_field():
    """One Euler step of unit length of the continuous solve moves the state by joint_field."""
    # tau >= the step: a step beyond tau leaves the box |h| <= 1 (rnnode raises DivergenceError).
    model = rnnode.ODERNN(2, 3, num_layers=3, cell="lstm", skips=(1, 2), tau=[1.0, 1.5, 2.0])
    x = torch.randn(1, 4, 2)
    h0 = (0.5 * torch.randn(3, 4, 3), 0.5 * torch.randn(3, 4, 3))
    dt = 1.0
    sol = model.solve(x, h0, t=torch.tensor([0.0, dt]), coupling="continuous")
    start = sol.states[:, 0, 0].transpose(0, 1)  # (batch, L, S)
    end = sol.states[:, 0, 1].transpose(0, 1)
    # (start + f) - start recovers f up to the rounding of the sum: a few ulps of |state| < 2.
    torch.testing.assert_close(
        (end - start) / dt, model.joint_field(start, x[0]), rtol=0, atol=1e-15
    )


def test_learnable_tau_gets_gradients_and_per_layer_tau_is_used():
    model = rnnode.ODERNN(2, 3, num_layers=2, tau=[0.5, 4.0], learn_tau=True)
    assert [float(f.tau.detach()) for f in model.layers] == pytest.approx([0.5, 4.0], rel=1e-15)
    out, _ = model(torch.randn(5, 2, 2), method="rk4")
    out.sum().backward()
    assert all(f.log_tau.grad is not None and f.log_tau.grad != 0 for f in model.layers)


def test_model_defaults_apply_and_calls_override_them():
    model = rnnode.ODERNN(
        2, 3, method="rk4", step_size=0.5, coupling="continuous", interpolation="linear"
    )
    x = torch.randn(4, 1, 2)
    assert model.solve(x).nfe == 4 * 2 * 4  # rk4: 4 stages, 2 steps per interval
    assert model.solve(x, method="euler").nfe == 4 * 2


BAD_CALLS = [
    (
        lambda m: m(torch.randn(4, 2)),
        r"x: expected shape \(T, input_size\) = \(\*, 3\), got \(4, 2\)",
    ),
    (lambda m: m(torch.randn(4, 1, 1, 3)), "x: expected a tensor of rank 3"),
    (lambda m: m([[1.0, 2.0, 3.0]]), "x: expected a tensor of rank 3.*got list"),
    (
        lambda m: m(torch.randn(4, 1, 3, dtype=torch.float32)),
        "x: expected dtype torch.float64 .*got torch.float32",
    ),
    (lambda m: m(torch.full((4, 1, 3), float("nan"))), "x: expected finite values, got 12 NaN"),
    (lambda m: m(torch.randn(4, 1, 3), torch.zeros(3, 1, 5)), r"hx: expected shape .*\(3, 1, 5\)"),
    (lambda m: m(torch.randn(4, 1, 3), torch.zeros(4, 2, 5)), r"hx: expected shape .*\(4, 2, 5\)"),
    (lambda m: m(torch.randn(4, 1, 3), torch.full((2, 1, 5), float("inf"))), "hx: expected finite"),
    (
        lambda m: m(torch.randn(4, 1, 3), t=torch.arange(4.0)),
        r"t: expected shape \(T \+ 1,\) = \(5,\)",
    ),
    (
        lambda m: m(torch.randn(4, 1, 3), t=torch.tensor([0.0, 1.0, 1.0, 2.0, 3.0])),
        r"t: expected strictly increasing times, got t\[2\] = 1.0 <= t\[1\] = 1.0",
    ),
    (
        lambda m: m(torch.randn(4, 1, 3), t=torch.tensor([0.0, 1.0, float("nan"), 2.0, 3.0])),
        "t: expected finite values",
    ),
    (lambda m: m(torch.randn(4, 1, 3), method="rk45"), "method: expected one of"),
    (lambda m: m(torch.randn(4, 1, 3), interpolation="spline"), "interpolation: expected one of"),
    (lambda m: m(torch.randn(4, 1, 3), coupling="loose"), "coupling: expected one of"),
    (lambda m: m(torch.randn(4, 1, 3), step_size=-0.1), "step_size: expected a positive"),
    (lambda m: m(torch.randn(4, 1, 3), rtol=0.0), "rtol: expected a positive"),
    (lambda m: m(torch.randn(0, 1, 3)), "x: expected at least one time step"),
]


@pytest.mark.parametrize("call,message", BAD_CALLS)
def test_bad_input_names_the_argument(call, message):
    model = rnnode.ODERNN(3, 5, num_layers=2)
    with pytest.raises(ValueError, match=message):
        call(model)


def test_lstm_hx_must_be_a_pair():
    model = rnnode.ODERNN(3, 5, cell="lstm")
    with pytest.raises(ValueError, match=r"hx: expected a tuple of 2 tensors \(h_0, c_0\)"):
        model(torch.randn(4, 1, 3), torch.zeros(1, 1, 5))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_layers": 0}, "num_layers: expected a positive integer"),
        ({"cell": "transformer"}, "cell: expected one of"),
        ({"skips": (0,)}, "skips: expected distinct positive"),
        ({"skips": (1, 1)}, "skips: expected distinct positive"),
        ({"tau": [1.0, 2.0]}, "tau: expected one value or 3"),
        ({"dropout": 1.0}, "dropout: expected a probability"),
        ({"method": "rk45"}, "method: expected one of"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rnnode.ODERNN(3, 5, **{"num_layers": 3, **kwargs})


def test_continuous_bidirectional_deep_stack_is_refused():
    model = rnnode.ODERNN(3, 5, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match="coupling: 'continuous' needs num_layers=1"):
        model(torch.randn(4, 1, 3), coupling="continuous")


# -- an InputPath as x ----------------------------------------------------------------------------

PATHS = {"hold": rnnode.HoldPath, "linear": rnnode.LinearPath, "cubic": rnnode.CubicPath}


def _path(kind, times, x):
    values = x if kind == "hold" else torch.cat([x[:1], x])
    return PATHS[kind](times, values)


@pytest.mark.parametrize("kind", sorted(PATHS))
@pytest.mark.parametrize(
    ("build", "call"),
    [
        pytest.param({"cell": "gru", "num_layers": 2}, {"method": "rk4"}, id="gru-sampled"),
        pytest.param(
            {"cell": "rnn", "num_layers": 3, "skips": (1, 2)},
            {"method": "rk4", "coupling": "continuous"},
            id="skips-continuous",
        ),
        pytest.param(
            {"cell": "lstm", "bidirectional": True}, {"method": "dopri5"}, id="lstm-bidirectional"
        ),
        pytest.param({"cell": "gru", "num_layers": 2}, {"adjoint": True}, id="adjoint"),
    ],
)
def test_a_path_as_x_is_the_same_solve_as_its_samples(kind, build, call):
    model = rnnode.ODERNN(2, 3, **build)
    times = torch.tensor([0.0, 0.5, 1.7, 2.0, 3.1])
    x = torch.randn(4, 2, 2, requires_grad=True)
    out, h_n = model(_path(kind, times, x), interpolation=kind, **call)
    ref, ref_n = model(x, t=times, interpolation=kind, **call)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-14)
    (g,) = torch.autograd.grad(out.sum(), x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-13)


def test_an_unbatched_path_is_the_batch_of_one():
    model = rnnode.ODERNN(2, 3, num_layers=2)
    x, times = torch.randn(5, 2), torch.arange(6.0)
    out, h_n = model(rnnode.LinearPath(times, torch.cat([x[:1], x])), method="rk4")
    batched = rnnode.LinearPath(times, torch.cat([x[:1], x]).unsqueeze(1))
    ref, ref_n = model(batched, method="rk4")
    assert out.shape == (5, 3) and h_n.shape == (2, 3)
    assert torch.equal(out, ref[:, 0]) and torch.equal(h_n, ref_n[:, 0])


def test_a_cubic_path_drives_a_continuous_stack_as_scipy_says():
    from helpers import elman_stack_rhs, numpy_input, solve_ivp_reference

    model = rnnode.ODERNN(2, 3, num_layers=2, tau=[0.7, 1.4])
    times = torch.tensor([0.0, 0.6, 1.5, 2.1, 3.0])
    x = torch.randn(4, 2)
    path = _path("cubic", times, x)
    sol = model.solve(path, method="dopri5", rtol=1e-11, atol=1e-11, coupling="continuous")
    rhs = elman_stack_rhs(model, numpy_input("cubic", times.numpy(), x.numpy()))
    want = solve_ivp_reference(rhs, times.numpy(), np.zeros(6))
    got = sol.states[:, 0].permute(1, 0, 2).reshape(5, 6).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("build", "x", "kw", "match"),
    [
        (
            {},
            lambda: rnnode.HoldPath(torch.arange(3.0), torch.ones(2, 1, 2)),
            {"t": torch.arange(3.0)},
            r"^t: an InputPath",
        ),
        (
            {"num_layers": 2, "skips": (1, 2)},
            lambda: rnnode.HoldPath(torch.arange(3.0), torch.ones(2, 1, 2)),
            {},
            r"^x: an InputPath drives layer 1",
        ),
        (
            {},
            lambda: rnnode.HoldPath(torch.arange(3.0), torch.ones(2, 1, 5)),
            {},
            r"^x: expected a path whose evaluate",
        ),
        (
            {},
            lambda: rnnode.HoldPath(torch.tensor([0.0, 2.0, 1.0]), torch.ones(2, 1, 2)),
            {},
            r"^x.times",
        ),
    ],
)
def test_bad_paths_are_refused_naming_the_argument(build, x, kw, match):
    with pytest.raises(ValueError, match=match):
        rnnode.ODERNN(2, 3, **build)(x(), **kw)


def test_forward_and_solve_show_their_keywords():
    import inspect

    names = ("t", "method", "step_size", "rtol", "atol", "interpolation", "coupling", "engine")
    for function in (rnnode.ODERNN.forward, rnnode.ODERNN.solve):
        parameters = inspect.signature(function).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        for name in (*names, "adjoint", "options", "detach_layers"):
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
            assert f"{name}" in function.__doc__, name
    with pytest.raises(TypeError, match="unexpected keyword"):
        rnnode.ODERNN(2, 3)(torch.randn(2, 1, 2), metod="rk4")
