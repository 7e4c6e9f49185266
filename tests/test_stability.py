"""analysis.jacobians, fixed_points, stability_maps and lyapunov against finite differences,
numpy.linalg, scipy and simulated trajectories.

Tolerances: central differences with step 1e-6 carry an O(1e-12) truncation and O(1e-10)
rounding error; eigenvalues from the diagonal blocks meet numpy's eigenvalues of the full matrix
to rounding (1e-12); the Euler Liouville identity (sum of exponents = sum of log |det|) is exact
up to accumulated rounding.
"""

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch

import rnnode
from rnnode.analysis import (
    STEP_POLYNOMIALS,
    eigenvalues,
    find_fixed_points,
    jacobian,
    lyapunov_exponents,
    scale_recurrent_and_input,
    spectral_radius,
    stability_map,
)


def _finite_difference_jacobian(model, h, x, eps=1e-6):
    n = h.numel()
    flat = h.reshape(-1)
    cols = []
    for i in range(n):
        step = torch.zeros(n)
        step[i] = eps
        plus = model.joint_field((flat + step).reshape(h.shape), x)
        minus = model.joint_field((flat - step).reshape(h.shape), x)
        cols.append(((plus - minus) / (2 * eps)).reshape(-1))
    return torch.stack(cols, dim=-1).detach()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "linear"])
@pytest.mark.parametrize("skips", [(1,), (1, 2)])
def test_jacobian_matches_finite_differences(cell, skips):
    model = rnnode.ODERNN(2, 3, 3, cell=cell, tau=[1.0, 0.5, 2.0], skips=skips)
    S = model.layers[0].state_size
    h = torch.randn(4, 3, S)
    x = torch.randn(2)  # broadcast against the batch of 4 states
    J = jacobian(model, h, x).detach()
    assert J.shape == (4, 3 * S, 3 * S)
    for b in range(4):
        expected = _finite_difference_jacobian(model, h[b], x)
        torch.testing.assert_close(J[b], expected, rtol=0, atol=1e-8)


