"""The continuous limit against scipy.integrate.solve_ivp, convergence orders, every method."""

import contextlib

import numpy as np
import pytest
import scipy.linalg
import torch
import torchdiffeq

import rnnode
from rnnode import StepBudgetError, integrate
from tests.helpers import (
    elman_stack_rhs,
    numpy_input,
    observed_order,
    solve_ivp_reference,
    to_numpy,
)


class _Decay(torch.nn.Module):
    def forward(self, t, y):
        return -y


def _problem(num_layers=2, skips=(1,), cell="rnn", T=8, seed=0):
    torch.manual_seed(seed)
    model = rnnode.ODERNN(
        2,
        3,
        num_layers=num_layers,
        cell=cell,
        skips=skips,
        tau=[0.7 + 0.3 * i for i in range(num_layers)],
    )
    x = torch.randn(T, 1, 2)
    times = torch.cat([torch.zeros(1), (0.6 + torch.rand(T)).cumsum(0)])
    h0 = 0.3 * torch.randn(num_layers, 1, 3)
    return model, x, times, h0


def _reference(model, x, times, h0, kind="cubic"):
    x_of_t = numpy_input(kind, to_numpy(times), to_numpy(x[:, 0]))
    rhs = elman_stack_rhs(model, x_of_t)
    jumps = to_numpy(times[1:-1]) if kind == "linear" else ()
    return solve_ivp_reference(rhs, to_numpy(times), to_numpy(h0[:, 0]).ravel(), jumps=jumps)


def _continuous(model, x, times, h0, **kw):
    sol = model.solve(x, h0, t=times, coupling="continuous", **kw)
    # (L, 1, T+1, 1, H) -> (T+1, L*H), the layout of the reference.
    return to_numpy(sol.states[:, 0, :, 0].permute(1, 0, 2).reshape(len(times), -1)), sol


@pytest.mark.parametrize("skips,num_layers", [((1,), 2), ((1, 2), 3)])
def test_euler_converges_at_order_one_to_solve_ivp(skips, num_layers):
    model, x, times, h0 = _problem(num_layers, skips)
    ref = _reference(model, x, times, h0)
    steps = [0.1, 0.05, 0.025, 0.0125]
    errors = [
        np.abs(
            _continuous(model, x, times, h0, method="euler", step_size=h, interpolation="cubic")[0]
            - ref
        ).max()
        for h in steps
    ]
    assert 0.9 < observed_order(steps, errors) < 1.1, errors


@pytest.mark.parametrize("interpolation", ["cubic", "linear"])
def test_rk4_converges_at_order_four_to_solve_ivp(interpolation):
    model, x, times, h0 = _problem()
    ref = _reference(model, x, times, h0, interpolation)
    steps = [0.4, 0.2, 0.1, 0.05]
    errors = [
        np.abs(
            _continuous(
                model, x, times, h0, method="rk4", step_size=h, interpolation=interpolation
            )[0]
            - ref
        ).max()
        for h in steps
    ]
    # The grid holds every knot, so each step lies where the input is smooth: full order 4.
    assert min(errors) > 1e-11  # well above the reference's own error
    assert 3.8 < observed_order(steps, errors) < 4.2, errors


@pytest.mark.parametrize(
    "method,tol",
    [("dopri5", 1e-7), ("dopri8", 1e-9), ("bosh3", 1e-6), ("adaptive_heun", 1e-4)],
)
def test_adaptive_methods_meet_their_tolerance(method, tol):
    model, x, times, h0 = _problem()
    ref = _reference(model, x, times, h0)
    got, sol = _continuous(
        model, x, times, h0, method=method, rtol=tol, atol=tol, interpolation="cubic"
    )
    # Local error control at tol; the contractive dynamics keep the global error within 10 tol.
    assert np.abs(got - ref).max() < 10 * tol
    assert sol.nfe > 0


@pytest.mark.parametrize("method", ["fehlberg2", "bosh3", "dopri5"])
def test_global_error_is_proportional_to_the_tolerance(method):
    """Low-order methods control the local error only: their global error is a multiple of tol
    (a first-order method takes many steps), but it must shrink in proportion to tol."""
    model, x, times, h0 = _problem()
    ref = _reference(model, x, times, h0)
    errors = [
        np.abs(
            _continuous(
                model, x, times, h0, method=method, rtol=tol, atol=tol, interpolation="cubic"
            )[0]
            - ref
        ).max()
        for tol in (1e-4, 1e-6)
    ]
    assert 1e-3 < errors[1] / errors[0] < 1e-1, errors


