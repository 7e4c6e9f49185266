"""User-defined fields and per-unit time constants (``rnnode.fields``, ``ODERNN.from_fields``):
every coupling, fused or not, against explicit RK4 (3/8 rule) and Euler loops written here in
float64, and through ``rnnode.analysis.linearize`` and ``find_fixed_points`` against closed forms
and ``numpy.linalg``."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnode
from rnnode import _block, _stack_ode
from rnnode.analysis import find_fixed_points, linearize
from rnnode.fields import ElmanField, Field, FusibleField, LSTMField, check_field

T, B = 5, 3
DT = 0.5  # two RK4 steps per unit sample interval


class CubicLeak(nn.Module):
    """A field of one's own (no rnnode base class): dh/dt = (tanh(u + W h) - h - h^3 / 10) / tau
    with one tau per unit."""

    state_parts = 1
    part_names = ("h",)

    def __init__(self, input_size: int, hidden_size: int, tau: torch.Tensor):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size) / input_size)
        self.bias_ih = nn.Parameter(torch.randn(hidden_size) / 4)
        self.weight_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) / (2 * hidden_size))
        self.register_buffer("tau", tau)

    @property
    def state_size(self) -> int:
        return self.hidden_size

    def project(self, x, columns=None, bias=True):
        weight = self.weight_ih if columns is None else self.weight_ih[:, columns]
        return F.linear(x, weight, self.bias_ih if bias else None)

    def output(self, state):
        return state

    def forward(self, t, state, u):
        return (torch.tanh(u + state @ self.weight_hh.T) - state - state**3 / 10) / self.tau


# -- hand-written rates and loops ------------------------------------------------------------------


def _w(p):
    """A weight as a plain tensor, outside the model's graph."""
    return p.detach().clone()


def elman_rate(f, h, drive_in):
    """(tanh(W_ih s + b_ih + W_hh h + b_hh) - h) / tau, from the field's weights."""
    z = drive_in @ _w(f.weight_ih).T + _w(f.bias_ih) + h @ _w(f.weight_hh).T + _w(f.bias_hh)
    return (torch.tanh(z) - h) / _w(f.tau)


def lstm_rate(f, s, drive_in):
    H = f.hidden_size
    h, c = s[..., :H], s[..., H:]
    z = drive_in @ _w(f.weight_ih).T + _w(f.bias_ih) + h @ _w(f.weight_hh).T + _w(f.bias_hh)
    i, fg, g, o = z.sigmoid()[..., :H], z.sigmoid()[..., H : 2 * H], z[..., 2 * H : 3 * H], z
    g, o = torch.tanh(g), o[..., 3 * H :].sigmoid()
    c_new = fg * c + i * g
    tau = _w(f.tau)
    return torch.cat([(o * torch.tanh(c_new) - h) / tau, (c_new - c) / tau], dim=-1)


def cubic_rate(f, h, drive_in):
    z = drive_in @ _w(f.weight_ih).T + _w(f.bias_ih) + h @ _w(f.weight_hh).T
    return (torch.tanh(z) - h - h**3 / 10) / _w(f.tau)


def rk4(rhs, y0, drives, dt, steps):
    """``method="rk4"`` as torchdiffeq defines it, Kutta's 3/8 rule: ``steps`` steps of ``dt``
    per interval, the drive held on each interval."""
    y, out = y0, [y0]
    for d in drives:
        for _ in range(steps):
            k1 = rhs(y, d)
            k2 = rhs(y + dt * k1 / 3, d)
            k3 = rhs(y + dt * (k2 - k1 / 3), d)
            k4 = rhs(y + dt * (k1 - k2 + k3), d)
            y = y + dt * (k1 + 3 * (k2 + k3) + k4) / 8
        out.append(y)
    return torch.stack(out)


