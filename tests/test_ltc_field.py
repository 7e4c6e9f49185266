"""cell="ltc": the liquid time-constant field against the equation written out by hand (numpy
loops over units and synapses), in stacks, both directions, and under the analysis functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnode
from rnnode import analysis


def _p(value: np.ndarray, soft: bool) -> np.ndarray:
    return np.log1p(np.exp(value)) if soft else value


def _np(field, name):
    return getattr(field, name).detach().numpy().astype(np.float64)


def hand_rate(field, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dv/dt of the issue's equation, unit by unit and synapse by synapse; x the raw input."""
    soft = field.implicit_param_constraints
    H, I = field.hidden_size, field.input_size
    xm = x.copy()
    if field.input_w is not None:
        xm = xm * _np(field, "input_w")
    if field.input_b is not None:
        xm = xm + _np(field, "input_b")
    gleak, cm = _p(_np(field, "gleak"), soft), _p(_np(field, "cm"), soft)
    vleak = _np(field, "vleak")
    w, mu, sigma, erev = (_np(field, n) for n in ("w", "mu", "sigma", "erev"))
    sw, smu, ssigma, serev = (
        _np(field, n) for n in ("sensory_w", "sensory_mu", "sensory_sigma", "sensory_erev")
    )
    w, sw = _p(w, soft), _p(sw, soft)
    mask, smask = _np(field, "sparsity_mask"), _np(field, "sensory_sparsity_mask")
    out = np.zeros(H)
    for i in range(H):
        total = -gleak[i] * (v[i] - vleak[i])
        for j in range(H):
            s = 1 / (1 + np.exp(-sigma[j, i] * (v[j] - mu[j, i])))
            total -= w[j, i] * s * mask[j, i] * (v[i] - erev[j, i])
        for k in range(I):
            s = 1 / (1 + np.exp(-ssigma[k, i] * (xm[k] - smu[k, i])))
            total -= sw[k, i] * s * smask[k, i] * (v[i] - serev[k, i])
        out[i] = total / cm[i]
    return out


def _masks(field, generator, density=0.6):
    with torch.no_grad():
        for name in ("sparsity_mask", "sensory_sparsity_mask"):
            buf = getattr(field, name)
            buf.copy_((torch.rand(buf.shape, generator=generator) < density).double())


@pytest.mark.parametrize("soft", [True, False])
@pytest.mark.parametrize("mapping", ["affine", "linear", "none"])
def test_field_is_the_ltc_equation(soft, mapping):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = rnnode.ODERNN(
        3,
        5,
        cell="ltc",
        cell_options={"input_mapping": mapping, "implicit_param_constraints": soft},
    ).double()
    field = model.field(0)
    _masks(field, g)
    with torch.no_grad():
        if field.input_w is not None:
            field.input_w.uniform_(0.5, 1.5)
        if field.input_b is not None:
            field.input_b.uniform_(-0.3, 0.3)
        field.vleak.uniform_(-0.5, 0.5)
    v = torch.randn(5, dtype=torch.float64, generator=g)
    x = torch.randn(3, dtype=torch.float64, generator=g)
    got = model.joint_field(v.reshape(1, 5), x)[0].detach().numpy()
    np.testing.assert_allclose(got, hand_rate(field, v.numpy(), x.numpy()), rtol=0, atol=1e-12)
    # A synapse the mask removes has no effect, whatever its weight.
    j, i = map(int, torch.nonzero(field.sparsity_mask == 0)[0])
    with torch.no_grad():
        field.w[j, i] += 5.0
    again = model.joint_field(v.reshape(1, 5), x)[0].detach().numpy()
    np.testing.assert_array_equal(again, got)


def test_bad_ltc_arguments_name_the_argument():
    with pytest.raises(ValueError, match="input_mapping"):
        rnnode.ODERNN(2, 3, cell="ltc", cell_options={"input_mapping": "cubic"})
    with pytest.raises(ValueError, match="tau"):
        rnnode.ODERNN(2, 3, cell="ltc", tau=2.0)
    with pytest.raises(ValueError, match="bias"):
        rnnode.ODERNN(2, 3, cell="ltc", bias=False)
    with pytest.raises(ValueError, match="sparsity_mask: expected shape"):
        rnnode.LTCField(2, 3, sparsity_mask=torch.ones(2, 2))
    with pytest.raises(ValueError, match="motor_size"):
        rnnode.LTCField(2, 3, motor_size=4)


