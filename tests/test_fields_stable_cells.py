"""Stable-by-design cells: the antisymmetric RNN and the coupled oscillatory RNN (coRNN).

References: numpy.linalg eigenvalues, the Bendixson bound on a similar matrix, the closed-form
damped oscillator, the coRNN energy inequality, scipy.integrate.solve_ivp on a numpy
reimplementation of each field, and gradcheck in float64.
"""

import numpy as np
import pytest
import scipy.integrate
import torch

import rnnode
from rnnode import AntisymmetricField, CoupledOscillatorField


def _field_numpy(field):
    """The field's right-hand side (state, drive u = V s + b_ih) -> rate, reimplemented in numpy."""
    W = field.weight_hh.detach().numpy()
    b = field.bias_hh.detach().numpy()
    tau = float(field.tau)
    gamma = field.gamma
    if isinstance(field, AntisymmetricField):
        M = W - W.T - gamma * np.eye(W.shape[0])
        return lambda h, u: np.tanh(M @ h + u + b) / tau
    Wz = field.weight_hz.detach().numpy()
    eps = field.epsilon
    H = W.shape[0]

    def rhs(state, u):
        y, z = state[:H], state[H:]
        return np.concatenate([z, np.tanh(W @ y + Wz @ z + u + b) - gamma * y - eps * z]) / tau

    return rhs


def _drive(field, s):
    return field.weight_ih.detach().numpy() @ s + field.bias_ih.detach().numpy()


def _solve_intervals(rhs, times, y0):
    """y at every time in ``times``: solve_ivp DOP853 interval by interval, rhs(k, y) on
    [t_{k-1}, t_k) (a held input jumps at the knots, so no step crosses one)."""
    ys = [y0]
    for k in range(1, len(times)):
        sol = scipy.integrate.solve_ivp(
            lambda t, y, k=k: rhs(k, y),
            (times[k - 1], times[k]),
            ys[-1],
            method="DOP853",
            rtol=1e-12,
            atol=1e-14,
        )
        ys.append(sol.y[:, -1])
    return np.stack(ys)


@pytest.mark.parametrize("cell", ["antisymmetric", "cornn"])
@pytest.mark.parametrize("coupling", ["sampled", "continuous"])
def test_two_layer_trajectory_matches_solve_ivp(cell, coupling):
    torch.manual_seed(1)
    model = rnnode.ODERNN(2, 3, 2, cell=cell, tau=[1.0, 2.0], coupling=coupling)
    for p in model.parameters():
        p.data.mul_(2.0)  # large enough that tanh saturates somewhere
    x = torch.randn(4, 2)
    times = torch.tensor([0.0, 0.7, 1.5, 2.0, 3.1])
    sol = model.solve(x, t=times, method="dopri5", rtol=1e-11, atol=1e-13)

    xs, ts = x.numpy(), times.numpy()
    f0, f1 = model.field(0), model.field(1)
    rhs0, rhs1 = _field_numpy(f0), _field_numpy(f1)
    S, H = f0.state_size, 3
    if coupling == "continuous":

        def joint(k, y):
            a, b = y[:S], y[S:]
            return np.concatenate([rhs0(a, _drive(f0, xs[k - 1])), rhs1(b, _drive(f1, a[:H]))])

        ref = _solve_intervals(joint, ts, np.zeros(2 * S))
        ref = np.stack([ref[:, :S], ref[:, S:]])
    else:
        lower = _solve_intervals(lambda k, y: rhs0(y, _drive(f0, xs[k - 1])), ts, np.zeros(S))
        upper = _solve_intervals(lambda k, y: rhs1(y, _drive(f1, lower[k, :H])), ts, np.zeros(S))
        ref = np.stack([lower, upper])
    # Both solvers run at tolerances ~1e-11 over O(1) times; 1e-8 leaves a margin for
    # the accumulated local errors of dopri5.
    np.testing.assert_allclose(sol.states[:, 0].detach().numpy(), ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_antisymmetric_matrix_spectrum_is_imaginary_shifted_by_gamma(gamma):
    field = AntisymmetricField(2, 6, gamma=gamma)
    field.weight_hh.data.normal_(0.0, 3.0)
    eig = np.linalg.eigvals(field.recurrent_matrix.detach().numpy())
    W = field.weight_hh.detach().numpy()
    assert np.abs(np.linalg.eigvals(W).real).max() > 0.1  # W itself is not antisymmetric
    np.testing.assert_allclose(eig.real, -gamma, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 0.2])
def test_antisymmetric_jacobian_real_parts_obey_the_similarity_bound(gamma):
    """J = diag(d) (W - W^T - gamma I) with d = tanh' > 0 is similar to
    D^(1/2) (W - W^T) D^(1/2) - gamma D: an antisymmetric matrix minus gamma D, so every
    eigenvalue has real part in [-gamma max d, -gamma min d] (zero for gamma = 0), at any state."""
    field = AntisymmetricField(3, 5, gamma=gamma)
    for p in field.parameters():
        p.data.normal_(0.0, 1.5)
    h = torch.randn(5)
    u = field.project(torch.randn(3))
    J = torch.func.jacrev(lambda s: field(torch.tensor(0.0), s, u))(h).detach().numpy()
    z = field.recurrent_matrix @ h + u + field.bias_hh
    d = (1 - torch.tanh(z) ** 2).detach().numpy()
    real = np.linalg.eigvals(J).real
    assert real.min() >= -gamma * d.max() - 1e-12
    assert real.max() <= -gamma * d.min() + 1e-12


