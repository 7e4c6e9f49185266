"""analysis.gain against scipy.signal (freqz, freqs, ss2tf), typed closed forms and numpy.

Tolerances: the symbolic gains are exact, so they meet scipy to rounding (1e-12 relative). The
sine probes of the discrete linear stack are exact after the transient decays (|a|^transient
below 1e-14), so they also meet the theory to 1e-10; small-amplitude tanh differs from the
linearization by O((gain * amplitude)^2), and continuous-time probes by the cubic spline's and
RK4's O(dt^4) errors.
"""

import numpy as np
import pytest
import scipy.signal
import sympy as sp
import torch

import rnnode
from rnnode.analysis.gain import (
    linear_gain,
    measure_gain,
    preferred_frequencies,
    stack_gain,
    transfer_gain,
)

OMEGAS = np.linspace(0.05, 3.1, 13)


def _numeric(expr: sp.Expr, omegas=OMEGAS, **values) -> np.ndarray:
    """Evaluate a gain expression at the frequencies, other symbols looked up by name."""
    symbols = {s.name: s for s in expr.free_symbols}
    bound = expr.subs({symbols[k]: v for k, v in values.items()})
    f = sp.lambdify(symbols["omega"], bound, "numpy")
    return np.broadcast_to(np.asarray(f(omegas), dtype=np.float64), omegas.shape)


def _scalar_linear_stack(weight_hh, weight_ih, tau=1.0, **kwargs) -> rnnode.ODERNN:
    model = rnnode.ODERNN(1, 1, len(weight_hh), cell="linear", bias=False, tau=tau, **kwargs)
    with torch.no_grad():
        for layer, (a, w) in enumerate(zip(weight_hh, weight_ih, strict=True)):
            model.field(layer).weight_hh.fill_(a)
            model.field(layer).weight_ih.fill_(w)
    return model


def test_linear_gain_is_the_typed_formula_in_a_and_omega():
    expr = linear_gain()
    symbols = {s.name: s for s in expr.free_symbols}
    assert set(symbols) == {"a", "omega"}
    a, w = symbols["a"], symbols["omega"]
    assert sp.simplify(expr - 1 / sp.sqrt(1 - 2 * a * sp.cos(w) + a**2)) == 0


@pytest.mark.parametrize("a", [-0.9, 0.3, 0.95])
def test_linear_gain_matches_freqz(a):
    _, response = scipy.signal.freqz([1.0], [1.0, -a], worN=OMEGAS)
    np.testing.assert_allclose(_numeric(linear_gain(), a=a), np.abs(response), rtol=1e-12)


def test_continuous_linear_gain_is_the_typed_formula_and_matches_freqs():
    expr = linear_gain("continuous")
    symbols = {s.name: s for s in expr.free_symbols}
    assert set(symbols) == {"tau", "omega"}
    tau, w = symbols["tau"], symbols["omega"]
    assert sp.simplify(expr - tau / sp.sqrt(1 + tau**2 * w**2)) == 0
    # dh/dt = -h / tau + x has the transfer function 1 / (s + 1 / tau).
    _, response = scipy.signal.freqs([1.0], [1.0, 1 / 2.5], worN=OMEGAS)
    np.testing.assert_allclose(_numeric(expr, tau=2.5), np.abs(response), rtol=1e-12)


def test_transfer_gain_of_a_symbolic_scalar_layer_is_the_linear_gain():
    a = sp.Symbol("a")  # a plain symbol: transfer_gain treats it as real and hands it back
    expr = transfer_gain([[a]], [1], [1])
    single = linear_gain()
    real_a = next(s for s in single.free_symbols if s.name == "a")
    assert a in expr.free_symbols
    assert sp.simplify(expr - single.subs(real_a, a)) == 0


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_transfer_gain_matches_ss2tf(kind):
    rng = np.random.default_rng(1)
    A = 0.4 * rng.standard_normal((2, 2)) - (1.5 * np.eye(2) if kind == "continuous" else 0)
    B = rng.standard_normal((2, 1))
    C = rng.standard_normal((1, 2))
    num, den = scipy.signal.ss2tf(A, B, C, np.zeros((1, 1)))
    if kind == "discrete":
        # ss2tf's polynomials are in z; freqz wants them in z^{-1}: same coefficients, because
        # numerator and denominator have the same degree.
        _, response = scipy.signal.freqz(num[0], den, worN=OMEGAS)
    else:
        _, response = scipy.signal.freqs(num[0], den, worN=OMEGAS)
    gain = _numeric(transfer_gain(A, B, C, kind))
    np.testing.assert_allclose(gain, np.abs(response), rtol=1e-10)


