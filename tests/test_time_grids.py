"""Per-sequence time grids and the causal interpolation.

References: each sequence solved alone with its own times, the Euler recursion written out,
scipy.integrate.solve_ivp per sequence, and the held path of the shifted samples.
"""

import numpy as np
import pytest
import scipy.integrate
import torch

import rnnode

T, B = 4, 3


def _times(batch=B, length=T, seed=0):
    g = torch.Generator().manual_seed(seed)
    steps = torch.rand(length, batch, generator=g) + 0.2
    start = torch.rand(1, batch, generator=g)
    return torch.cat([start, start + steps.cumsum(0)])  # (T + 1, B)


def _alone(model, x, t, b, **kw):
    return model.solve(x[:, b : b + 1], t=t[:, b], **kw)


@pytest.mark.parametrize("interpolation", rnnode.INTERPOLATIONS)
@pytest.mark.parametrize(
    "structure",
    [
        {"num_layers": 2},
        {"num_layers": 2, "coupling": "continuous"},
        {"bidirectional": True},
        {"num_layers": 2, "skips": (1, 2), "cell": "lstm"},
    ],
    ids=["sampled", "continuous", "bidirectional", "lstm-skips"],
)
@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_a_batched_solve_is_each_sequence_solved_alone(interpolation, structure, method):
    model = rnnode.ODERNN(2, 3, **{"cell": "gru", **structure})
    x, t = torch.randn(T, B, 2), _times()
    kw = {"method": method, "interpolation": interpolation}
    together = model.solve(x, t=t, **kw)
    for b in range(B):
        alone = _alone(model, x, t, b, **kw)
        torch.testing.assert_close(together.output[:, b], alone.output[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(
            together.states[:, :, :, b], alone.states[:, :, :, 0], rtol=0, atol=1e-12
        )
    torch.testing.assert_close(together.times, t, rtol=0, atol=0)


@pytest.mark.parametrize("interpolation", ["hold", "cubic"])
def test_adaptive_batched_solve_is_each_sequence_alone_within_the_tolerance(interpolation):
    model = rnnode.ODERNN(2, 3, cell="gru")
    x, t = torch.randn(T, B, 2), _times()
    kw = {"method": "dopri5", "rtol": 1e-10, "atol": 1e-12, "interpolation": interpolation}
    together = model(x, t=t, **kw)[0]
    for b in range(B):
        alone = _alone(model, x, t, b, **kw).output[:, 0]
        torch.testing.assert_close(together[:, b], alone, rtol=0, atol=1e-9)


def test_euler_one_step_per_interval_is_the_recursion_with_each_sequences_gap():
    model = rnnode.ODERNN(2, 3, cell="gru")
    field = model.field(0)
    x, t = torch.randn(T, B, 2), _times()
    h = torch.zeros(B, 3)
    expected = []
    for k in range(1, T + 1):
        dt = (t[k] - t[k - 1]).unsqueeze(-1)
        h = h + dt * field(t[k - 1], h, field.project(x[k - 1]))
        expected.append(h)
    got = model(x, t=t)[0]
    torch.testing.assert_close(got, torch.stack(expected), rtol=0, atol=1e-14)


def test_against_scipy_solve_ivp_per_sequence():
    """Elman field, linear input, dopri5 against DOP853 interval by interval (float64)."""
    model = rnnode.ODERNN(2, 3)
    field = model.field(0)
    W_ih, W_hh = field.weight_ih.detach().numpy(), field.weight_hh.detach().numpy()
    b = (field.bias_ih + field.bias_hh).detach().numpy()
    x, t = torch.randn(T, B, 2), _times()
    got = model(x, t=t, method="dopri5", interpolation="linear", rtol=1e-11, atol=1e-13)[0]
    for n in range(B):
        tn = t[:, n].numpy()
        knots = np.concatenate([x[:1, n].numpy(), x[:, n].numpy()])  # x(t_0) = x_1

        def rhs(s, h, tn=tn, knots=knots):
            u = np.array([np.interp(s, tn, knots[:, c]) for c in range(2)])
            return -h + np.tanh(W_ih @ u + W_hh @ h + b)

        h = np.zeros(3)
        for k in range(T):
            ivp = scipy.integrate.solve_ivp(
                rhs, (tn[k], tn[k + 1]), h, method="DOP853", rtol=1e-12, atol=1e-14
            )
            h = ivp.y[:, -1]
            np.testing.assert_allclose(got[k, n].detach().numpy(), h, rtol=0, atol=1e-9)


@pytest.mark.parametrize("interpolation", ["hold", "linear", "cubic"])
def test_gradients_with_respect_to_inputs_weights_and_times_match_solving_alone(interpolation):
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="gru")
    x = torch.randn(T, B, 2, requires_grad=True)
    t = _times().requires_grad_(True)
    weights = torch.randn(T, B, 3)
    kw = {"method": "rk4", "interpolation": interpolation}
    params = list(model.parameters())
    loss = (model(x, t=t, **kw)[0] * weights).sum()
    together = torch.autograd.grad(loss, [x, t, *params])
    alone = [torch.zeros_like(g) for g in together]
    for b in range(B):
        xb = x[:, b : b + 1].detach().requires_grad_(True)
        tb = t[:, b].detach().requires_grad_(True)
        loss_b = (model(xb, t=tb, **kw)[0][:, 0] * weights[:, b]).sum()
        grads = torch.autograd.grad(loss_b, [xb, tb, *params])
        alone[0][:, b] = grads[0][:, 0]
        alone[1][:, b] = grads[1]
        for total, g in zip(alone[2:], grads[2:], strict=True):
            total += g
    for got, want in zip(together, alone, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_batch_first_times_and_a_step_size_taken_from_the_widest_interval():
    model = rnnode.ODERNN(2, 3, batch_first=True, method="rk4", step_size=0.5)
    x, t = torch.randn(B, T, 2), _times()
    widest = float((t[1:] - t[:-1]).max())
    solution = model.solve(x, t=t.T)
    assert solution.times.shape == (B, T + 1)
    steps = int(np.ceil(widest / 0.5))
    assert solution.nfe == 4 * steps * T  # every interval takes the widest one's count
    one = model.solve(x[:1], t=t.T[:1])  # alone, with its own t, the same number of steps ...
    assert one.nfe <= solution.nfe  # ... or fewer, and no step is longer than 0.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m(torch.randn(T, 2), t=_times()), r"t: expected shape \(T \+ 1,\)"),
        (lambda m: m(torch.randn(T, B, 2), t=_times(batch=B + 1)), r"\(T \+ 1, batch\)"),
        (
            lambda m: m(torch.randn(T, B, 2), t=_times().flip(0)),
            r"strictly increasing times, got t\[1\] = .* in sequence 0",
        ),
        (  # times that require grad are read detached: no torch warning
            lambda m: m(torch.randn(T, B, 2), t=_times().flip(0).requires_grad_(True)),
            r"strictly increasing times, got t\[1\] = .* in sequence 0",
        ),
    ],
)
def test_bad_per_sequence_times_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call(rnnode.ODERNN(2, 3))