def hand_solve(fields, rate, x, coupling):
    """The hidden states (T + 1, B, S) of each layer of a plain stack, solved by hand."""
    S = fields[0].state_size
    H = fields[0].hidden_size
    steps = round(1 / DT)
    if coupling == "sampled":
        states, source = [], x
        for f in fields:
            traj = rk4(lambda y, d, f=f: rate(f, y, d), torch.zeros(B, S), source, DT, steps)
            states.append(traj)
            source = traj[1:, :, :H]
        return states

    def joint(y, d):
        ys = y.unbind(0)
        rates = [rate(fields[0], ys[0], d)]
        rates += [rate(f, ys[i], ys[i - 1][..., :H]) for i, f in enumerate(fields[1:], 1)]
        return torch.stack(rates)

    traj = rk4(joint, torch.zeros(len(fields), B, S), x, DT, steps)
    return list(traj.unbind(1))


def _solve(model, x, coupling, fuse, monkeypatch):
    monkeypatch.setattr(_stack_ode, "_FUSE", fuse)
    used = []
    for name in ("rate", "rate_chain"):
        method = getattr(_block._Block, name)
        monkeypatch.setattr(
            _block._Block, name, lambda *a, method=method: used.append(1) or method(*a)
        )
    sol = model.solve(x, method="rk4", step_size=DT, coupling=coupling)
    return sol, bool(used)


def _per_unit_tau(hidden, low=0.5, high=4.0):
    return torch.exp(torch.linspace(math.log(low), math.log(high), hidden))


# -- per-unit tau, every coupling, fused or not ----------------------------------------------------


@pytest.mark.parametrize("coupling", rnnode.COUPLINGS)
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "loop"])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_per_unit_tau_equals_the_hand_rk4_loop(cell, fuse, coupling, monkeypatch):
    tau = _per_unit_tau(4)
    model = rnnode.ODERNN(2, 4, num_layers=3, cell=cell, tau=tau)
    assert torch.equal(model.field(1).tau, tau)
    x = torch.randn(T, B, 2)
    sol, fused = _solve(model, x, coupling, fuse, monkeypatch)
    assert fused == (fuse and coupling == "continuous")
    want = hand_solve(list(model.layers), elman_rate if cell == "rnn" else lstm_rate, x, coupling)
    for layer in range(3):
        torch.testing.assert_close(sol.states[layer, 0], want[layer], rtol=0, atol=1e-12)


def test_tau_one_per_layer_of_per_unit_tensors_and_a_layer_by_unit_tensor_agree():
    taus = torch.stack([_per_unit_tau(3, 0.5, 2.0), _per_unit_tau(3, 1.0, 8.0)])
    torch.manual_seed(1)
    a = rnnode.ODERNN(2, 3, num_layers=2, tau=taus)
    torch.manual_seed(1)
    b = rnnode.ODERNN(2, 3, num_layers=2, tau=[taus[0], taus[1]])
    torch.manual_seed(1)
    c = rnnode.ODERNN(2, 3, num_layers=2, tau=[taus[0], 1.5])
    assert torch.equal(a.field(1).tau, taus[1]) and c.field(1).tau.dim() == 0
    x = torch.randn(4, 2, 2)
    out_a = a(x, coupling="continuous", method="rk4")[0]
    assert torch.equal(out_a, b(x, coupling="continuous", method="rk4")[0])


def test_learnable_per_unit_tau_gets_a_gradient_per_unit():
    tau = _per_unit_tau(3)
    model = rnnode.ODERNN(2, 3, num_layers=2, tau=tau, learn_tau=True)
    torch.testing.assert_close(model.field(0).tau, tau, rtol=0, atol=1e-15)
    out, _ = model(torch.randn(4, 2, 2), coupling="continuous", method="rk4")
    out.sum().backward()
    assert model.field(0).log_tau.grad.shape == (3,)
    assert bool((model.field(0).log_tau.grad != 0).all())


def test_the_timescales_unit_tau_field_runs_continuously_coupled(monkeypatch):
    # The study's per-unit-tau field raised a size mismatch in the fused block before.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from studies.timescales import make_stack

    model = make_stack(3, 4, seed=2).double()
    x = torch.randn(T, B, 1)
    sol, fused = _solve(model, x, "continuous", True, monkeypatch)
    assert fused
    want = hand_solve(list(model.layers), elman_rate, x, "continuous")
    for layer in range(3):
        torch.testing.assert_close(sol.states[layer, 0], want[layer], rtol=0, atol=1e-12)


# -- a user-defined field --------------------------------------------------------------------------


