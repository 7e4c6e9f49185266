"""Solver settings that override cleanly: each call keyword overrides one default on its own.

Reference: a model built with the resolved settings as its defaults (same weights), called with no
keywords; and the NFE a fixed-step solve must take.
"""

import dataclasses
import itertools

import pytest
import torch

import rnnode
from rnnode._settings import NOT_GIVEN

DEFAULTS = {
    "euler": {"method": "euler"},
    "rk4 step 0.25": {"method": "rk4", "step_size": 0.25},
    "dopri5": {"method": "dopri5", "rtol": 1e-5},
}
METHODS = [NOT_GIVEN, "euler", "rk4", "dopri5"]
STEP_SIZES = [NOT_GIVEN, None, 0.5]


def _resolved(default: dict, method, step_size) -> dict | None:
    """The settings the rule of SolveSettings.override gives (None: the call is refused)."""
    out = dataclasses.asdict(rnnode.SolveSettings(**default))
    new_method = out["method"] if method is NOT_GIVEN else method
    fixed = new_method in rnnode.FIXED_METHODS
    if step_size is not NOT_GIVEN:
        if step_size is not None and not fixed:
            return None
        out["step_size"] = step_size
    elif method is not NOT_GIVEN and not fixed:
        out["step_size"] = None
    out["method"] = new_method
    return out


def _twin(model, **settings):
    twin = rnnode.ODERNN(2, 3, num_layers=2, cell="gru", **settings)
    twin.load_state_dict(model.state_dict())
    return twin


@pytest.mark.parametrize(
    ("default", "method", "step_size"),
    list(itertools.product(DEFAULTS, METHODS, STEP_SIZES)),
    ids=lambda v: str(v),
)
def test_every_combination_of_default_method_and_step_size_overrides(default, method, step_size):
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="gru", **DEFAULTS[default])
    x = torch.randn(3, 2, 2)
    call = {k: v for k, v in (("method", method), ("step_size", step_size)) if v is not NOT_GIVEN}
    expected = _resolved(DEFAULTS[default], method, step_size)
    if expected is None:
        with pytest.raises(ValueError, match="step_size: applies to the fixed-step methods"):
            model(x, **call)
        return
    solution = model.solve(x, **call)
    reference = _twin(model, **expected).solve(x)
    torch.testing.assert_close(solution.output, reference.output, rtol=0, atol=0)
    assert solution.nfe == reference.nfe
    if expected["method"] in rnnode.FIXED_METHODS:
        steps = 1 if expected["step_size"] is None else round(1 / expected["step_size"])
        stages = {"euler": 1, "rk4": 4}[expected["method"]]
        assert solution.nfe == 2 * 3 * steps * stages  # 2 layers, T = 3


def test_the_issues_example_switches_from_fixed_to_adaptive():
    model = rnnode.ODERNN(2, 3, method="rk4", step_size=0.25)
    x = torch.randn(4, 1, 2)
    out, _ = model(x, method="dopri5")
    reference, _ = _twin_1(model, method="dopri5")(x)
    torch.testing.assert_close(out, reference, rtol=0, atol=0)


def _twin_1(model, **settings):
    twin = rnnode.ODERNN(2, 3, **settings)
    twin.load_state_dict(model.state_dict())
    return twin


def test_one_step_per_interval_can_be_asked_for_explicitly():
    model = rnnode.ODERNN(2, 3, method="rk4", step_size=0.25)
    x = torch.randn(4, 1, 2)
    assert model.solve(x).nfe == 4 * 4 * 4
    assert model.solve(x, step_size=None).nfe == 4 * 4  # one rk4 step per interval


@pytest.mark.parametrize(
    "override",
    [
        {"rtol": 1e-3},
        {"atol": 1e-4},
        {"interpolation": "cubic"},
        {"coupling": "continuous"},
        {"rtol": 1e-3, "interpolation": "linear"},
        {"atol": 1e-5, "coupling": "continuous", "interpolation": "cubic"},
    ],
    ids=str,
)
@pytest.mark.parametrize("default", ["rk4 step 0.25", "dopri5"])
def test_the_other_settings_override_independently(default, override):
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="gru", **DEFAULTS[default])
    x = torch.randn(3, 2, 2)
    expected = {**DEFAULTS[default], **override}
    got = model.solve(x, **override)
    reference = _twin(model, **expected).solve(x)
    torch.testing.assert_close(got.output, reference.output, rtol=0, atol=0)
    assert got.nfe == reference.nfe
    assert model.defaults == rnnode.SolveSettings(**DEFAULTS[default])  # defaults untouched


def test_settings_are_frozen_and_checked():
    settings = rnnode.SolveSettings(method="rk4", step_size=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.method = "euler"
    assert settings.override() is settings
    assert settings.override(method="euler").step_size == 0.5  # fixed -> fixed keeps it
    assert settings.override(method="dopri5").step_size is None  # fixed -> adaptive drops it
    assert settings.override(step_size=None).step_size is None
    with pytest.raises(TypeError, match="override: unknown settings"):
        settings.override(mehtod="euler")
    with pytest.raises(ValueError, match="method: expected one of"):
        settings.override(method="rk45")
    with pytest.raises(TypeError, match="rtol: expected a positive finite number"):
        rnnode.SolveSettings(rtol="1e-3")
    assert repr(NOT_GIVEN) == "NOT_GIVEN"
