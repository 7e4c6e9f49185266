"""analysis.linear against autograd of the solve, a hand-derived stack, scipy.signal and probes.

Tolerances: linearize's matrices are forward-mode Jacobians of the same arithmetic as one Euler
step of ``model.solve``, so they meet reverse-mode autograd of the solve to rounding (1e-13);
the hand-derived 2-layer tanh stack is evaluated in numpy (1e-13); the batched complex solves
meet scipy.signal's transfer-function evaluation to 1e-10 relative (scipy goes through a
polynomial form, whose conditioning is the looser side); sine probes at amplitude 1e-6 differ
from the linearisation by O(amplitude^2) nonlinear terms and the fit's rounding (1e-6 asked,
about 1e-13 seen).
"""

import numpy as np
import pytest
import scipy.signal
import torch

import rnnode
from rnnode.analysis import fixed_points, frequency_response, jacobian, linearize, measure_gain


def _hx(model, h):
    """(L, S) states as the solve's hx for a batch of one: a tensor or the tuple of parts."""
    H = model.hidden_size
    parts = [h[:, i * H : (i + 1) * H].unsqueeze(1) for i in range(model.state_parts)]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _solve_step(model, h_flat, x, coupling, dt):
    L, S = model.num_layers, model.layers[0].state_size
    sol = model.solve(
        x[None, None],
        _hx(model, h_flat.reshape(L, S)),
        t=torch.tensor([0.0, dt]),
        coupling=coupling,
        method="euler",
    )
    return sol.states[:, 0, 1, 0].reshape(-1)


@pytest.mark.parametrize(
    ("cell", "skips", "coupling"),
    [
        ("rnn", (1,), "sampled"),
        ("gru", (1, 2), "sampled"),
        ("lstm", (1, 2), "sampled"),
        ("cornn", (1,), "sampled"),
        ("rnn", (1, 2), "continuous"),
        ("lstm", (1,), "continuous"),
    ],
)
def test_discrete_linearisation_is_the_autograd_jacobian_of_one_solve_step(cell, skips, coupling):
    model = rnnode.ODERNN(3, 4, 3, cell=cell, skips=skips, tau=[1.0, 0.7, 2.0])
    L, S = 3, model.layers[0].state_size
    h = 0.5 * torch.randn(L, S)
    x = torch.randn(3)
    dt = 0.6  # below the smallest tau: an Euler step beyond tau leaves |h| <= 1 (DivergenceError)
    A, B, C, D = linearize(model, h, x, coupling=coupling, dt=dt)
    JA, JB = torch.autograd.functional.jacobian(
        lambda a, b: _solve_step(model, a, b, coupling, dt), (h.reshape(-1), x)
    )
    np.testing.assert_allclose(A.numpy(), JA.numpy(), atol=1e-13)
    np.testing.assert_allclose(B.numpy(), JB.numpy(), atol=1e-13)
    pick = [l * S + j for l in range(L) for j in range(4)]
    np.testing.assert_array_equal(C.numpy(), A.numpy()[pick])
    np.testing.assert_array_equal(D.numpy(), B.numpy()[pick])
    assert not any(v.requires_grad for v in (A, B, C, D))


def test_continuous_linearisation_is_the_joint_field_jacobian():
    model = rnnode.ODERNN(2, 3, 2, cell="gru", skips=(1, 2))
    h, x = 0.3 * torch.randn(2, 3), torch.randn(2)
    A, B, C, D = linearize(model, h, x, kind="continuous")
    np.testing.assert_allclose(A.numpy(), jacobian(model, h, x).numpy(), atol=1e-14)
    JB = torch.autograd.functional.jacobian(lambda v: model.joint_field(h, v).reshape(-1), x)
    np.testing.assert_allclose(B.numpy(), JB.numpy(), atol=1e-14)
    np.testing.assert_array_equal(C.numpy(), np.eye(6))
    np.testing.assert_array_equal(D.numpy(), np.zeros((6, 2)))