def _cubic_stack(**kwargs):
    fields = [CubicLeak(2, 3, _per_unit_tau(3)), CubicLeak(3, 3, _per_unit_tau(3, 1.0, 3.0))]
    return rnnode.ODERNN.from_fields(fields, **kwargs), fields


@pytest.mark.parametrize("coupling", rnnode.COUPLINGS)
def test_user_field_stack_equals_the_hand_rk4_loop(coupling, monkeypatch):
    model, fields = _cubic_stack()
    assert isinstance(fields[0], Field) and not isinstance(fields[0], FusibleField)
    assert model.cell is None and list(model.layers) == fields  # shared, not copied
    x = torch.randn(T, B, 2)
    sol, fused = _solve(model, x, coupling, True, monkeypatch)
    assert not fused
    want = hand_solve(fields, cubic_rate, x, coupling)
    for layer in range(2):
        torch.testing.assert_close(sol.states[layer, 0], want[layer], rtol=0, atol=1e-12)
    out, h_n = model(x, method="rk4", step_size=DT, coupling=coupling)
    torch.testing.assert_close(out, want[1][1:], rtol=0, atol=1e-12)


def test_user_field_gradients_pass_gradcheck():
    model, _ = _cubic_stack()
    x = torch.randn(3, 2, 2, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x, method="rk4", coupling="continuous")[0], x)


def test_bidirectional_from_fields_is_the_constructor_stack_with_the_same_weights():
    torch.manual_seed(3)
    ref = rnnode.ODERNN(2, 3, num_layers=2, cell="gru", bidirectional=True, tau=0.7)
    pairs = [(ref.field(layer, 0), ref.field(layer, 1)) for layer in range(2)]
    model = rnnode.ODERNN.from_fields(pairs)
    assert model.bidirectional and model.cell == "gru"
    x = torch.randn(T, B, 2)
    for kw in ({}, {"method": "rk4", "interpolation": "linear"}):
        assert torch.equal(model(x, **kw)[0], ref(x, **kw)[0])


def test_from_fields_of_unit_tau_elman_fields_bridges_to_torch():
    model = rnnode.ODERNN.from_fields([ElmanField(2, 3), ElmanField(3, 3)])
    rnn = rnnode.to_torch(model)
    x = torch.randn(T, B, 2)
    torch.testing.assert_close(model(x)[0], rnn(x)[0], rtol=0, atol=1e-12)


# -- analysis of such stacks -----------------------------------------------------------------------


def _elman_jacobian(fields, h, x):
    """dF/dh of the continuously coupled two-layer Elman stack with per-unit tau, by hand."""
    f1, f2 = fields
    z1 = x @ _w(f1.weight_ih).T + _w(f1.bias_ih) + h[0] @ _w(f1.weight_hh).T + _w(f1.bias_hh)
    z2 = h[0] @ _w(f2.weight_ih).T + _w(f2.bias_ih) + h[1] @ _w(f2.weight_hh).T
    z2 = z2 + _w(f2.bias_hh)
    d1, d2 = 1 - torch.tanh(z1) ** 2, 1 - torch.tanh(z2) ** 2
    eye = torch.eye(len(d1))
    t1, t2 = _w(f1.tau)[:, None], _w(f2.tau)[:, None]
    top = torch.cat([(d1[:, None] * _w(f1.weight_hh) - eye) / t1, torch.zeros_like(eye)], 1)
    bottom = torch.cat(
        [d2[:, None] * _w(f2.weight_ih) / t2, (d2[:, None] * _w(f2.weight_hh) - eye) / t2], 1
    )
    return torch.cat([top, bottom])


