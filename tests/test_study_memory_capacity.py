"""The memory_capacity study: its quick run through the real runner, the evidence every claim
carries, and its helpers against independent computations. No test asserts which way a finding comes
out.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnode.studies import (
    memory_capacity,
)

STUDIES = {"memory_capacity": memory_capacity}


@pytest.fixture(scope="module")
def runs(study_run):
    """The study's quick run (made once per session): {name: (folder, metrics)}."""
    return {name: study_run(name) for name in STUDIES}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDIES))
def test_quick_run_writes_files_and_claims_with_evidence(runs, name):
    folder, metrics = runs[name]
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert (folder / "report.html").exists()
    assert list(folder.glob("*.png")) and list(folder.glob("*.pdf"))
    kinds = {c["kind"] for c in metrics["claims"].values()}
    assert "finding" in kinds
    for claim in metrics["claims"].values():
        assert claim["statement"]
        if claim["kind"] == "finding":
            lo, hi = (float(v) for v in claim["interval"])  # JSON keeps +-inf as strings
            assert lo <= claim["value"] <= hi or claim["seeds"] < 3
            assert claim["control"]["label"] and claim["seeds"] >= 2
            assert claim["verdict"] in ("supported", "not supported", "inconclusive")


@pytest.mark.slow
def test_verifications_hold_in_the_quick_runs(runs):
    # verifications are theorems and formula checks: they must hold whatever the data
    for _, metrics in runs.values():
        for name, claim in metrics["claims"].items():
            if claim["kind"] == "verification":
                assert claim["holds"], name


# -- memory_capacity --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", memory_capacity.KINDS)
def test_memory_simulation_is_the_models_solve(kind):
    model = memory_capacity.stack(kind, 6, 3, 0.9, seed=0)
    u = np.random.default_rng(0).standard_normal(12)
    states = memory_capacity.simulate(model, u)
    with torch.no_grad():
        solution = model.solve(torch.as_tensor(u)[:, None, None])
    # states: (L, D, T + 1, batch, H) -> (T, L * H), layer-major as the simulation's
    expected = torch.cat([solution.states[layer, 0, 1:, 0] for layer in range(3)], dim=-1)
    np.testing.assert_allclose(states, expected.numpy(), atol=1e-13)


def test_joint_linear_map_reproduces_the_stack():
    model = memory_capacity.stack("linear", 6, 3, 0.8, seed=1)
    A, b, _ = memory_capacity.joint_linear_map(model)
    u = np.random.default_rng(1).standard_normal(10)
    states = memory_capacity.simulate(model, u)
    h = np.zeros(6)
    for t in range(10):
        h = A @ h + b * u[t]
        np.testing.assert_allclose(states[t], h, atol=1e-13)
    assert np.abs(np.linalg.eigvals(A)).max() == pytest.approx(0.8, abs=1e-12)