def _numpy_weights(model):
    get = lambda p: p.detach().numpy()  # noqa: E731
    return [
        (get(f.weight_ih), get(f.weight_hh), get(f.bias_ih), get(f.bias_hh), float(f.tau))
        for f in model.layers
    ]


def test_hand_derived_two_layer_tanh_stack():
    # h1' = tanh(W1 x + b1 + V1 h1) ; layer 2 reads layer 1's new state (sampled coupling):
    # Euler step dt: h_l <- h_l + dt (phi_l - h_l) / tau_l, phi_l = tanh(a_l), a_l its
    # pre-activation; d phi_l = s_l * (V_l d h_l + W_l d source_l), s_l = 1 - phi_l^2.
    model = rnnode.ODERNN(2, 3, 2, cell="rnn", tau=[1.5, 0.5])
    (W1, V1, b1, c1, t1), (W2, V2, b2, c2, t2) = _numpy_weights(model)
    h = 0.4 * np.random.default_rng(0).standard_normal((2, 3))
    x = np.array([0.3, -0.2])
    dt = 0.5
    I = np.eye(3)
    s1 = 1 - np.tanh(W1 @ x + b1 + V1 @ h[0] + c1) ** 2
    new1 = h[0] + dt * (np.tanh(W1 @ x + b1 + V1 @ h[0] + c1) - h[0]) / t1
    s2 = 1 - np.tanh(W2 @ new1 + b2 + V2 @ h[1] + c2) ** 2
    A11 = I + dt / t1 * (s1[:, None] * V1 - I)
    B1 = dt / t1 * s1[:, None] * W1
    A22 = I + dt / t2 * (s2[:, None] * V2 - I)
    N21 = dt / t2 * s2[:, None] * W2  # d new2 / d new1
    A_expected = np.block([[A11, np.zeros((3, 3))], [N21 @ A11, A22]])
    B_expected = np.vstack([B1, N21 @ B1])
    A, B, _, _ = linearize(model, torch.tensor(h), torch.tensor(x), dt=dt)
    np.testing.assert_allclose(A.numpy(), A_expected, atol=1e-13)
    np.testing.assert_allclose(B.numpy(), B_expected, atol=1e-13)
    # Continuous field: dF_l/dh_l = (s_l V_l - I) / tau_l, dF_2/dh_1 = s_2 W_2 / tau_2 at h.
    s2c = 1 - np.tanh(W2 @ h[0] + b2 + V2 @ h[1] + c2) ** 2
    Ac, Bc, _, _ = linearize(model, torch.tensor(h), torch.tensor(x), kind="continuous")
    expected = np.block(
        [
            [(s1[:, None] * V1 - I) / t1, np.zeros((3, 3))],
            [s2c[:, None] * W2 / t2, (s2c[:, None] * V2 - I) / t2],
        ]
    )
    np.testing.assert_allclose(Ac.numpy(), expected, atol=1e-13)
    np.testing.assert_allclose(Bc.numpy(), np.vstack([B1 / dt, np.zeros((3, 2))]), atol=1e-13)


