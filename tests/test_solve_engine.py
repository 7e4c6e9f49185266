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