def test_stack_gain_multiplies_the_layer_gains():
    a = [sp.Rational(9, 10), sp.Rational(-1, 2), sp.Rational(1, 5)]
    w = [2, sp.Rational(1, 2), 3]
    gains = stack_gain(a, w)
    single = linear_gain()
    sym_a = next(s for s in single.free_symbols if s.name == "a")
    expected = np.ones_like(OMEGAS)
    for layer in range(3):
        expected = expected * abs(float(w[layer])) * _numeric(single.subs(sym_a, a[layer]))
        np.testing.assert_allclose(_numeric(gains[layer]), expected, rtol=1e-12)


def test_continuous_stack_gain_matches_freqs_of_the_cascade():
    a, w, tau = [0.5, -1.0], [1.5, 2.0], [2.0, 0.5]
    gains = stack_gain(a, w, tau, kind="continuous")
    # Layer l: dh/dt = ((a - 1) h + w u) / tau, i.e. (w / tau) / (s + (1 - a) / tau) per layer.
    expected = np.ones_like(OMEGAS)
    for layer in range(2):
        b_poly = [w[layer] / tau[layer]]
        a_poly = [1.0, (1 - a[layer]) / tau[layer]]
        _, response = scipy.signal.freqs(b_poly, a_poly, worN=OMEGAS)
        expected = expected * np.abs(response)
        np.testing.assert_allclose(_numeric(gains[layer]), expected, rtol=1e-12)


@pytest.mark.parametrize("weights", [([0.9, 0.5], [1.0, 1.0]), ([-0.7, 0.95], [2.0, -0.5])])
def test_measured_gain_of_a_linear_stack_matches_freqz(weights):
    a, w = weights
    model = _scalar_linear_stack(a, w)
    measured = measure_gain(model, OMEGAS, amplitude=0.5, num_steps=1400, transient=1000)
    expected = np.ones_like(OMEGAS)
    for layer in range(2):
        _, response = scipy.signal.freqz([w[layer]], [1.0, -a[layer]], worN=OMEGAS)
        expected = expected * np.abs(response)
        np.testing.assert_allclose(measured[layer], expected, rtol=1e-10)


def test_measured_gain_of_a_small_amplitude_tanh_stack_matches_stack_gain():
    # Scalar Elman layers without bias linearize at 0 to h_t = a h_{t-1} + w h^{l-1}_t, whose
    # gains stack_gain derives; amplitude 1e-4 leaves a relative O(1e-7) from tanh's cubic term.
    a, w = [sp.Rational(4, 5), sp.Rational(-1, 2)], [sp.Rational(3, 2), 1]
    model = rnnode.ODERNN(1, 1, 2, cell="rnn", bias=False)
    with torch.no_grad():
        for layer in range(2):
            model.field(layer).weight_hh.fill_(float(a[layer]))
            model.field(layer).weight_ih.fill_(float(w[layer]))
    measured = measure_gain(model, OMEGAS, amplitude=1e-4, num_steps=500)
    theory = np.vstack([_numeric(g) for g in stack_gain(a, w)])
    np.testing.assert_allclose(measured, theory, rtol=1e-6)


def _stack_matrices(model):
    """(A, B) of the discrete linear(ized) sampled stack h_k = A h_{k-1} + B x_k, in numpy."""
    L, H = model.num_layers, model.hidden_size
    W_hh = [model.field(l).weight_hh.detach().numpy() for l in range(L)]
    W_ih = [model.field(l).weight_ih.detach().numpy() for l in range(L)]
    N = np.zeros((L * H, L * H))
    D = np.zeros((L * H, L * H))
    b = np.zeros((L * H, model.input_size))
    b[:H] = W_ih[0]
    for l in range(L):
        D[l * H : (l + 1) * H, l * H : (l + 1) * H] = W_hh[l]
        if l:
            N[l * H : (l + 1) * H, (l - 1) * H : l * H] = W_ih[l]
    lift = np.linalg.inv(np.eye(L * H) - N)
    return lift @ D, lift @ b