def _hand_layer(field, xs: np.ndarray, dt: float) -> np.ndarray:
    """Explicit Euler, one step of dt per held sample: states after each sample (T, H)."""
    v = np.zeros(field.hidden_size)
    out = []
    for x in xs:
        v = v + dt * hand_rate(field, v, x)
        out.append(v)
    return np.array(out)


def test_bidirectional_stack_is_the_hand_loop():
    """Two bidirectional LTC layers, Euler with one step per held sample, sampled coupling:
    the layer-by-layer loop (the reverse direction on the reversed samples)."""
    torch.manual_seed(3)
    model = rnnode.ODERNN(2, 4, num_layers=2, cell="ltc", bidirectional=True).double()
    x = torch.randn(6, 2, dtype=torch.float64)
    dt = 0.05
    out, h_n = model(x, t=torch.arange(7, dtype=torch.float64) * dt)
    inputs = x.numpy()
    finals = []
    for layer in range(2):
        fwd = _hand_layer(model.field(layer, 0), inputs, dt)
        rev = _hand_layer(model.field(layer, 1), inputs[::-1], dt)[::-1]
        finals += [fwd[-1], rev[0]]
        inputs = np.concatenate([fwd, rev], axis=-1)
    np.testing.assert_allclose(out.detach().numpy(), inputs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n.detach().numpy(), np.array(finals), rtol=0, atol=1e-12)


def _hand_joint(model, state: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The continuously coupled two-layer field: layer 2 reads layer 1's v."""
    r1 = hand_rate(model.field(0), state[0], x)
    r2 = hand_rate(model.field(1), state[1], state[0])
    return np.stack([r1, r2])


def test_linearize_is_the_finite_difference_jacobian_of_the_equation():
    torch.manual_seed(4)
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="ltc").double()
    _masks(model.field(1), torch.Generator().manual_seed(2))
    h = torch.randn(2, 3, dtype=torch.float64) * 0.3
    x = torch.tensor([0.4, -0.2], dtype=torch.float64)
    A, B, _, _ = analysis.linearize(model, h, x, kind="continuous")
    eps = 1e-6
    n = 6
    A_fd = np.zeros((n, n))
    for c in range(n):
        e = np.zeros(n)
        e[c] = eps
        plus = _hand_joint(model, h.numpy() + e.reshape(2, 3), x.numpy()).reshape(-1)
        minus = _hand_joint(model, h.numpy() - e.reshape(2, 3), x.numpy()).reshape(-1)
        A_fd[:, c] = (plus - minus) / (2 * eps)
    B_fd = np.zeros((n, 2))
    for c in range(2):
        e = np.zeros(2)
        e[c] = eps
        plus = _hand_joint(model, h.numpy(), x.numpy() + e).reshape(-1)
        minus = _hand_joint(model, h.numpy(), x.numpy() - e).reshape(-1)
        B_fd[:, c] = (plus - minus) / (2 * eps)
    # Central differences: truncation ~ eps^2 |f'''| and rounding ~ 1e-16 / eps = 1e-10.
    np.testing.assert_allclose(A.numpy(), A_fd, rtol=0, atol=1e-8)
    np.testing.assert_allclose(B.numpy(), B_fd, rtol=0, atol=1e-8)


def _isolated(input_size=2, hidden=3, soft=True, seed=5):
    """Units without recurrent synapses: dv/dt = (numerator(x) - denominator(x) v) / cm is
    linear in v, so its fixed point, spectrum and flow have closed forms."""
    torch.manual_seed(seed)
    model = rnnode.ODERNN(
        input_size,
        hidden,
        cell="ltc",
        cell_options={"implicit_param_constraints": soft},
    ).double()
    with torch.no_grad():
        model.field(0).sparsity_mask.zero_()
    return model


def _closed_form(field, x: np.ndarray):
    """(a, v*) with dv/dt = -a (v - v*): a = denominator / cm, v* = numerator / denominator."""
    zero = hand_rate(field, np.zeros(field.hidden_size), x)
    one = hand_rate(field, np.ones(field.hidden_size), x)
    a = zero - one  # the field is affine in v, unit by unit
    return a, zero / a