def test_cornn_without_drive_is_the_damped_oscillator():
    """W = W' = V = 0, b = 0: y'' = -gamma y - eps y', solved in closed form (underdamped)."""
    gamma, eps, tau = 2.0, 0.5, 1.5
    options = {"gamma": gamma, "epsilon": eps}
    model = rnnode.ODERNN(1, 2, 1, cell="cornn", tau=tau, cell_options=options)
    field = model.field(0)
    for p in field.parameters():
        p.data.zero_()
    y0, z0 = torch.tensor([[1.0, -0.5]]), torch.tensor([[0.3, 2.0]])
    times = torch.linspace(0.0, 4.0, 3)
    sol = model.solve(torch.zeros(2, 1), (y0, z0), t=times, method="dopri5", rtol=1e-12, atol=1e-14)
    s = times[:, None].numpy() / tau  # tau rescales time
    omega = np.sqrt(gamma - eps**2 / 4)
    a, b = y0.numpy(), (z0.numpy() + eps * y0.numpy() / 2) / omega  # z = dy/ds
    y = np.exp(-eps * s / 2) * (a * np.cos(omega * s) + b * np.sin(omega * s))
    np.testing.assert_allclose(sol.hidden[0, 0].detach().numpy(), y, atol=1e-10)


def test_cornn_energy_grows_at_most_linearly_whatever_the_weights():
    """E = (gamma |y|^2 + |z|^2) / 2 has dE/dt = (z . tanh(.) - eps |z|^2) / tau <= H / (4 eps tau),
    so over every sample interval E(t_k) <= E(t_{k-1}) + (t_k - t_{k-1}) H / (4 eps tau)."""
    H, tau = 4, 0.5
    model = rnnode.ODERNN(2, H, 1, cell="cornn", tau=tau)
    field = model.field(0)
    field.gamma, field.epsilon = 0.7, 0.3
    for p in field.parameters():
        p.data.normal_(0.0, 10.0)  # weights that would blow up an Elman or linear cell
    x = 5 * torch.randn(30, 3, 2)
    sol = model.solve(x, method="rk4", step_size=0.05)
    y, z = sol.states[0, 0].detach().split(H, dim=-1)
    energy = (field.gamma * (y**2).sum(-1) + (z**2).sum(-1)) / 2  # (T + 1, batch)
    growth = energy[1:] - energy[:-1]
    allowed = (sol.times[1:] - sol.times[:-1])[:, None] * H / (4 * field.epsilon * tau)
    # rk4 with step 0.05 on this field errs by far less than the margin 1e-6.
    assert (growth <= allowed + 1e-6).all()
    assert growth.max() > 0.2 * allowed.max()  # the bound is not vacuous here


@pytest.mark.parametrize("cls", [AntisymmetricField, CoupledOscillatorField])
def test_field_gradcheck(cls):
    field = cls(2, 3, tau=1.3)
    state = torch.randn(2, field.state_size, requires_grad=True)
    u = torch.randn(2, 3, requires_grad=True)
    params = tuple(field.parameters())

    def f(state, u, *params_):
        values = dict(zip((n for n, _ in field.named_parameters()), params_, strict=True))
        return torch.func.functional_call(field, values, (torch.tensor(0.0), state, u))

    assert torch.autograd.gradcheck(f, (state, u, *params))


@pytest.mark.parametrize("cell", ["antisymmetric", "cornn"])
@pytest.mark.parametrize("coupling", ["sampled", "continuous"])
def test_stack_gradcheck(cell, coupling):
    model = rnnode.ODERNN(2, 2, 2, cell=cell, coupling=coupling, method="midpoint")
    x = torch.randn(3, 1, 2, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x)[0], (x,))


@pytest.mark.parametrize("cell", ["antisymmetric", "cornn"])
def test_joint_field_is_the_numpy_field_of_the_stack(cell):
    model = rnnode.ODERNN(2, 3, 2, cell=cell)
    S = model.field(0).state_size
    state, x = torch.randn(2, S), torch.randn(2)
    got = model.joint_field(state, x).detach().numpy()
    f0, f1 = model.field(0), model.field(1)
    s = state.numpy()
    lower = _field_numpy(f0)(s[0], _drive(f0, x.numpy()))
    upper = _field_numpy(f1)(s[1], _drive(f1, s[0, :3]))
    np.testing.assert_allclose(got, np.stack([lower, upper]), rtol=0, atol=1e-14)


def test_new_cells_are_registered_and_take_their_options():
    assert {"antisymmetric", "cornn"} <= set(rnnode.CELLS)
    assert isinstance(rnnode.ODERNN(1, 2, cell="antisymmetric").field(0), AntisymmetricField)
    assert isinstance(rnnode.ODERNN(1, 2, cell="cornn").field(0), CoupledOscillatorField)
    model = rnnode.ODERNN(1, 2, 3, cell="cornn", cell_options={"gamma": 2.0, "epsilon": 0.25})
    assert all((f.gamma, f.epsilon, f.state_size) == (2.0, 0.25, 4) for f in model.layers)
    model = rnnode.ODERNN(1, 2, 2, cell="antisymmetric", cell_options={"gamma": 0.0})
    assert all(f.gamma == 0.0 for f in model.layers)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: AntisymmetricField(1, 2, gamma=-0.1), "gamma"),
        (lambda: CoupledOscillatorField(1, 2, gamma=0.0), "gamma"),
        (lambda: CoupledOscillatorField(1, 2, epsilon=-1.0), "epsilon"),
        (lambda: rnnode.ODERNN(1, 2, cell="cornn", cell_options={"gamma": -1.0}), "gamma"),
        (lambda: rnnode.ODERNN(1, 2, cell="cornn", cell_options={"delta": 1.0}), "cell_options"),
        (lambda: rnnode.ODERNN(1, 2, cell="gru", cell_options={"gamma": 1.0}), "cell_options"),
    ],
)
def test_bad_coefficients_are_rejected(build, name):
    with pytest.raises(ValueError, match=name):
        build()
