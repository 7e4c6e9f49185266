"""The signal_propagation study: its quick run through the real runner, the evidence every claim
carries, and its helpers against independent computations. No test asserts which way a finding comes
out.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import (
    signal_propagation,
)

STUDIES = {"signal_propagation": signal_propagation}


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


# -- signal_propagation -----------------------------------------------------------------------


def test_fitted_factor_recovers_a_geometric_decay():
    depth = 10 + signal_propagation.SKIP_TOP
    norms = 3.0 * 0.7 ** np.arange(depth)[::-1]  # layer 1 (index 0) smallest
    assert signal_propagation.fitted_factor(norms) == pytest.approx(0.7, rel=1e-12)


def test_through_time_jacobian_equals_the_product_of_step_jacobians():
    r = signal_propagation.through_time(1.3, 5, 6, seed=2)
    torch.manual_seed(2)
    model = rnnode.ODERNN(1, 5, 1, cell="rnn")
    with torch.no_grad():
        model.layers[0].weight_hh.normal_(0.0, 1.3 / 5**0.5)
    f = model.layers[0]
    W = f.weight_hh.detach().numpy()
    U, b = f.weight_ih.detach().numpy(), (f.bias_ih + f.bias_hh).detach().numpy()
    x = torch.randn(6, 1, generator=torch.Generator().manual_seed(4)).numpy()
    h, steps = np.zeros(5), []
    for t in range(6):
        h = np.tanh(W @ h + U @ x[t] + b)
        steps.append((1 - h**2)[:, None] * W)  # dh_{t+1}/dh_t
    for t in range(6):
        J = np.eye(5)
        for s in steps[t:]:
            J = s @ J
        assert r["norms"][t] == pytest.approx(np.linalg.norm(J, 2), rel=1e-12)
    assert r["sigma_max"] == pytest.approx(np.linalg.norm(W, 2), rel=1e-14)


def test_default_prediction_skips_solve_the_path_recursion():
    chi = float(
        rnnode.analysis.meanfield.gradient_factor(
            1 / 3, rnnode.analysis.meanfield.stable_variance(1.0, 2 / 48)
        )
        ** 2
    )
    mu = signal_propagation.default_prediction(16, skips=True) ** 2
    assert mu**2 == pytest.approx(chi * mu + chi, rel=1e-12)