def test_jacobian_of_a_linear_stack_is_its_block_matrix():
    model = rnnode.ODERNN(2, 3, 2, cell="linear", tau=[2.0, 0.5])
    J = jacobian(model, torch.randn(3, 2, 3), torch.randn(3, 2)).detach()
    f0, f1 = model.field(0), model.field(1)
    expected = torch.zeros(6, 6)
    expected[:3, :3] = f0.A.detach()
    expected[3:, 3:] = f1.A.detach()
    expected[3:, :3] = f1.B.detach()  # layer 2's input matrix: its drive is layer 1's state
    for b in range(3):
        torch.testing.assert_close(J[b], expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_eigenvalues_from_blocks_match_numpy_on_the_full_matrix(cell):
    model = rnnode.ODERNN(2, 4, 3, cell=cell, skips=(1, 2))
    S = model.layers[0].state_size
    h, x = torch.randn(2, 3, S), torch.randn(2, 2)
    ours = eigenvalues(model, h, x).detach().numpy()
    full = np.linalg.eigvals(jacobian(model, h, x).detach().numpy())
    for b in range(2):
        np.testing.assert_allclose(np.sort_complex(ours[b]), np.sort_complex(full[b]), atol=1e-12)


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun3", "rk4"])
def test_spectral_radius_is_that_of_the_step_polynomial_of_the_matrix(method):
    # Spectral mapping: eig R(dt J) = R(dt eig J). numpy builds R(dt J) as a matrix polynomial.
    model = rnnode.ODERNN(1, 3, 2, cell="rnn")
    h, x, dt = torch.randn(6), torch.randn(1), 0.7
    J = jacobian(model, h.reshape(2, 3), x).detach().numpy()
    R = sum(c * np.linalg.matrix_power(dt * J, k) for k, c in enumerate(STEP_POLYNOMIALS[method]))
    expected = np.abs(np.linalg.eigvals(R)).max()
    ours = spectral_radius(eigenvalues(model, h.reshape(2, 3), x).detach(), method, dt)
    np.testing.assert_allclose(float(ours), expected, rtol=1e-12)


def test_rk4_polynomial_is_the_issue_formula():
    assert STEP_POLYNOMIALS["rk4"] == (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24)
    assert STEP_POLYNOMIALS["euler"] == (1.0, 1.0)


def test_euler_step_one_radius_is_that_of_the_discrete_cell():
    # Euler with dt = tau = 1 is torch.nn.RNNCell, whose Jacobian at its fixed point is the
    # linearized discrete RNN; its spectral radius must equal the map's Euler radius.
    model = rnnode.ODERNN(2, 5, 1, cell="rnn")
    x = torch.randn(2)
    points = find_fixed_points(model, x).points
    cell = model.to_torch()
    rnn_cell = torch.nn.RNNCell(2, 5)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(rnn_cell, name).copy_(getattr(cell, f"{name}_l0"))
    for point in points:
        J = torch.autograd.functional.jacobian(lambda h: rnn_cell(x, h), point[0])
        expected = np.abs(np.linalg.eigvals(J.numpy())).max()
        ours = spectral_radius(eigenvalues(model, point, x).detach(), "euler", 1.0)
        np.testing.assert_allclose(float(ours), expected, rtol=1e-12)


def test_fixed_points_of_a_bistable_unit_are_the_roots_of_h_equals_tanh_2h():
    model = rnnode.ODERNN(1, 1, 1, cell="rnn", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.fill_(2.0)
    points = find_fixed_points(model, torch.zeros(1), 32, radius=2.0).points
    root = scipy.optimize.brentq(lambda h: np.tanh(2 * h) - h, 0.5, 1.5, xtol=1e-14)
    found = points.reshape(-1).numpy()
    assert found.shape == (3,)
    np.testing.assert_allclose(np.sort(found), [-root, 0.0, root], atol=1e-12)


def test_fixed_points_of_a_bistable_stack_are_all_roots_that_scipy_finds():
    # Two bistable units (w_hh = 3) in series: up to 3 x 3 fixed points. scipy's hybrid root
    # finder from a 7 x 7 grid of starts is the independent census.
    model = rnnode.ODERNN(1, 1, 2, cell="rnn", bias=False)
    with torch.no_grad():
        for field in model.layers:
            field.weight_hh.fill_(3.0)
        model.field(1).weight_ih.fill_(0.3)
    x = torch.zeros(1)
    points = find_fixed_points(model, x, 64, radius=1.5).points.reshape(-1, 2).numpy()

    def field(h):
        return model.joint_field(torch.tensor(h).reshape(2, 1), x).detach().numpy().ravel()

    roots = []
    for start in itertools.product(np.linspace(-1.5, 1.5, 7), repeat=2):
        found = scipy.optimize.root(field, np.array(start), tol=1e-14)
        new = all(np.abs(found.x - r).max() > 1e-6 for r in roots)
        if found.success and np.abs(field(found.x)).max() < 1e-12 and new:
            roots.append(found.x)
    assert len(roots) == 9 and points.shape == (9, 2)
    for root in roots:
        assert np.abs(points - root).max(axis=1).min() < 1e-10


def test_stability_map_of_linear_stacks_matches_numpy_eigenvalues():
    # Linear fields have one fixed point and a constant Jacobian: max Re eig of
    # (p W_hh - I) / tau over the layers, for every input level.
    model = rnnode.ODERNN(1, 4, 2, cell="linear", tau=[1.0, 2.0])
    p = np.linspace(0.2, 2.5, 7)
    q = np.linspace(-1.0, 1.0, 3)
    smap = stability_map(model, p, q, method="rk4", dt=0.8)
    assert smap.converged.all()
    for i, scale in enumerate(p):
        eigs = np.concatenate(
            [
                np.linalg.eigvals((scale * f.weight_hh.detach().numpy() - np.eye(4)) / float(f.tau))
                for f in model.layers
            ]
        )
        z = 0.8 * eigs
        radius = np.abs(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24).max()
        np.testing.assert_allclose(smap.max_real[i], eigs.real.max(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(smap.spectral_radius[i], radius, rtol=1e-12)


def test_stability_map_with_a_custom_parametrization():
    # p scales layer 2's recurrent weights, q layer 1's; linear fields again give numpy's
    # eigenvalues of (W - I) / tau per layer as the reference.
    model = rnnode.ODERNN(2, 3, 2, cell="linear")

    def parametrize(params, p, q):
        overrides = {
            "layers.0.weight_hh": q * params["layers.0.weight_hh"],
            "layers.1.weight_hh": p * params["layers.1.weight_hh"],
        }
        return overrides, torch.zeros(2, dtype=p.dtype)

    p, q = np.array([0.5, 2.0, 4.0]), np.array([0.1, 3.0])
    smap = stability_map(model, p, q, parametrize)
    W0, W1 = (f.weight_hh.detach().numpy() for f in model.layers)
    for i, j in np.ndindex(3, 2):
        top = max(
            np.linalg.eigvals(q[j] * W0 - np.eye(3)).real.max(),
            np.linalg.eigvals(p[i] * W1 - np.eye(3)).real.max(),
        )
        np.testing.assert_allclose(smap.max_real[i, j], top, atol=1e-12)


def test_stability_map_fixed_points_are_roots_of_the_scaled_field():
    model = rnnode.ODERNN(2, 3, 2, cell="rnn")
    smap = stability_map(model, [0.5, 1.5, 3.0], [-0.5, 0.5])
    params = {k: v.detach() for k, v in model.named_parameters()}
    for i, p in enumerate(smap.p):
        for j, q in enumerate(smap.q):
            overrides, x = scale_recurrent_and_input(params, torch.as_tensor(p), torch.as_tensor(q))
            scaled = rnnode.ODERNN(2, 3, 2, cell="rnn")
            scaled.load_state_dict({**model.state_dict(), **overrides})
            h = torch.as_tensor(smap.fixed_points[i, j])
            assert smap.converged[i, j]
            assert float(scaled.joint_field(h, x).detach().abs().max()) < 1e-10
            expected = np.linalg.eigvals(jacobian(scaled, h, x).detach().numpy()).real.max()
            np.testing.assert_allclose(smap.max_real[i, j], expected, atol=1e-12)


def _distance_after(model, h_star, x, kick, steps, spacing, method, step=None):
    """|h(T) - h*| after starting at h* + kick, solved by the model with held constant input
    at the sample times 0, spacing, ..., steps * spacing."""
    t = torch.arange(steps + 1, dtype=torch.float64) * spacing
    xs = x.expand(steps, 1, -1).clone()
    hx = (h_star + kick).unsqueeze(1)  # (L, 1, H)
    sol = model.solve(xs, hx, t=t, method=method, step_size=step, coupling="continuous")
    return float((sol.states[:, 0, -1, 0] - h_star).detach().norm())


def test_trajectories_converge_where_the_map_says_stable_and_leave_where_unstable():
    torch.manual_seed(3)
    model = rnnode.ODERNN(1, 4, 2, cell="rnn")
    p = np.array([0.5, 4.0])
    smap = stability_map(model, p, [0.3])
    stable, unstable = smap.max_real[0, 0], smap.max_real[1, 0]
    assert stable < -0.1 and unstable > 0.1  # the grid straddles the boundary
    kick = 1e-4 * torch.randn(2, 4)
    for i, scale in enumerate(p):
        scaled = rnnode.ODERNN(1, 4, 2, cell="rnn")
        scaled.load_state_dict(model.state_dict())
        with torch.no_grad():
            for f in scaled.layers:
                f.weight_hh.mul_(scale)
        h_star = torch.as_tensor(smap.fixed_points[i, 0])
        x = torch.full((1,), 0.3)
        end = _distance_after(scaled, h_star, x, kick, 60, 1.0, "rk4", 0.1)
        start = float(kick.norm())
        if smap.max_real[i, 0] < 0:
            assert end < 1e-2 * start
        else:
            assert end > 1e2 * start


def test_euler_diverges_where_the_step_map_radius_exceeds_one():
    # A stable linear stack (max Re < 0) whose Euler step map is unstable at dt = 2.5 but
    # stable at dt = 0.5: the discrete solution blows up exactly in the first case. The steps
    # h <- h + dt F(h) are taken by hand (rnnode's solve refuses a step beyond Euler's limit).
    model = rnnode.ODERNN(1, 3, 1, cell="linear", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.copy_(-0.9 * torch.eye(3) + 0.05 * torch.randn(3, 3))
    x = torch.zeros(1)
    kick = 1e-3 * torch.randn(1, 3)
    for dt in (0.5, 2.5):
        smap = stability_map(model, [1.0], [0.0], method="euler", dt=dt)
        assert smap.max_real[0, 0] < 0
        h = kick.clone()
        with torch.no_grad():
            for _ in range(20):
                h = h + dt * model.joint_field(h, x)
        end = float(h.norm())
        if smap.spectral_radius[0, 0] < 1:
            assert dt == 0.5 and end < 1e-3 * float(kick.norm())
        else:
            assert dt == 2.5 and end > 1e3 * float(kick.norm())


def test_lyapunov_exponents_of_a_linear_euler_map_are_log_moduli_of_its_eigenvalues():
    # Euler with step 1 on dh/dt = (W - I) h is the map h -> W h; with W symmetric the QR method
    # converges like O(1 / duration) to log |eig W|.
    model = rnnode.ODERNN(1, 3, 1, cell="linear", bias=False)
    W = torch.tensor([[0.9, 0.2, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, -0.3]])
    with torch.no_grad():
        model.field(0).weight_hh.copy_(W)
    exps = lyapunov_exponents(
        model,
        torch.ones(1, 3),
        torch.zeros(1),
        duration=400,
        interval=5.0,
        method="euler",
        step_size=1.0,
    )
    expected = np.sort(np.log(np.abs(np.linalg.eigvalsh(W.numpy()))))[::-1]
    np.testing.assert_allclose(exps.numpy(), expected, atol=5e-3)


def test_lyapunov_exponents_sum_to_the_log_volume_growth_of_euler_steps():
    # Liouville for the Euler map: sum_i lambda_i * T = sum_n log |det(I + dt J(h_n))| exactly,
    # with the trajectory h_n solved independently by the model.
    torch.manual_seed(1)
    model = rnnode.ODERNN(1, 4, 2, cell="rnn")
    with torch.no_grad():
        for f in model.layers:
            f.weight_hh.mul_(3.0)
    h0, x, dt, duration = 0.5 * torch.randn(2, 4), torch.full((1,), 0.2), 0.25, 20.0
    exps = lyapunov_exponents(
        model, h0, x, duration=duration, interval=1.0, method="euler", step_size=dt
    )
    steps = int(duration / dt)
    t = torch.arange(steps + 1, dtype=torch.float64) * dt
    sol = model.solve(x.expand(steps, 1, 1).clone(), h0.unsqueeze(1), t=t, coupling="continuous")
    states = sol.states[:, 0, :-1, 0].transpose(0, 1)  # (steps, L, H), h_0 .. h_{n-1}
    J = jacobian(model, states, x).detach().numpy()
    logdet = np.linalg.slogdet(np.eye(8) + dt * J)[1].sum()
    np.testing.assert_allclose(float(exps.sum()) * duration, logdet, rtol=1e-10)
    assert torch.all(exps[:-1] >= exps[1:] - 0.2)  # QR order: roughly decreasing


def test_limit_cycle_has_no_stable_fixed_point_and_a_zero_top_lyapunov_exponent():
    # dh/dt = -h + tanh(W h) with W = 2 R(pi / 4): the origin is an unstable focus (Re lambda =
    # 2 cos(pi / 4) - 1 > 0) and the only fixed point, and tanh bounds the orbit, so it settles
    # on a limit cycle, whose top Lyapunov exponent is exactly 0 (the phase neither grows nor
    # shrinks) and whose second one is negative.
    model = rnnode.ODERNN(1, 2, 1, cell="rnn", bias=False)
    angle = np.pi / 4
    rotation = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    with torch.no_grad():
        model.field(0).weight_hh.copy_(2 * rotation)
    x = torch.zeros(1)
    points = find_fixed_points(model, x, 32, radius=2.0).points
    assert points.shape == (1, 1, 2) and float(points.abs().max()) < 1e-12
    smap = stability_map(model, [1.0], [0.0])
    np.testing.assert_allclose(smap.max_real[0, 0], 2 * np.cos(angle) - 1, atol=1e-12)
    exps = lyapunov_exponents(
        model, torch.full((1, 2), 0.1), x, duration=60, interval=2.0, transient=20, step_size=0.25
    )
    # The finite-time estimate of the zero exponent carries an O(1 / duration) bias from the
    # phase at which the average starts and stops.
    assert abs(float(exps[0])) < 1e-2
    assert float(exps[1]) < -0.1


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_benchmark_quick_run_compares_equal_results_and_writes_json(tmp_path):
    # benchmarks/bench_analysis.py is a script; its quick setting runs here so it cannot rot.
    spec = importlib.util.spec_from_file_location(
        "bench_analysis", Path(__file__).parents[1] / "benchmarks" / "bench_analysis.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        printed = bench.main(["--quick", "--out", str(tmp_path / "bench.json")])
    finally:
        torch.set_num_threads(threads)
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written == json.loads(json.dumps(printed))
    # the per-start loop finds the batched search's points: both polish to |F| < 1e-10, so
    # the same root agrees far inside find_fixed_points' de-duplication distance (1e-6)
    assert written["find_fixed_points"]["max_distance_loop_to_batched"] < 1e-8
    assert written["measure_gain"]["max_abs_difference"] < 1e-10
    assert written["stability_map"]["max_abs_difference_max_real"] < 1e-10
    assert written["stability_map"]["converged_fraction"] == 1.0
    assert written["frequency_response"]["max_rel_difference_numpy"] < 1e-12
    assert written["frequency_response"]["max_rel_difference_probes"] < 1e-6


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: jacobian(m, torch.zeros(3, 2), torch.zeros(1)), "h: expected a tensor"),
        (lambda m: jacobian(m, torch.zeros(2, 2), torch.zeros(3)), "x: expected shape"),
        (lambda m: spectral_radius(torch.zeros(2), "dopri5"), "method: expected one of"),
        (lambda m: spectral_radius(torch.zeros(2), "euler", -1.0), "dt: expected a positive"),
        (lambda m: stability_map(m, [[1.0]], [0.0]), "p_values: expected a 1-D"),
        (lambda m: stability_map(m, [1.0], [0.0], h0=torch.zeros(3)), "h0: expected shape"),
        (lambda m: find_fixed_points(m, torch.zeros(1), 0), "starts: expected a positive"),
        (lambda m: find_fixed_points(m, torch.zeros(2)), "x: expected shape"),
        (
            lambda m: lyapunov_exponents(m, torch.zeros(2, 2), torch.zeros(1), num_exponents=5),
            "num_exponents: expected an integer in",
        ),
        (
            lambda m: lyapunov_exponents(m, torch.zeros(2, 2), torch.zeros(1), method="dopri5"),
            "method: expected one of",
        ),
        (
            lambda m: jacobian(
                rnnode.ODERNN(1, 2, bidirectional=True), torch.zeros(1, 2), torch.zeros(1)
            ),
            "model: expected a unidirectional stack",
        ),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    model = rnnode.ODERNN(1, 2, 2, cell="rnn")
    with pytest.raises(ValueError, match=match):
        call(model)