def test_linearize_broadcasts_states_and_keeps_the_graph_when_asked():
    model = rnnode.ODERNN(2, 3, 2)
    h = 0.1 * torch.randn(4, 2, 3)
    A, B, C, D = linearize(model, h, torch.zeros(2))
    assert A.shape == (4, 6, 6) and B.shape == (4, 6, 2) and C.shape == (4, 6, 6)
    np.testing.assert_allclose(A[2].numpy(), linearize(model, h[2], torch.zeros(2)).A.numpy())
    kept = linearize(model, h[0], torch.zeros(2), create_graph=True)
    assert kept.A.requires_grad
    (grad,) = torch.autograd.grad(kept.A.sum(), model.field(0).weight_hh)
    assert grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore::scipy.signal.BadCoefficients")  # scipy's ss2tf rounding
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_frequency_response_matches_scipy_signal(kind):
    model = rnnode.ODERNN(2, 3, 2, cell="gru", skips=(1, 2))
    h, x = 0.2 * torch.randn(2, 3), torch.randn(2)
    omegas = np.linspace(0.05, 3.0, 11)
    dt = 0.9 if kind == "discrete" else 1.0
    omegas = omegas / dt
    ss = linearize(model, h, x, kind=kind, dt=dt)
    fr = frequency_response(ss, omegas, kind=kind, dt=dt, num_layers=2)
    A, B, C, D = (v.numpy() for v in ss)
    for i in range(C.shape[0]):
        for j in range(B.shape[1]):
            if kind == "discrete":
                system = scipy.signal.dlti(A, B[:, [j]], C[[i]], D[[i]][:, [j]], dt=dt)
                _, expected = scipy.signal.dfreqresp(system, w=omegas * dt)
            else:
                system = scipy.signal.lti(A, B[:, [j]], C[[i]], D[[i]][:, [j]])
                _, expected = scipy.signal.freqresp(system, w=omegas)
            np.testing.assert_allclose(fr.response[:, i, j].numpy(), expected, rtol=1e-10)
    # The gains: Euclidean norm over each layer's units along e = (1, 1) / sqrt(2).
    e = np.ones(2) / np.sqrt(2)
    unit = np.abs(fr.response.numpy() @ e)
    np.testing.assert_allclose(fr.gain.numpy()[1], np.linalg.norm(unit[:, 3:], axis=1), rtol=1e-14)


def test_frequency_response_equals_sine_probes_on_a_hidden_64_stack():
    # Biases move the resting state: linearise at the fixed point of x = 0, probe there.
    model = rnnode.ODERNN(2, 64, 2, cell="rnn")
    (h_star,) = fixed_points(model, torch.zeros(2), num_starts=1)
    omegas = np.geomspace(0.05, 3.0, 6)
    measured = measure_gain(model, omegas, amplitude=1e-6, hx=h_star, num_steps=300)
    numeric = frequency_response(model, omegas, h=h_star).gain
    np.testing.assert_allclose(np.asarray(measured), numeric.numpy(), rtol=1e-6)


def test_frequency_response_of_a_scalar_layer_is_the_closed_form():
    a = 0.7
    fr = frequency_response(([[a]], [[1.0]], [[1.0]], None), [0.3, 1.2])
    expected = 1 / np.sqrt(1 - 2 * a * np.cos([0.3, 1.2]) + a**2)
    np.testing.assert_allclose(fr.gain.numpy()[0], expected, rtol=1e-14)
    assert fr.gain.shape == (1, 2) and fr.unit_gain.shape == (1, 2, 1)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: linearize(m, torch.zeros(3, 2), torch.zeros(1)), ValueError, "h: expected"),
        (lambda m: linearize(m, torch.zeros(2, 2), torch.zeros(3)), ValueError, "x: expected"),
        (lambda m: linearize(m, [0.0], torch.zeros(1)), TypeError, "h: expected a torch"),
        (lambda m: linearize(m, torch.zeros(2, 2), [0.0], kind="z"), ValueError, "kind:"),
        (lambda m: linearize(m, torch.zeros(2, 2), [0.0], coupling="x"), ValueError, "coupling"),
        (lambda m: linearize(m, torch.zeros(2, 2), [0.0], dt=0), ValueError, "dt: expected"),
        (lambda m: linearize(m, torch.full((2, 2), np.nan), [0.0]), ValueError, "h: expected fin"),
        (lambda m: linearize(torch.nn.RNN(1, 2), None, None), TypeError, "model: expected"),
        (lambda m: frequency_response(m, [4.0]), ValueError, "omegas: expected frequencies in"),
        (lambda m: frequency_response("A", [1.0]), TypeError, "system: expected"),
        (
            lambda m: frequency_response(([[1.0, 0.0]], [1.0], [1.0], None), [1.0]),
            ValueError,
            "A: expected a square",
        ),
        (lambda m: frequency_response(m, [1.0], num_layers=3), ValueError, "num_layers:"),
    ],
)
def test_bad_arguments_raise_errors_naming_them(call, error, match):
    model = rnnode.ODERNN(1, 2, 2)
    with pytest.raises(error, match=match):
        call(model)
