"""SolverStats: forward and backward evaluations, accepted and rejected steps per interval."""

import pytest
import torch

import rnnode
from rnnode import SolverStats, integrate
from rnnode._paths import make_path


class _Driven(torch.nn.Module):
    def __init__(self, path):
        super().__init__()
        self.rate = torch.nn.Parameter(torch.tensor(-0.7, dtype=torch.float64))
        self.path = path

    def forward(self, t, y):
        return self.rate * y + self.path.evaluate(t)


def _field():
    times = torch.tensor([0.0, 1.0, 1.5, 3.5], dtype=torch.float64)
    samples = torch.randn(3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return _Driven(make_path("hold", times, samples)), times


def test_fixed_step_stats_count_the_grid():
    field, times = _field()
    stats = SolverStats()
    traj = integrate(
        field, torch.zeros(2, 2, dtype=torch.float64), times, method="midpoint",
        step_size=0.5, rtol=1e-6, atol=1e-8, discontinuous=True, stats=stats,
    )  # fmt: skip
    assert stats.steps_per_interval == [2, 1, 4]
    assert stats.accepted_steps == 7 and stats.rejected_steps == 0
    assert stats.nfe == 2 * 7
    traj.sum().backward()
    assert stats.backward_nfe == 0  # backprop evaluates nothing again


def test_adaptive_stats_count_accepted_and_rejected_steps_and_the_backward_nfe():
    field, times = _field()
    stats = SolverStats()
    kw = dict(method="dopri5", step_size=None, rtol=1e-8, atol=1e-8, discontinuous=True)
    traj = integrate(
        field, torch.ones(2, 2, dtype=torch.float64), times, adjoint=True, stats=stats, **kw
    )
    nfe = stats.nfe
    assert nfe > 0
    assert len(stats.steps_per_interval) == 3 and min(stats.steps_per_interval) >= 1
    assert stats.accepted_steps == sum(stats.steps_per_interval)
    # dopri5 (first-same-as-last): 6 evaluations per attempted step, plus start-up evaluations.
    attempts = stats.accepted_steps + stats.rejected_steps
    assert 6 * attempts <= nfe <= 6 * attempts + 3 * 3 + 3
    traj.sum().backward()
    assert stats.backward_nfe > 0
    # Without the adjoint: rnnode's own loop, one solve through all intervals.
    plain = SolverStats()
    integrate(field, torch.ones(2, 2, dtype=torch.float64), times, stats=plain, **kw)
    attempts = plain.accepted_steps + plain.rejected_steps
    assert 6 * attempts <= plain.nfe <= 6 * attempts + 2 * 3 + 2


def test_stats_add_up_over_solves():
    field, times = _field()
    stats = SolverStats()
    for _ in range(2):
        integrate(
            field, torch.zeros(2, 2, dtype=torch.float64), times, method="euler",
            step_size=None, rtol=1e-6, atol=1e-8, discontinuous=True, stats=stats,
        )  # fmt: skip
    assert stats.steps_per_interval == [2, 2, 2] and stats.nfe == 6


# -- through the stack: Solution.stats ----------------------------------------------------------


@pytest.mark.parametrize(
    ("coupling", "keys"), [("sampled", {(0, 0), (1, 0)}), ("continuous", {(0, 0)})]
)
def test_solution_stats_per_solved_ode_add_up_to_the_nfe(coupling, keys):

    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 3, 2).double()
    x = torch.randn(6, 2, 2, dtype=torch.float64)
    solution = model.solve(x, method="rk4", step_size=0.5, coupling=coupling)
    assert set(solution.stats) == keys
    assert sum(s.nfe for s in solution.stats.values()) == solution.nfe
    for s in solution.stats.values():
        assert s.steps_per_interval == [2] * 6 and s.rejected_steps == 0


def test_adjoint_through_the_stack_reads_leaf_copies_and_matches_backprop():
    # Two layers, sampled coupling: layer 2's per-interval adjoints read layer 1's outputs through
    # leaf copies (_StackODE.with_path_tensors), and the gradients still equal backprop's to the
    # solver's tolerance (rtol = atol = 1e-9: the continuous adjoint's error scales with it).

    torch.manual_seed(1)
    model = rnnode.ODERNN(2, 3, 2, cell="gru").double()
    x = torch.randn(8, 2, 2, dtype=torch.float64, requires_grad=True)
    grads = []
    for adjoint in (False, True):
        model.zero_grad()
        x.grad = None
        solution = model.solve(x, method="dopri5", rtol=1e-9, atol=1e-9, adjoint=adjoint)
        solution.output.pow(2).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()] + [x.grad.clone()])
        if adjoint:
            assert all(s.backward_nfe > 0 for s in solution.stats.values())
    for plain, adj in zip(*grads, strict=True):
        torch.testing.assert_close(adj, plain, rtol=1e-6, atol=1e-8)