def _fast_tanh_stack():
    """W_hh = -5 I: the field's rate is far beyond an Euler step of 1 at tau = 0.55."""
    model = rnnode.ODERNN(1, 3, tau=0.55).double()
    with torch.no_grad():
        model.field(0).weight_hh.copy_(-5.0 * torch.eye(3, dtype=torch.float64))
    return model, torch.randn(T, 1, dtype=torch.float64)


def _exploding_relu_stack():
    """relu with W_hh = 10 I grows tenfold a step: float64 overflows after about 300 steps."""
    model = rnnode.ODERNN(1, 3, nonlinearity="relu", bias=False).double()
    with torch.no_grad():
        model.field(0).weight_hh.copy_(10.0 * torch.eye(3, dtype=torch.float64))
    return model, torch.ones(400, 1, dtype=torch.float64)


@pytest.mark.parametrize(
    ("make", "kw", "error", "message"),
    [
        (
            lambda: (rnnode.ODERNN(1, 3).double(), torch.randn(T, 1, dtype=torch.float64)),
            {"method": "euler", "step_size": 1e-6},
            ValueError,
            r"step_size: 1e-06 makes .* euler steps over \[0, 4\]",
        ),
        (_fast_tanh_stack, {}, rnnode.DivergenceError, "left the bounded set .* by t = "),
        (_exploding_relu_stack, {}, rnnode.DivergenceError, r"non-finite between t = \d"),
    ],
    ids=["step_budget", "bounded_set", "non_finite"],
)
def test_error_messages_read_times_that_require_grad_detached(make, kw, error, message):
    """The messages name times; read from times that require grad they are read detached: no
    torch warning (pytest's configuration turns that warning into an error)."""
    model, x = make()
    t = torch.arange(x.shape[0] + 1.0, dtype=torch.float64).requires_grad_(True)
    with pytest.raises(error, match=message):
        model(x, t=t, **kw)


# -- the causal interpolation ----------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False])
def test_causal_is_the_held_path_of_the_previous_observation(shared):
    """One layer (in a stack every layer reads its sources causally, the outputs included)."""
    model = rnnode.ODERNN(2, 3, cell="gru")
    x = torch.randn(T, B, 2)
    t = torch.arange(T + 1.0) if shared else _times()
    shifted = torch.cat([torch.zeros(1, B, 2), x[:-1]])  # (0, x_1, ..., x_{T-1})
    for method in ("euler", "rk4"):
        causal = model(x, t=t, method=method, interpolation="causal")[0]
        held = model(shifted, t=t, method=method, interpolation="hold")[0]
        torch.testing.assert_close(causal, held, rtol=0, atol=0)


def test_causal_output_at_a_sample_time_does_not_depend_on_that_or_later_samples():
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="gru")
    x = torch.randn(T, B, 2, requires_grad=True)
    out = model(x, t=_times(), method="dopri5", interpolation="causal")[0]
    for k in range(T):
        (grad,) = torch.autograd.grad(out[k].sum(), x, retain_graph=True)
        assert torch.all(grad[k:] == 0)
        if k >= 2:  # two layers, each reading its sources causally: a delay of a sample each
            assert torch.any(grad[k - 2] != 0)
