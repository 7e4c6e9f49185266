"""The chaos study: its quick run through the real runner, the evidence every claim carries, and
its helpers against independent computations. No test asserts which way a finding comes out.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnode.studies import (
    chaos,
)

STUDIES = {"chaos": chaos}


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


# -- chaos ------------------------------------------------------------------------------------


def test_chaos_network_steps_the_map_tanh_g_w_h():
    model = chaos.network(7, 1.7, seed=3)
    h = torch.randn(7)
    w = model.layers[0].weight_hh.detach()
    assert torch.allclose(w.std() * 7**0.5 / 1.7, torch.tensor(1.0), atol=0.3)
    x = torch.zeros(1, 1)
    out = model(x, h[None])[0][0]
    torch.testing.assert_close(out, torch.tanh(w @ h), rtol=0, atol=1e-15)


def test_chaos_exponent_of_a_contracting_linearisation():
    # g small: the only attractor is h = 0, where the map's Jacobian is g W; the leading exponent
    # is log of W's largest |eigenvalue| (numpy), reached after the transient
    model = chaos.network(6, 0.4, seed=1)
    w = model.layers[0].weight_hh.detach().numpy()
    expected = math.log(np.abs(np.linalg.eigvals(w)).max())
    measured = chaos.largest_exponent(model, 1, duration=200, transient=50, seed=0)
    assert measured == pytest.approx(expected, abs=0.02)