def test_linearize_per_unit_tau_equals_the_closed_form_jacobian():
    model = rnnode.ODERNN(2, 3, num_layers=2, tau=_per_unit_tau(3))
    h, x = torch.randn(2, 3), torch.randn(2)
    A = linearize(model, h, x, kind="continuous").A
    torch.testing.assert_close(A, _elman_jacobian(list(model.layers), h, x), rtol=0, atol=1e-12)
    # The discrete (Euler, sampled) step: h1' = h1 + dt F1, h2' = h2 + dt F2(h2, h1').
    dt = 0.5
    step = linearize(model, h, x, kind="discrete", coupling="sampled", dt=dt).A
    J = _elman_jacobian(list(model.layers), h, x)
    h1 = h[0] + dt * elman_rate(model.field(0), h[0], x)
    J2 = _elman_jacobian(list(model.layers), torch.stack([h1, h[1]]), x)
    want = torch.eye(6) + dt * J
    want[3:, :3] = dt * J2[3:, :3] @ (torch.eye(3) + dt * J[:3, :3])
    want[3:, 3:] = torch.eye(3) + dt * J2[3:, 3:]
    torch.testing.assert_close(step, want, rtol=0, atol=1e-12)


def _hand_rhs(fields, rate, x):
    def rhs(y):
        h = y.reshape(len(fields), -1)
        rates = [rate(fields[0], h[0], x)]
        rates += [rate(f, h[i], h[i - 1]) for i, f in enumerate(fields[1:], 1)]
        return torch.cat(rates)

    return rhs


@pytest.mark.parametrize("kind", ["per-unit-tau", "user-field"])
def test_fixed_points_equal_the_hand_euler_limit_and_numpy_eigenvalues(kind):
    if kind == "per-unit-tau":
        torch.manual_seed(5)
        model = rnnode.ODERNN(2, 3, num_layers=2, tau=_per_unit_tau(3))
        with torch.no_grad():
            for f in model.layers:
                f.weight_hh.mul_(0.5)  # a contraction: one fixed point
        fields, rate = list(model.layers), elman_rate
    else:
        model, fields = _cubic_stack()
        rate = cubic_rate
    x = torch.randn(2)
    rhs = _hand_rhs(fields, rate, x)
    y = torch.zeros(6)
    for _ in range(20000):  # explicit Euler to the stable equilibrium
        y = y + 0.2 * rhs(y)
        if float(rhs(y).abs().max()) < 1e-15:
            break
    fp = find_fixed_points(model, x, torch.randn(4, 2, 3) * 0.3, opt_steps=50)
    assert len(fp.classification) == 1 and fp.classification == ["stable"]
    torch.testing.assert_close(fp.points[0].reshape(-1), y, rtol=0, atol=1e-12)
    jac = torch.autograd.functional.jacobian(rhs, y).numpy()
    want = np.sort_complex(np.linalg.eigvals(jac))
    got = np.sort_complex(fp.eigenvalues[0].numpy())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


# -- the protocol's checks -------------------------------------------------------------------------


class _Shifted(ElmanField):
    """Redefines the rate without declaring fusion again: not fusible."""

    def forward(self, t, state, u):
        return super().forward(t, state, u) + 0.25


class _FalselyFusible(_Shifted):
    fusible = True


def test_redefining_the_rate_revokes_fusion_and_the_loop_runs_it(monkeypatch):
    assert ElmanField.fusible and not _Shifted.fusible
    fields = [_Shifted(2, 3), _Shifted(3, 3)]
    model = rnnode.ODERNN.from_fields(fields)
    x = torch.randn(T, B, 2)
    sol, fused = _solve(model, x, "continuous", True, monkeypatch)
    assert not fused and model.cell is None

    def rate(f, h, d):
        return elman_rate(f, h, d) + 0.25

    want = hand_solve(fields, rate, x, "continuous")
    torch.testing.assert_close(sol.states[1, 0], want[1], rtol=0, atol=1e-12)


def test_a_false_fusion_declaration_is_caught():
    with pytest.raises(ValueError, match=r"fields\[1\]: declares fusible=True, but the rate"):
        rnnode.ODERNN.from_fields([ElmanField(2, 3), _FalselyFusible(3, 3)])


