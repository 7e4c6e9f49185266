"""find_fixed_points against a hand-made 2-D system with known fixed points and saddles, and
against independent Jacobians (numpy eigenvalues of autograd Jacobians) on GRU and LSTM stacks.

The system: two uncoupled bistable units, dh_i/dt = -h_i + tanh(2 h_i) (a 1-layer tanh RNN with
W_hh = 2 I and no bias). Its fixed points are the 3 x 3 products of the roots {-r, 0, r} of
h = tanh(2h) (r from scipy's brentq): 4 stable corners (+-r, +-r), 4 saddles with one unstable
direction (0, +-r), (+-r, 0), and the origin, unstable in both directions. The discrete map
h <- tanh(2h) has the same fixed points with multipliers 2 sech^2(2h): 2 at 0, < 1 at +-r.
"""

import itertools

import numpy as np
import pytest
import scipy.optimize
import torch

import rnnode
from rnnode.analysis import find_fixed_points, trajectory_starts


def _bistable_pair():
    model = rnnode.ODERNN(1, 2, 1, cell="rnn", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.copy_(2 * torch.eye(2))
    return model


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_known_fixed_points_saddles_and_their_classes(kind):
    model = _bistable_pair()
    grid = torch.tensor(list(itertools.product([-1.2, -0.4, 0.0, 0.4, 1.2], repeat=2)))
    found = find_fixed_points(model, torch.zeros(1), grid.reshape(-1, 1, 2), kind=kind, tol=1e-14)
    r = scipy.optimize.brentq(lambda h: np.tanh(2 * h) - h, 0.5, 1.5, xtol=1e-15)
    expected = np.array(list(itertools.product([-r, 0.0, r], repeat=2)))
    points = found.points.reshape(-1, 2).numpy()
    assert points.shape == (9, 2) and bool(found.is_fixed.all())
    for e in expected:
        assert np.abs(points - e).max(axis=1).min() < 1e-12
    zeros = (np.abs(points) < 1e-6).sum(axis=1)  # coordinates at the unstable root 0
    np.testing.assert_array_equal(found.num_unstable.numpy(), zeros)
    names = {0: "stable", 1: "saddle", 2: "unstable"}
    assert found.classification == [names[z] for z in zeros]
    assert sorted(found.classification) == ["saddle"] * 4 + ["stable"] * 4 + ["unstable"]
    # Eigenvalues: -1 + 2 sech^2(2h) per unit (continuous) or 2 sech^2(2h) (discrete).
    slope = 2 / np.cosh(2 * points) ** 2
    expected_eig = slope - 1 if kind == "continuous" else slope
    np.testing.assert_allclose(
        np.sort(found.eigenvalues.real.numpy(), axis=1), np.sort(expected_eig, axis=1), atol=1e-12
    )
    assert float(found.q.max()) < 1e-20


def test_slow_points_are_kept_by_their_q_tolerance():
    # dh/dt = -h + tanh(h) ~ -h^3 / 3 near 0: a slow region around the (degenerate) fixed
    # point 0. With one Newton step (h -> 2h / 3) and an unreachable tol, a start at 0.05 ends
    # at q ~ 7e-11: kept as a slow point below q_tol = 1e-6, dropped below q_tol = 1e-30.
    model = rnnode.ODERNN(1, 1, 1, cell="rnn", bias=False)
    with torch.no_grad():
        model.field(0).weight_hh.fill_(1.0)
        model.field(0).weight_ih.fill_(1.0)
    x = torch.tensor([0.0])
    start = torch.tensor([[[0.05]]])  # F = -h + tanh(h) ~ -h^3 / 3: slow, not fixed
    slow = find_fixed_points(model, x, start, opt_steps=0, max_iter=1, tol=1e-300, q_tol=1e-6)
    assert slow.points.shape[0] == 1 and not bool(slow.is_fixed[0])
    assert float(slow.q[0]) < 1e-6
    strict = find_fixed_points(model, x, start, opt_steps=0, max_iter=1, tol=1e-300, q_tol=1e-30)
    assert strict.points.shape[0] == 0


@pytest.mark.parametrize(("cell", "kind"), [("gru", "continuous"), ("lstm", "discrete")])
def test_gated_stacks_fixed_points_are_roots_with_numpy_eigenvalues(cell, kind):
    torch.manual_seed(3)
    model = rnnode.ODERNN(2, 3, 2, cell=cell)
    S = model.layers[0].state_size
    x = torch.tensor([0.3, -0.2])
    with torch.no_grad():
        sol = model.solve(torch.randn(20, 2, 2), coupling="sampled")
    starts = sol.states[:, 0, ::5].permute(1, 2, 0, 3).reshape(-1, 2, S)  # on trajectories
    found = find_fixed_points(model, x, starts, kind=kind, noise=0.05)
    assert found.points.shape[0] >= 1 and bool(found.is_fixed.all())
    for point, eig in zip(found.points, found.eigenvalues, strict=True):
        if kind == "continuous":
            F = model.joint_field(point, x)
            J = torch.autograd.functional.jacobian(
                lambda v: model.joint_field(v.reshape(2, S), x).reshape(-1), point.reshape(-1)
            )
        else:
            hx = (
                point[:, :3].unsqueeze(1)
                if cell == "gru"
                else (point[:, :3].unsqueeze(1), point[:, 3:].unsqueeze(1))
            )
            new = model.solve(x[None, None], hx).states[:, 0, 1, 0]
            F = new - point
            J = torch.autograd.functional.jacobian(
                lambda v: (
                    model.solve(x[None, None], _parts(v.reshape(2, S), cell))
                    .states[:, 0, 1, 0]
                    .reshape(-1)
                ),
                point.reshape(-1),
            )
        assert float(F.detach().abs().max()) < 1e-10
        expected = np.sort_complex(np.linalg.eigvals(J.numpy()))
        np.testing.assert_allclose(np.sort_complex(eig.numpy()), expected, atol=1e-9)


def _parts(state, cell):
    if cell == "gru":
        return state.unsqueeze(1)
    return state[:, :3].unsqueeze(1), state[:, 3:].unsqueeze(1)


def test_bad_arguments_raise_errors_naming_them():
    model = _bistable_pair()
    with pytest.raises(ValueError, match="starts: expected shape"):
        find_fixed_points(model, torch.zeros(1), torch.zeros(4, 2))
    with pytest.raises(TypeError, match="starts: expected a torch.Tensor"):
        find_fixed_points(model, torch.zeros(1), [[0.0, 0.0]])
    with pytest.raises(ValueError, match="kind: expected one of"):
        find_fixed_points(model, torch.zeros(1), torch.zeros(1, 1, 2), kind="map")
    with pytest.raises(ValueError, match="q_tol: expected a positive"):
        find_fixed_points(model, torch.zeros(1), torch.zeros(1, 1, 2), q_tol=0.0)


# -- degenerate fixed points: one point per root, non-hyperbolic when an eigenvalue is neutral --


class _Pitchfork(rnnode.VectorField):
    """dh/dt = a h - h^3 + u (u = W_ih x + b_ih; zero at x = 0 without bias): a pitchfork.

    a < 0: one stable root 0 (lambda = a); a > 0: 0 unstable (lambda = a) between the stable
    roots +-sqrt(a) (lambda = a - 3 a = -2 a); a = 0: one root, 0, with lambda = 0.
    """

    def __init__(self, a: float):
        super().__init__(1, 1, bias=False)
        self.a = a

    def forward(self, t, state, u):
        return self.a * state - state**3 + u


def _pitchfork(a: float) -> rnnode.ODERNN:
    model = rnnode.ODERNN(1, 1, 1, bias=False).double()
    model.layers[0] = _Pitchfork(a).double()
    return model


def _tanh_minus_identity() -> rnnode.ODERNN:
    # dh/dt = tanh(h) - h: a 1-unit tanh RNN with W_hh = 1 and no bias, at x = 0.
    model = rnnode.ODERNN(1, 1, 1, cell="rnn", bias=False).double()
    with torch.no_grad():
        model.field(0).weight_hh.fill_(1.0)
    return model


STARTS = torch.linspace(-1.0, 1.0, 20, dtype=torch.float64).reshape(-1, 1, 1)


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_tanh_minus_identity_has_one_non_hyperbolic_fixed_point(kind):
    # F = tanh(h) - h ~ -h^3 / 3: every start ends where |F| < tol = 1e-10, anywhere in
    # |h| < (3e-10)^(1/3) = 6.7e-4, with eigenvalue -tanh(h)^2 in (-4.5e-7, 0]: one fixed
    # point, neutral within sqrt(tol) = 1e-5, so neither "stable" nor hyperbolic.
    found = find_fixed_points(_tanh_minus_identity(), torch.zeros(1), STARTS, kind=kind)
    assert found.points.shape == (1, 1, 1) and bool(found.is_fixed[0])
    h = float(found.points[0, 0, 0])
    assert abs(h) < (3e-10) ** (1 / 3)
    assert found.classification == ["non-hyperbolic"]
    assert found.num_neutral.tolist() == [1] and found.num_unstable.tolist() == [0]
    slope = -(np.tanh(h) ** 2)  # dF/dh; the discrete map's multiplier is 1 + slope
    expected = slope if kind == "continuous" else 1 + slope
    np.testing.assert_allclose(found.eigenvalues.real.numpy(), [[expected]], rtol=0, atol=1e-15)


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
@pytest.mark.parametrize("a", [-0.04, 0.0, 0.04])
def test_pitchfork_roots_and_classes_on_both_sides_and_at_the_bifurcation(a, kind):
    found = find_fixed_points(_pitchfork(a), torch.zeros(1), STARTS, kind=kind)
    assert bool(found.is_fixed.all())
    points = found.points.reshape(-1).numpy()
    order = np.argsort(points)
    points = points[order]
    classes = [found.classification[i] for i in order]
    if a < 0:
        # One hyperbolic root: |F| < 1e-10 and |F'| >= 0.04 put it within 2.5e-9 of 0.
        np.testing.assert_allclose(points, [0.0], atol=2.5e-9)
        assert classes == ["stable"]
    elif a == 0:
        # F = -h^3: |F| < 1e-10 on |h| < 1e-10^(1/3) = 4.6e-4; one point, lambda = -3 h^2.
        assert points.shape == (1,) and abs(points[0]) < 1e-10 ** (1 / 3)
        assert classes == ["non-hyperbolic"]
    else:
        # 0 (lambda = a, unstable) and +-sqrt(a) = +-0.2 (lambda = -2 a, stable); |F'| >= 0.04.
        np.testing.assert_allclose(points, [-0.2, 0.0, 0.2], atol=2.5e-9)
        assert classes == ["stable", "unstable", "stable"]
    slope = a - 3 * points**2
    expected = slope if kind == "continuous" else 1 + slope
    np.testing.assert_allclose(found.eigenvalues.real.numpy()[order, 0], expected, atol=1e-15)
    assert found.num_neutral.tolist() == [int(a == 0)] * len(points)


def test_distinct_roots_closer_than_the_tolerance_ball_stay_apart_when_the_field_separates_them():
    # a = 1e-4: roots 0 and +-0.01 with |lambda| = 1e-4 and 2e-4; |F| between them reaches
    # 2 a^(3/2) / (3 sqrt 3) = 3.8e-7 >> tol, so the segment check keeps all three apart.
    starts = torch.linspace(-1.0, 1.0, 21, dtype=torch.float64).reshape(-1, 1, 1)  # 0 too
    found = find_fixed_points(_pitchfork(1e-4), torch.zeros(1), starts)
    np.testing.assert_allclose(
        np.sort(found.points.reshape(-1).numpy()), [-0.01, 0, 0.01], atol=1e-8
    )
    assert sorted(found.classification) == ["stable", "stable", "unstable"]


def test_boundary_tolerance_decides_what_is_neutral():
    # tanh(h) - h: the merged point's eigenvalue -tanh(h)^2 is negative but within 4.5e-7 of 0.
    model = _tanh_minus_identity()
    found = find_fixed_points(model, torch.zeros(1), STARTS, boundary_tol=0.0)
    assert float(found.eigenvalues.real[0, 0]) < 0 and found.classification == ["stable"]
    # a = 2e-5 > sqrt(tol): the roots 0 (lambda = a) and +-sqrt(a) (lambda = -2 a) are hyperbolic
    # at the default boundary_tol = 1e-5, and neutral at boundary_tol = 1e-4.
    starts = torch.linspace(-1.0, 1.0, 21, dtype=torch.float64).reshape(-1, 1, 1)
    default = find_fixed_points(_pitchfork(2e-5), torch.zeros(1), starts)
    assert sorted(default.classification) == ["stable", "stable", "unstable"]
    wide = find_fixed_points(_pitchfork(2e-5), torch.zeros(1), starts, boundary_tol=1e-4)
    assert wide.classification == ["non-hyperbolic"] * 3
    assert wide.num_neutral.tolist() == [1, 1, 1] and wide.num_unstable.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="boundary_tol: expected a non-negative"):
        find_fixed_points(model, torch.zeros(1), STARTS, boundary_tol=-1.0)