def test_sampled_coupling_against_solve_ivp_layer_by_layer():
    """Layer 2 is driven by the linear interpolation of layer 1's outputs at the sample times."""
    model, x, times, h0 = _problem()
    sol = model.solve(
        x, h0, t=times, method="dopri8", rtol=1e-12, atol=1e-12, interpolation="linear"
    )
    tn = to_numpy(times)
    drive = to_numpy(x[:, 0])
    for layer in range(2):
        sub = rnnode.ODERNN(drive.shape[1], 3, cell="rnn")
        sub.layers[0] = model.field(layer)
        rhs = elman_stack_rhs(sub, numpy_input("linear", tn, drive))
        ref = solve_ivp_reference(rhs, tn, to_numpy(h0[layer, 0]), jumps=tn[1:-1])
        np.testing.assert_allclose(to_numpy(sol.states[layer, 0, :, 0]), ref, rtol=0, atol=1e-9)
        drive = ref[1:]


def test_held_input_on_a_linear_field_matches_the_matrix_exponential():
    """Piecewise-constant input: h(t_k) = e^{A d} h + A^{-1} (e^{A d} - I)(B x_k + b), exactly.

    RK4's last stage sits on the knot and must see the sample of the current interval (not the
    next one): were it wrong, the error would be O(step) and the order would collapse from 4.
    """
    model, x, times, h0 = _problem(num_layers=1, cell="linear")
    f = model.field(0)
    A, B = to_numpy(f.A), to_numpy(f.B)
    b = to_numpy((f.bias_ih + f.bias_hh) / f.tau)
    h = to_numpy(h0[0, 0])
    expected = [h]
    for k in range(len(x)):
        d = float(times[k + 1] - times[k])
        E = scipy.linalg.expm(A * d)
        h = E @ h + np.linalg.solve(A, (E - np.eye(3)) @ (B @ to_numpy(x[k, 0]) + b))
        expected.append(h)
    expected = np.array(expected)
    steps = [0.4, 0.2, 0.1, 0.05]
    errors = [
        np.abs(
            to_numpy(model.solve(x, h0, t=times, method="rk4", step_size=h).states[0, 0, :, 0])
            - expected
        ).max()
        for h in steps
    ]
    assert 3.8 < observed_order(steps, errors) < 4.2, errors
    sol = model.solve(x, h0, t=times, method="dopri5", rtol=1e-10, atol=1e-10)
    assert np.abs(to_numpy(sol.states[0, 0, :, 0]) - expected).max() < 1e-9


@pytest.mark.filterwarnings("ignore:Functional iteration did not converge")  # torchdiffeq's
@pytest.mark.filterwarnings("ignore:The following arguments have no effect")  # scipy's
@pytest.mark.parametrize("method", rnnode.METHODS)
def test_every_torchdiffeq_method_gives_torchdiffeqs_own_answer(method):
    """Same ODE, same steps: rnnode's solve equals torchdiffeq.odeint on the joint field."""
    model, x, _, h0 = _problem()
    x = x[:1].expand(6, 1, 2)  # a constant input: the joint field at that input is autonomous
    times = torch.arange(7.0)
    options = {"solver": "RK45"} if method == "scipy_solver" else {}
    if method in rnnode.FIXED_METHODS:
        options["step_size"] = 0.25
    # scipy_solver has no gradients: rnnode refuses it where gradients are needed.
    context = torch.no_grad() if method == "scipy_solver" else contextlib.nullcontext()
    with context:
        sol = model.solve(
            x,
            h0,
            t=times,
            method=method,
            rtol=1e-4,
            atol=1e-4,
            coupling="continuous",
            interpolation="linear",
            step_size=options.pop("step_size", None),
            options=options,
        )

    def field(t, y):
        return model.joint_field(y.reshape(2, 3), x[0, 0], t).reshape(-1)

    if method in rnnode.FIXED_METHODS:
        options["step_size"] = 0.25
    elif method != "scipy_solver":
        options["step_t"] = times[1:]  # rnnode steps onto every sample time
    reference = torchdiffeq.odeint(
        field, h0[:, 0].reshape(-1), times, method=method, rtol=1e-4, atol=1e-4, options=options
    )
    got = sol.states[:, 0, :, 0].permute(1, 0, 2).reshape(7, -1)
    # Identical arithmetic up to the order of additions inside the field.
    torch.testing.assert_close(got, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["explicit_adams", "implicit_adams", "fixed_adams", "heun2"])