def test_check_field_accepts_every_built_in_cell():
    for cell in rnnode.CELLS:
        check_field(rnnode.ODERNN(2, 3, cell=cell).field(0))
    for cell in ("rnn", "gru", "lstm", "linear", "antisymmetric", "cornn"):
        check_field(rnnode.ODERNN(2, 3, cell=cell, tau=_per_unit_tau(3)).field(0))
    assert isinstance(LSTMField(2, 3), FusibleField)


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        (lambda: ElmanField(2, 3), TypeError, r"fields: expected a non-empty sequence"),
        (lambda: [], TypeError, r"fields: expected a non-empty sequence"),
        (lambda: [nn.Linear(2, 3)], TypeError, r"fields\[0\]: Linear lacks \["),
        (lambda: [ElmanField(2, 3), ElmanField(2, 3)], ValueError, r"fields\[1\]: .*input_size=3"),
        (lambda: [ElmanField(2, 3), ElmanField(3, 4)], ValueError, r"fields\[1\]: .*hidden_size"),
        (lambda: [ElmanField(2, 3), (ElmanField(3, 3),)], ValueError, r"fields: .*a mix"),
        (lambda: [(ElmanField(2, 3),)], ValueError, r"fields\[0\]: expected a \(forward"),
        (
            lambda: [ElmanField(2, 3), ElmanField(3, 3).float()],
            ValueError,
            r"fields\[1\]: expected dtype torch.float64",
        ),
    ],
)
def test_from_fields_refuses_what_does_not_stack(fields, error, match):
    with pytest.raises(error, match=match):
        rnnode.ODERNN.from_fields(fields())


@pytest.mark.parametrize(
    ("tau", "error", "match"),
    [
        (torch.tensor([1.0, -1.0, 2.0]), ValueError, r"tau: expected a positive finite number"),
        (torch.tensor([1.0, 2.0]), ValueError, r"tau: expected .*\(3,\) tensor"),
        (torch.ones(3, 3), ValueError, r"tau: expected a \(hidden,\)"),
        (torch.tensor(2.0), TypeError, r"tau: expected .*0-d tensor"),
        ([1.0, torch.ones(2)], ValueError, r"tau\[1\]: expected"),
    ],
)
def test_bad_per_unit_tau_is_refused_naming_it(tau, error, match):
    with pytest.raises(error, match=match):
        rnnode.ODERNN(2, 3, num_layers=2, tau=tau)


class _SquaredDrive(CubicLeak):
    def project(self, x, columns=None, bias=True):
        return super().project(x, columns, bias) ** 2


class _FusibleWithoutMembers(CubicLeak):
    fusible = True


def test_check_field_refuses_a_drive_that_is_not_the_affine_map_of_weight_ih():
    with pytest.raises(ValueError, match=r"fields\[0\]: project\(x\) differs"):
        rnnode.ODERNN.from_fields([_SquaredDrive(2, 3, _per_unit_tau(3))])


def test_a_fusion_declaration_without_the_members_is_a_type_error():
    field = _FusibleWithoutMembers(2, 3, _per_unit_tau(3))
    with pytest.raises(
        TypeError, match=r"declares fusible=True but lacks \['bias_hh', 'fusion_key'"
    ):
        check_field(field)


class _TauFromElsewhere(ElmanField):
    """Defines its own (per-unit) tau and nothing else: the fixed_tau buffer (1) is not read."""

    @property
    def tau(self):
        return torch.tensor([2.0, 4.0, 8.0])


@pytest.mark.parametrize("coupling", rnnode.COUPLINGS)
def test_a_subclass_with_its_own_tau_is_divided_by_it(coupling, monkeypatch):
    fields = [_TauFromElsewhere(2, 3), _TauFromElsewhere(3, 3)]
    model = rnnode.ODERNN.from_fields(fields)
    x = torch.randn(T, B, 2)
    sol, fused = _solve(model, x, coupling, True, monkeypatch)
    assert fused == (coupling == "continuous")
    want = hand_solve(fields, elman_rate, x, coupling)
    torch.testing.assert_close(sol.states[1, 0], want[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("coupling", rnnode.COUPLINGS)
def test_per_unit_log_tau_gradients_pass_gradcheck(coupling):
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="gru", tau=_per_unit_tau(3), learn_tau=True)
    x = torch.randn(3, 2, 2)
    names = ["layers.0.log_tau", "layers.1.log_tau"]
    params = dict(model.named_parameters())

    def solve(a, b):
        overrides = {**params, names[0]: a, names[1]: b}
        call = dict(method="rk4", coupling=coupling)
        return torch.func.functional_call(model, overrides, (x,), call)[0]

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(solve, inputs)