# -- starts on the trajectories -------------------------------------------------------------------


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_find_fixed_points_docstring_example_runs():
    import doctest

    import rnnode.analysis.fixed_points as module

    finder = doctest.DocTestFinder()
    (test,) = [t for t in finder.find(module) if t.name.endswith(".find_fixed_points")]
    assert len(test.examples) >= 8  # the example is there and uses trajectory_starts
    assert any("trajectory_starts(solution" in e.source for e in test.examples)
    result = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS).run(test)
    assert result.failed == 0 and result.attempted == len(test.examples)


def test_trajectory_starts_are_the_states_at_the_drawn_time_and_sequence():
    torch.manual_seed(1)
    model = rnnode.ODERNN(2, 3, 2, cell="lstm").double()
    with torch.no_grad():
        solution = model.solve(torch.randn(6, 5, 2, dtype=torch.float64))
    states = solution.states  # (L, 1, T + 1, B, S) = (2, 1, 7, 5, 6)
    starts, t, b = trajectory_starts(solution, 35, seed=3, return_indices=True)
    assert starts.shape == (35, 2, 6) and not starts.requires_grad
    # all 35 = 7 x 5 (t, b) pairs, each once: sampling without replacement covers the pool
    assert sorted(zip(t.tolist(), b.tolist(), strict=True)) == [
        (i, j) for i in range(7) for j in range(5)
    ]
    for k in range(35):
        assert torch.equal(starts[k], states[:, 0, t[k], b[k]])
        # the same state by the index rule of the docstring: row t * batch + b of the pool
        pool = states[:, 0].permute(1, 2, 0, 3).reshape(-1, 2, 6)
        assert torch.equal(starts[k], pool[t[k] * 5 + b[k]])
    # the same draw from a tensor, from a generator with the same seed, and jittered
    again = trajectory_starts(states, 35, seed=torch.Generator().manual_seed(3))
    assert torch.equal(again, starts)
    jittered = trajectory_starts(states, 35, seed=3, noise=0.1)
    delta = (jittered - starts).reshape(-1)
    assert 0.08 < float(delta.std()) < 0.12 and float(delta.abs().min()) > 0