def _theory_norms(A, B, e, omegas, L, H, continuous=False):
    """||G_l(omega) e|| per layer for h = G x, G = (I - A e^{-i w})^{-1} B or (i w - A)^{-1} B."""
    out = np.empty((L, len(omegas)))
    for f, w in enumerate(omegas):
        if continuous:
            G = np.linalg.solve(1j * w * np.eye(A.shape[0]) - A, B @ e)
        else:
            G = np.linalg.solve(np.eye(A.shape[0]) - A * np.exp(-1j * w), B @ e)
        out[:, f] = np.linalg.norm(np.abs(G).reshape(L, H), axis=1)
    return out


@pytest.mark.parametrize("cell", ["linear", "rnn"])
def test_measured_gain_of_a_wide_stack_matches_the_linearized_theory(cell):
    # Elman without bias linearizes at 0 to the linear stack; amplitude 1e-4 keeps the cubic
    # term of tanh at a relative 1e-7.
    model = rnnode.ODERNN(2, 3, 2, cell=cell, bias=False)
    with torch.no_grad():
        for field in model.layers:
            field.weight_hh.mul_(1.5)
    A, B = _stack_matrices(model)
    assert np.abs(np.linalg.eigvals(A)).max() < 0.9  # the transient decays within 600 samples
    e = np.array([0.6, 0.8])
    measured = measure_gain(model, OMEGAS, amplitude=1e-4, num_steps=900, direction=e)
    expected = _theory_norms(A, B, e, OMEGAS, 2, 3)
    rtol = 1e-9 if cell == "linear" else 1e-6
    np.testing.assert_allclose(measured, expected, rtol=rtol)


