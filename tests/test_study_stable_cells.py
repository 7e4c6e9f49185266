"""The stable_cells study: its quick run through the real runner, the evidence every claim carries,
and its helpers against independent computations. No test asserts which way a finding comes out.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnode.studies import (
    stable_cells,
)

STUDIES = {"stable_cells": stable_cells}


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


# -- stable_cells -----------------------------------------------------------------------------


def test_cells_have_about_equal_parameter_counts():
    counts = [
        stable_cells.count(stable_cells.build(c, stable_cells.hidden_for(c, 2200)))
        for c in stable_cells.CELLS
    ]
    assert max(counts) / min(counts) < 1.1


def test_step_spectrum_of_the_tanh_cell_is_numpys():
    torch.manual_seed(0)
    model = stable_cells.build("rnn", 5)
    f = model.layers[0]
    W = f.weight_hh.detach().numpy()
    d = 1 - np.tanh((f.bias_ih + f.bias_hh).detach().numpy()) ** 2
    expected = np.sort_complex(np.linalg.eigvals(d[:, None] * W))  # Euler step 1: 1 + (-I + DW)
    np.testing.assert_allclose(
        np.sort_complex(stable_cells.step_spectrum(model)), expected, atol=1e-12
    )


def test_decay_rate_of_an_exponential():
    t = np.arange(300)
    norms = 10.0 ** (-0.05 * (299 - t))  # falls 5 decades per 100 steps going back
    norms[:20] = 0.0  # underflowed values are ignored
    assert stable_cells.decay_rate(norms) == pytest.approx(5.0, rel=1e-10)