def test_trajectory_starts_of_an_unbatched_solution_and_bad_arguments():
    model = rnnode.ODERNN(1, 2, 1).double()
    with torch.no_grad():
        solution = model.solve(torch.randn(4, 1, dtype=torch.float64))  # unbatched
    starts, t, b = trajectory_starts(solution, 5, return_indices=True)
    assert starts.shape == (5, 1, 2) and b.tolist() == [0] * 5
    assert sorted(t.tolist()) == [0, 1, 2, 3, 4]
    for k in range(5):
        assert torch.equal(starts[k], solution.states[:, 0, t[k]])
    with pytest.raises(ValueError, match="num_starts: expected at most"):
        trajectory_starts(solution, 6)
    with pytest.raises(TypeError, match="num_starts: expected a positive integer"):
        trajectory_starts(solution, 2.0)
    with pytest.raises(ValueError, match="noise: expected a non-negative"):
        trajectory_starts(solution, 2, noise=-0.1)
    with pytest.raises(TypeError, match="states: expected an rnnode.Solution or a tensor"):
        trajectory_starts(solution.states.tolist(), 2)
    with pytest.raises(ValueError, match="directions = 1"):
        trajectory_starts(torch.zeros(1, 2, 4, 3, 2), 2)


def test_an_exact_line_of_fixed_points_is_reported_by_one_point():
    # Linear cell, W_hh = diag(1, 0.5): F(h) = (W - I) h = (0, -h_2 / 2) vanishes on the whole
    # line h_2 = 0 (eigenvalues 0 and -0.5). Newton cannot single out a point of it, so the
    # documented rule reports one (non-hyperbolic) point, on the line.
    model = rnnode.ODERNN(1, 2, 1, cell="linear", bias=False).double()
    with torch.no_grad():
        model.field(0).weight_hh.copy_(torch.diag(torch.tensor([1.0, 0.5])))
    found = find_fixed_points(model, torch.zeros(1), 16, radius=1.0)
    assert found.points.shape == (1, 1, 2) and bool(found.is_fixed[0])
    assert abs(float(found.points[0, 0, 1])) < 1e-10
    assert found.classification == ["non-hyperbolic"]
    np.testing.assert_allclose(
        np.sort(found.eigenvalues.real.numpy()[0]), [-0.5, 0.0], rtol=0, atol=1e-15
    )