def test_measured_gain_of_a_continuous_tanh_stack_matches_the_linearized_theory():
    # dh/dt = -h + tanh(W h + U x) linearizes at 0 to dh/dt = (W - I) h + U x. Fine samples
    # (dt = 0.1) through a cubic spline and RK4 make the continuous solve accurate to ~1e-6.
    model = rnnode.ODERNN(1, 2, 2, cell="rnn", bias=False)
    L, H = 2, 2
    A = np.zeros((L * H, L * H))
    B = np.zeros((L * H, 1))
    for l in range(L):
        f = model.field(l)
        A[l * H : (l + 1) * H, l * H : (l + 1) * H] = f.weight_hh.detach().numpy() - np.eye(H)
        if l:
            A[l * H : (l + 1) * H, (l - 1) * H : l * H] = f.weight_ih.detach().numpy()
    B[:H] = model.field(0).weight_ih.detach().numpy()
    omegas = np.array([0.2, 0.7, 1.5])
    measured = measure_gain(
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
    expected = _theory_norms(A, B, np.ones(1), omegas, L, H, continuous=True)
    np.testing.assert_allclose(measured, expected, rtol=1e-5)


def test_bidirectional_layers_count_both_directions():
    # The reverse direction of a linear layer sees the reversed sine: the same gain per unit.
    model = rnnode.ODERNN(1, 1, 1, cell="linear", bias=False, bidirectional=True)
    with torch.no_grad():
        for field in model.layers:
            field.weight_hh.fill_(0.6)
            field.weight_ih.fill_(1.0)
    measured = measure_gain(model, OMEGAS, amplitude=1.0, num_steps=200, transient=100)
    single = np.abs(scipy.signal.freqz([1.0], [1.0, -0.6], worN=OMEGAS)[1])
    np.testing.assert_allclose(measured[0], np.sqrt(2) * single, rtol=1e-10)


def test_preferred_frequencies_separate_slow_and_fast_layers():
    # a = 0.9 resonates at omega -> 0, a = -0.8 at omega -> pi: each layer's own peak, read
    # from a stack whose second layer is fed directly (weight 1) by the first is dominated by
    # the product, so two one-layer models are measured side by side.
    slow = measure_gain(_scalar_linear_stack([0.9], [1.0]), OMEGAS, num_steps=700)
    fast = measure_gain(_scalar_linear_stack([-0.8], [1.0]), OMEGAS, num_steps=700)
    best, at_edge = preferred_frequencies(OMEGAS, np.vstack([slow, fast]), return_edges=True)
    np.testing.assert_array_equal(best, [OMEGAS[0], OMEGAS[-1]])
    assert at_edge.tolist() == [True, True]  # both peaks lie at the grid's ends


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: measure_gain(m, [0.5, 4.0]), "omegas: expected frequencies in"),
        (lambda m: measure_gain(m, [[0.5]]), "omegas: expected a 1-D"),
        (lambda m: measure_gain(m, [0.5], amplitude=-1.0), "amplitude: expected a positive"),
        (lambda m: measure_gain(m, [0.5], num_steps=10, transient=9), "transient: expected"),
        (lambda m: measure_gain(m, [0.5], direction=[1.0, 0.0]), "direction: expected"),
        (lambda m: linear_gain("laplace"), "kind: expected one of"),
        (lambda m: transfer_gain([[1, 0], [0, 1]], [1, 1, 1], [1, 1]), r"B: expected shape"),
        (lambda m: transfer_gain([[1, 0]], [1], [1]), r"A: expected a square"),
        (lambda m: stack_gain([0.5, 0.5], [1.0]), r"weight_ih: expected 2 values"),
        (lambda m: preferred_frequencies([0.1, 0.2], np.ones((2, 3))), "gains: expected shape"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    model = _scalar_linear_stack([0.5], [1.0])
    with pytest.raises(ValueError, match=match):
        call(model)


def test_stack_gain_of_vector_layers_given_as_tensors_matches_numpy():
    # Layer 1: 2 units, layer 2: 1 unit (3 states, within the symbolic limit); torch tensors.
    w_hh = [torch.tensor([[0.5, -0.3], [0.2, 0.4]]), torch.tensor([[0.6]])]
    w_ih = [torch.tensor([[1.0], [0.5]]), torch.tensor([[0.7, -1.2]])]
    gains = stack_gain(w_hh, w_ih)
    A = np.zeros((3, 3))
    A[:2, :2], A[2, 2] = w_hh[0].numpy(), 0.6
    N = np.zeros((3, 3))
    N[2, :2] = w_ih[1].numpy()
    lift = np.linalg.inv(np.eye(3) - N)
    b = np.vstack([w_ih[0].numpy(), [[0.0]]])
    Ad, Bd = lift @ A, lift @ b
    for layer, units in ((0, slice(0, 2)), (1, slice(2, 3))):
        expected = [
            np.linalg.norm(np.linalg.solve(np.eye(3) - Ad * np.exp(-1j * w), Bd)[units])
            for w in OMEGAS
        ]
        np.testing.assert_allclose(_numeric(gains[layer]), expected, rtol=1e-12)


def test_stack_gain_takes_scalar_tensors_and_transfer_gain_several_outputs():
    gains = stack_gain([torch.tensor(0.5), torch.tensor(-0.2)], [torch.tensor(2.0), 1.0])
    reference = stack_gain([0.5, -0.2], [2.0, 1.0])
    for g, r in zip(gains, reference, strict=True):
        np.testing.assert_allclose(_numeric(g), _numeric(r), rtol=1e-14)
    A = np.array([[0.5, 0.0], [1.0, -0.3]])
    both = transfer_gain(A, [1.0, 0.0], np.eye(2))
    one = [transfer_gain(A, [1.0, 0.0], np.eye(2)[j]) for j in range(2)]
    np.testing.assert_allclose(
        _numeric(both), np.hypot(_numeric(one[0]), _numeric(one[1])), rtol=1e-13
    )


def test_symbolic_gains_beyond_the_size_limit_point_to_frequency_response():
    with pytest.raises(ValueError, match="n <= max_states = 4.*frequency_response"):
        transfer_gain(0.1 * np.eye(5), np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="got n = 6.*frequency_response"):
        stack_gain([0.5 * np.eye(3), 0.5 * np.eye(3)], [np.ones((3, 1)), np.eye(3)])
