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
from rnnode.analysis import (
    StateSpace,
    find_fixed_points,
    frequency_response,
    jacobian,
    linearize,
    measure_gain,
    measure_response,
)


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
    dt = 0.6  # below the smallest tau (0.7): the Euler step stays inside the bounded set
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


@pytest.mark.slow
def test_frequency_response_equals_sine_probes_on_a_hidden_64_stack():
    # Biases move the resting state: linearise at the fixed point of x = 0, probe there.
    model = rnnode.ODERNN(2, 64, 2, cell="rnn")
    (h_star,) = find_fixed_points(model, torch.zeros(2), 1, opt_steps=0, max_iter=50).points
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


@pytest.mark.filterwarnings("ignore::scipy.signal.BadCoefficients")  # scipy's ss2tf rounding
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_state_space_converts_to_scipy_and_scipy_gives_the_same_gain_and_phase(kind):
    # scipy.signal evaluates H through ss2tf's polynomials, whose conditioning grows with the
    # states and as z -> 1: 1e-9 relative at these 6 states (2e-10 seen; a 12-state LSTM stack
    # loses 1e-8); a phase error is the relative error of H, so 1e-9 rad too. The tight check
    # is numpy.linalg.solve of (z I - A) X = B, the same H without polynomials: rnnode meets
    # it to 1e-14 (7e-16 seen), and its unwrapped angle to 1e-13 rad.
    model = rnnode.ODERNN(2, 3, 2, cell="gru", skips=(1, 2))
    h, x = 0.3 * torch.randn(2, 3), torch.randn(2)
    dt = 0.6 if kind == "discrete" else None
    ss = linearize(model, h, x, kind=kind, dt=0.6)
    assert (ss.kind, ss.dt) == (kind, dt)
    system = ss.to_scipy()
    assert isinstance(system, scipy.signal.dlti if kind == "discrete" else scipy.signal.lti)
    assert system.dt == dt
    for ours, theirs in zip(ss, (system.A, system.B, system.C, system.D), strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs)
    omegas = np.geomspace(0.05, 5.0, 30)  # scipy's polynomials lose more as z -> 1
    fr = frequency_response(ss, omegas, num_layers=2)
    assert (fr.kind, fr.source) == (kind, "linearised")
    A, B, C, D = system.A, system.B, system.C, system.D
    z = np.exp(1j * omegas * dt) if kind == "discrete" else 1j * omegas
    direct = np.stack([C @ np.linalg.solve(v * np.eye(6) - A, B) + D for v in z])
    np.testing.assert_allclose(fr.response.numpy(), direct, rtol=1e-14)
    np.testing.assert_allclose(fr.phase.numpy(), np.unwrap(np.angle(direct), axis=0), atol=1e-13)
    for i in range(C.shape[0]):
        for j in range(B.shape[1]):
            if kind == "discrete":
                siso = scipy.signal.dlti(A, B[:, [j]], C[[i]], D[[i]][:, [j]], dt=dt)
                _, expected = scipy.signal.dfreqresp(siso, w=omegas * dt)
            else:
                siso = scipy.signal.lti(A, B[:, [j]], C[[i]], D[[i]][:, [j]])
                _, expected = scipy.signal.freqresp(siso, w=omegas)
            got = fr.response[:, i, j].numpy()
            np.testing.assert_allclose(np.abs(got), np.abs(expected), rtol=1e-9)
            np.testing.assert_allclose(
                fr.phase[:, i, j].numpy(), np.unwrap(np.angle(expected)), rtol=0, atol=1e-9
            )
    # Per unit along e = (1, 1) / sqrt(2): the phase of H_j e, unwrapped.
    along = fr.response.numpy() @ (np.ones(2) / np.sqrt(2))  # (F, p)
    np.testing.assert_allclose(
        fr.unit_phase.numpy()[1], np.unwrap(np.angle(along[:, 3:]), axis=0), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_phase_of_a_chain_of_first_order_lags_is_the_closed_form_unwrapped(kind):
    # Four identical scalar lags in a chain: the phase is four times one lag's, past -pi, so
    # the unwrapping must carry it on continuously (a principal value would jump by 2 pi).
    a, tau = 0.8, 2.0
    n = 4
    below = np.eye(n, k=-1)
    if kind == "discrete":  # (z I - A) is bidiagonal: H = C (z I - A)^{-1} B = (z - a)^{-n}
        A = a * np.eye(n) + below
        omegas = np.linspace(0.05, 3.0, 60)
        one = -np.arctan2(np.sin(omegas), np.cos(omegas) - a)  # arg 1 / (e^{i omega} - a)
    else:
        A = -np.eye(n) / tau + below
        omegas = np.geomspace(0.01, 30.0, 60)
        one = -np.arctan2(omegas, 1 / tau)  # arg 1 / (i omega + 1 / tau), the same chain
    B = np.eye(n)[:, :1]
    C = np.eye(n)[-1:]
    fr = frequency_response((A, B, C, None), omegas, kind=kind)
    expected = n * one
    assert expected.min() < -np.pi  # the case needs unwrapping
    np.testing.assert_allclose(fr.phase[:, 0, 0].numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fr.unit_phase[0, :, 0].numpy(), expected, rtol=0, atol=1e-12)


def test_phase_keeps_the_graph_when_asked():
    # Unwrapping adds constants, so the phase is differentiable where the angle is.
    B, C = torch.tensor([[1.0], [0.5]]), torch.tensor([[0.3, 1.0]])

    def phase(A):
        return frequency_response((A, B, C, None), [0.3, 1.1, 2.5], create_graph=True).phase

    A = torch.tensor([[0.5, 0.2], [-0.3, 0.7]], requires_grad=True)
    assert torch.autograd.gradcheck(phase, (A,))


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_measured_phase_equals_the_linearised_phase_on_a_hidden_16_stack():
    # Same setting as the gain test above: amplitude 1e-6, so the probes see the linearisation
    # up to O(1e-6) relative; the phase error is that relative error in radians (4e-8 seen).
    model = rnnode.ODERNN(2, 16, 2, cell="rnn")
    (h_star,) = find_fixed_points(model, torch.zeros(2), 1, opt_steps=0, max_iter=50).points
    omegas = np.geomspace(0.05, 3.0, 40)
    measured = measure_response(model, omegas, amplitude=1e-6, hx=h_star, num_steps=300)
    linear = frequency_response(model, omegas, h=h_star)
    assert measured.source == "measured (sine probe)" and measured.response.shape == (40, 32, 1)
    assert (measured.kind, measured.dt, linear.kind) == (None, 1.0, "discrete")
    np.testing.assert_array_equal(
        measured.gain.numpy(),
        measure_gain(model, omegas, amplitude=1e-6, hx=h_star, num_steps=300).numpy(),
    )
    np.testing.assert_allclose(measured.unit_gain.numpy(), linear.unit_gain.numpy(), rtol=1e-6)
    np.testing.assert_allclose(measured.unit_phase.numpy(), linear.unit_phase.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        measured.phase[:, :, 0].numpy(),
        linear.unit_phase.permute(1, 0, 2).reshape(40, 32).numpy(),
        atol=1e-6,
    )


def test_measured_phase_of_a_scalar_linear_layer_is_the_closed_form():
    # h_k = a h_{k-1} + x_k: H = 1 / (1 - a e^{-i omega}), phase -atan2(a sin w, 1 - a cos w).
    # A linear layer is exactly linear: only the fit's rounding and the transient a^200 remain.
    a = 0.6
    model = rnnode.ODERNN(1, 1, 1, cell="linear", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.fill_(a)
        model.field(0).weight_ih.fill_(1.0)
    omegas = np.linspace(0.1, 3.0, 12)
    fr = measure_response(model, omegas, amplitude=1.0, num_steps=400)
    expected = -np.arctan2(a * np.sin(omegas), 1 - a * np.cos(omegas))
    np.testing.assert_allclose(fr.unit_phase[0, :, 0].numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ss: ss.to_scipy(), "A: expected a single system"),
        (lambda ss: frequency_response(ss, [1.0], kind="continuous"), "kind: expected the"),
        (lambda ss: frequency_response(ss, [1.0], dt=0.5), "dt: expected the"),
        (lambda ss: StateSpace(*ss, kind="z"), "kind: expected one of"),
        (lambda ss: StateSpace(*ss, kind="continuous", dt=1.0), "dt: expected None"),
        (lambda ss: StateSpace(*ss, kind="discrete", dt=-1.0), "dt: expected a positive"),
    ],
)
def test_state_space_misuse_raises_value_errors_naming_the_argument(call, match):
    model = rnnode.ODERNN(1, 2, 2)
    ss = linearize(model, torch.zeros(3, 2, 2), torch.zeros(1))
    with pytest.raises(ValueError, match=match):
        call(ss)


def test_measured_phase_of_a_continuous_solve_is_the_continuous_linearisation():
    # The same convention for continuous time: probes through a cubic spline and RK4 (dt = 0.1)
    # solve the continuous stack to ~1e-6 (as test_gain's continuous gain test), so the
    # measured phase meets arg H(i omega) to 1e-5 rad (1.2e-6 seen) and the gain to 1e-5.
    model = rnnode.ODERNN(1, 2, 2, cell="rnn", bias=False)
    omegas = np.array([0.2, 0.7, 1.5])
    measured = measure_response(
        model,
        omegas,
        amplitude=1e-4,
        num_steps=600,
        transient=300,
        dt=0.1,
        coupling="continuous",
        method="rk4",
        interpolation="cubic",
    )
    linear = frequency_response(model, omegas, kind="continuous")
    np.testing.assert_allclose(measured.unit_phase.numpy(), linear.unit_phase.numpy(), atol=1e-5)
    np.testing.assert_allclose(measured.unit_gain.numpy(), linear.unit_gain.numpy(), rtol=1e-5)