def test_find_fixed_points_finds_the_closed_form_point():
    model = _isolated()
    x = np.array([0.3, -0.6])
    a, v_star = _closed_form(model.field(0), x)
    starts = torch.rand(6, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    found = analysis.find_fixed_points(model, torch.tensor(x), starts)
    assert found.points.shape == (1, 1, 3)
    assert bool(found.is_fixed.all())
    np.testing.assert_allclose(found.points[0, 0].numpy(), v_star, rtol=0, atol=1e-10)
    # The Jacobian there is diag(-a): the eigenvalues are the decay rates.
    np.testing.assert_allclose(
        np.sort(found.eigenvalues[0].real.numpy()), np.sort(-a), rtol=0, atol=1e-10
    )
    assert found.classification == ["stable"]
    # With recurrent synapses: every point found is a root of the hand-written field.
    torch.manual_seed(6)
    model = rnnode.ODERNN(2, 4, cell="ltc").double()
    starts = torch.randn(8, 1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    found = analysis.find_fixed_points(model, torch.tensor(x), starts)
    assert bool(found.is_fixed.any())
    for p, fixed in zip(found.points, found.is_fixed, strict=True):
        if fixed:
            assert np.abs(hand_rate(model.field(0), p[0].numpy(), x)).max() < 1e-9


def test_lyapunov_exponents_are_the_rk4_decay_rates():
    """For dv/dt = -a (v - v*), RK4 with step h multiplies deviations by
    R(-a h) = 1 - a h + (a h)^2 / 2 - (a h)^3 / 6 + (a h)^4 / 24 per step."""
    model = _isolated()
    x = np.array([0.1, 0.2])
    a, _ = _closed_form(model.field(0), x)
    step = 0.1
    z = -a * step
    expected = np.sort(np.log(np.abs(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24)) / step)[::-1]
    got = analysis.lyapunov_exponents(
        model, torch.zeros(1, 3, dtype=torch.float64), torch.tensor(x), duration=5.0
    )
    np.testing.assert_allclose(np.sort(got.numpy())[::-1], expected, rtol=0, atol=1e-10)


def test_stability_map_and_frequency_response_have_the_closed_forms():
    model = _isolated(soft=False)
    field = model.field(0)
    gleak = field.gleak.detach().clone()

    def parametrize(params, p, q):
        return {"layers.0.gleak": p * params["layers.0.gleak"]}, q * torch.ones(2)

    with pytest.raises(ValueError, match="parametrize: the default scales every weight_hh"):
        analysis.stability_map(model, [1.0], [0.0])
    smap = analysis.stability_map(model, [0.5, 2.0], [-0.5, 0.5], parametrize)
    for i, p in enumerate((0.5, 2.0)):
        for j, q in enumerate((-0.5, 0.5)):
            with torch.no_grad():
                field.gleak.copy_(p * gleak)
            a, _ = _closed_form(field, np.full(2, q))
            assert float(smap.max_real[i, j]) == pytest.approx(float(np.max(-a)), abs=1e-10)
    with torch.no_grad():
        field.gleak.copy_(gleak)
    # Continuous frequency response around the fixed point: H_ij = b_ij / (i omega + a_i).
    x = np.array([0.2, 0.1])
    a, v_star = _closed_form(field, x)
    eps = 1e-6
    b = np.stack(
        [
            (hand_rate(field, v_star, x + eps * e) - hand_rate(field, v_star, x - eps * e))
            / (2 * eps)
            for e in np.eye(2)
        ],
        axis=-1,
    )
    omegas = np.array([0.1, 1.0, 10.0])
    response = analysis.frequency_response(
        model,
        omegas,
        h=torch.tensor(v_star).reshape(1, 3),
        x=torch.tensor(x),
        kind="continuous",
    ).response.numpy()
    expected = b[None] / (1j * omegas[:, None, None] + a[None, :, None])
    np.testing.assert_allclose(response, expected, rtol=0, atol=1e-8)


def test_weight_constraints_clip_the_positive_parameters_as_ncps():
    from rnnode.fields import LTCField

    torch.manual_seed(0)
    field = LTCField(2, 3, implicit_param_constraints=False).double()
    with torch.no_grad():
        for name in ("w", "sensory_w", "cm", "gleak", "vleak", "mu"):
            getattr(field, name).sub_(2.0)  # some entries now negative
    before = {n: p.detach().clone() for n, p in field.named_parameters()}
    field.apply_weight_constraints()
    for name, value in before.items():
        expected = value.clamp(min=0.0) if name in ("w", "sensory_w", "cm", "gleak") else value
        assert torch.equal(getattr(field, name), expected), name
    # With softplus positivity the stored values are left alone.
    soft = LTCField(2, 3).double()
    with torch.no_grad():
        soft.w.sub_(2.0)
    w = soft.w.detach().clone()
    soft.apply_weight_constraints()
    assert torch.equal(soft.w, w)
