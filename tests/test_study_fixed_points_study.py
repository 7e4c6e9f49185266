"""The fixed_points_study study: its quick run through the real runner, the evidence every claim
carries, and its helpers against independent computations. No test asserts which way a finding comes
out.
"""

from __future__ import annotations

import json

import pytest
import torch

import rnnode
from rnnode.studies import (
    fixed_points_study,
)

STUDIES = {"fixed_points_study": fixed_points_study}


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


# -- fixed_points_study -----------------------------------------------------------------------


def test_flip_flop_targets_hold_the_last_pulse():
    x, y = fixed_points_study.flip_flop(5, 30, torch.Generator().manual_seed(0))
    for b in range(5):
        for c in range(3):
            last = 0.0
            for t in range(30):
                last = float(x[t, b, c]) if x[t, b, c] != 0 else last
                assert float(y[t, b, c]) == last != 0.0


def test_step_displacement_is_one_gru_step_from_each_point():
    # the residual behind points_are_roots, against torch.nn.GRU stepping from the same states
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 5, 2, dtype=torch.float64)
    model = rnnode.from_torch(gru)
    points = torch.randn(4, 2, 5, dtype=torch.float64)
    x = torch.zeros(1, 4, 3, dtype=torch.float64)
    _, h1 = gru(x, points.transpose(0, 1).contiguous())
    expected = h1.transpose(0, 1) - points
    got = fixed_points_study._step_displacement(model, points)
    assert torch.allclose(got, expected, rtol=0, atol=1e-14)


def test_analyse_counts_classes_of_a_trained_flip_flop_gru_consistently():
    cfg = fixed_points_study.settings(quick=True)
    gru, head = fixed_points_study._networks(1, cfg, seed=3)
    found = fixed_points_study.analyse(gru, head, cfg, seed=3)
    fixed = found["is_fixed"]
    classes = found["classes"]
    assert found["stable"] == sum(c == "stable" and f for c, f in zip(classes, fixed, strict=True))
    assert found["saddles"] == sum(c == "saddle" and f for c, f in zip(classes, fixed, strict=True))
    assert found["slow"] == len(fixed) - sum(fixed)
    assert 0 <= found["corners"] <= found["stable"]
    assert found["residual_fixed"] < 1e-10