def test_unsupported_torchdiffeq_methods_are_refused_with_the_reason(method):
    """explicit_adams on dh/dt = -h at step 0.1 reached 2e15 (exact 0.0025) without an error;
    the Adams methods are refused, as is heun2 (absent from the lowest allowed torchdiffeq)."""
    assert method not in rnnode.METHODS
    with pytest.raises(ValueError, match=f"method: '{method}' is not supported: .+"):
        integrate(
            _Decay(),
            torch.ones(1, 1, dtype=torch.float64),
            torch.arange(3.0, dtype=torch.float64),
            method=method,
            step_size=0.1,
            rtol=1e-6,
            atol=1e-8,
            discontinuous=False,
        )


@pytest.mark.parametrize("coupling,interpolation", [("sampled", "hold"), ("continuous", "cubic")])
def test_adjoint_gradients_equal_direct_backprop(coupling, interpolation):
    model, x, times, h0 = _problem(T=4)
    x.requires_grad_(True)
    h0.requires_grad_(True)
    grads = []
    for adjoint in (False, True):
        out, h_n = model(
            x,
            h0,
            t=times,
            method="dopri8",
            rtol=1e-10,
            atol=1e-10,
            interpolation=interpolation,
            coupling=coupling,
            adjoint=adjoint,
        )
        loss = out.pow(2).sum() + h_n.sum()
        grads.append(torch.autograd.grad(loss, [x, h0, *model.parameters()]))
    # Two solves at rtol 1e-10, the adjoint's backwards; a held input's jumps cost it accuracy.
    tol = 1e-6 if interpolation == "hold" else 1e-8
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("method,step", [("euler", 0.5), ("midpoint", 0.25), ("rk4", 0.5)])
def test_fixed_step_adjoint_is_the_exact_gradient_of_the_steps(method, step):
    """The discrete adjoint: the gradient of the steps taken, as backprop's, to rounding (the
    continuous adjoint of the same grid was 3 to 16% off)."""
    model, x, times, h0 = _problem(T=5)
    x.requires_grad_(True)
    h0.requires_grad_(True)
    grads = []
    for adjoint in (False, True):
        out, h_n = model(x, h0, t=times, method=method, step_size=step, adjoint=adjoint)
        loss = out.pow(2).sum() + h_n.sum()
        grads.append(torch.autograd.grad(loss, [x, h0, *model.parameters()]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method,step", [("euler", None), ("rk4", 0.5), ("midpoint", 0.25)])
def test_nfe_counts_stages(method, step):
    model, x, times, h0 = _problem()
    with torch.no_grad():  # tau = 1: Euler's one step per interval stays stable (tau 0.7 does not)
        for field in model.layers:
            field.fixed_tau.fill_(1.0)
    sol = model.solve(x, h0, method=method, step_size=step)
    stages = {"euler": 1, "rk4": 4, "midpoint": 2}[method]
    steps_per_interval = 1 if step is None else int(round(1 / step))
    assert sol.nfe == 2 * len(x) * steps_per_interval * stages


def test_exploding_fixed_step_dynamics_raise():
    model = rnnode.ODERNN(1, 2, cell="linear")
    with torch.no_grad():
        model.field(0).weight_hh.copy_(torch.eye(2) * 1e3)
    with pytest.raises(rnnode.DivergenceError, match="non-finite"):
        model(torch.ones(200, 1, 1))


def test_exploding_adaptive_dynamics_raise_instead_of_hanging():
    # float32 overflows after e^88: a few thousand steps of relative error control.
    model = rnnode.ODERNN(1, 2, cell="linear").float()
    with torch.no_grad():
        model.field(0).weight_hh.copy_(torch.eye(2) * 60.0)
    with pytest.raises(rnnode.DivergenceError, match="non-finite"):
        model(torch.ones(100, 1, 1, dtype=torch.float32), method="dopri5")


def test_adaptive_step_budget_ends_a_stiff_solve():
    model = rnnode.ODERNN(1, 2, cell="linear")
    with torch.no_grad():
        model.field(0).weight_hh.copy_(torch.eye(2) * 60.0)
    with pytest.raises(StepBudgetError, match="max_num_steps=50 set in options"):
        model(torch.ones(5, 1, 1), method="dopri5", options={"max_num_steps": 50})


def test_step_size_with_an_adaptive_method_is_refused():
    model, x, times, h0 = _problem()
    with pytest.raises(ValueError, match="step_size: applies to the fixed-step methods"):
        model(x, method="dopri5", step_size=0.1)
