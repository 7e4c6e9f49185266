"""``engine="torchdiffeq"`` on the stacks: the same solve through torchdiffeq's public odeint,
the same steps and the same states as rnnode's own loops (tests/test_solve_contract.py checks
the solver itself on every method)."""

import pytest
import torch

import rnnode

_X = torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize(
    "settings",
    [
        {},  # the bridge: Euler, one step per interval, held input
        {"method": "rk4", "step_size": 0.25, "coupling": "continuous", "interpolation": "cubic"},
        {"method": "midpoint", "step_size": 0.5, "interpolation": "linear"},
        {"method": "dopri5"},
        {"method": "dopri5", "coupling": "continuous", "interpolation": "linear"},
        {"method": "bosh3", "rtol": 1e-4, "interpolation": "cubic"},
        {"method": "dopri8", "rtol": 1e-8, "interpolation": "causal"},
    ],
    ids=lambda s: "-".join(str(v) for v in s.values()) or "bridge",
)
@pytest.mark.parametrize("per_sample", [False, True])
def test_the_engines_take_the_same_steps_to_the_same_states(settings, per_sample):
    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 4, num_layers=2, cell="gru").double()
    gaps = 0.5 + torch.rand(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.cat([torch.zeros(1, 3, dtype=torch.float64), gaps.cumsum(0)]) if per_sample else None
    ours = model.solve(_X, t=t, **settings)
    theirs = model.solve(_X, t=t, engine="torchdiffeq", **settings)
    assert ours.stats == theirs.stats
    assert ours.nfe == theirs.nfe
    torch.testing.assert_close(ours.output, theirs.output, rtol=0, atol=1e-10)


def test_the_engine_is_a_setting_checked_like_the_others():
    with pytest.raises(ValueError, match="engine: expected one of \\('rnnode', 'torchdiffeq'\\)"):
        rnnode.SolveSettings(engine="scipy")
    with pytest.raises(TypeError, match="engine: expected one of"):
        rnnode.ODERNN(2, 3)(_X.float(), engine=None)
    model = rnnode.ODERNN(2, 3, engine="torchdiffeq").double()
    assert model.defaults.engine == "torchdiffeq"
    out, _ = model(_X)
    torch.testing.assert_close(out, model(_X, engine="rnnode")[0], rtol=0, atol=1e-12)


def test_a_step_landing_exactly_on_a_jump_takes_the_jump():
    """dy/dt = u(t), u held at 0, 1, 2 on the unit intervals: y = 0, 0, 1, 3 at t = 0..3. A first
    step of exactly 1 ends on the jump at t = 1; rnnode re-evaluates the field after it and is
    exact in three steps. (torchdiffeq 0.2.4-0.2.5 takes a jump only when a step would pass
    it, so ``engine="torchdiffeq"`` carries the left value over: measured 1.0000298 and
    3.0000138, with 22 accepted and 61 rejected steps; see rnnode/_torchdiffeq.py.)"""
    times = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    path = rnnode.HoldPath(times, torch.tensor([[[0.0]], [[1.0]], [[2.0]]], dtype=torch.float64))

    class Held(torch.nn.Module):
        is_continuous = False

        def forward(self, t, y):
            return path.evaluate(t).expand_as(y)

    stats = rnnode.SolverStats()
    y = rnnode.integrate(Held(), torch.zeros(1, 1, dtype=torch.float64), times,
                         method="dopri5", options={"first_step": 1.0}, stats=stats)  # fmt: skip
    torch.testing.assert_close(y.flatten(), torch.tensor([0.0, 0.0, 1.0, 3.0]), rtol=0, atol=1e-15)
    assert (stats.accepted_steps, stats.rejected_steps) == (3, 0)
