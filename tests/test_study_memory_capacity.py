"""The memory_capacity study: its helpers against independent computations and its quick run's
findings recomputed from the metrics. No test asserts which way a finding comes out. (A quick
run's files and each claim's evidence are tested for every study in tests/test_studies.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnode.analysis.memory import linear_memory_function, memory_function
from rnnode.studies import (
    memory_capacity,
)

STUDIES = {"memory_capacity": memory_capacity}


@pytest.fixture(scope="module")
def runs(study_run):
    """The study's quick run (made once per session): {name: (folder, metrics)}."""
    return {name: study_run(name) for name in STUDIES}


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


def test_krylov_memory_function_equals_the_lyapunov_closed_form():
    # a well-conditioned case: both closed forms to 1e-10, and over all delays the sum is N
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    A, b = 0.6 * q, rng.standard_normal(5)
    expected = linear_memory_function(A, b, 12)
    np.testing.assert_allclose(
        memory_capacity.krylov_memory_function(A, b, 12), expected, atol=1e-10
    )
    assert memory_capacity.krylov_memory_function(A, b, 200).sum() == pytest.approx(5, abs=1e-10)
    assert memory_capacity.krylov_rank(A, b) == 5
    with pytest.raises(ValueError, match="spectral radius"):
        memory_capacity.krylov_memory_function(1.1 * q, b, 3)


def test_orthogonal_reservoir_is_orthogonal_times_rho():
    model = memory_capacity.stack("linear", 7, 1, 0.95, seed=2, reservoir="orthogonal")
    w = model.layers[0].weight_hh.detach().numpy()
    np.testing.assert_allclose(w @ w.T, 0.95**2 * np.eye(7), atol=1e-14)
    with pytest.raises(ValueError, match="reservoir"):
        memory_capacity.stack("linear", 7, 1, 0.95, seed=2, reservoir="uniform")


def test_noiseless_point_is_the_estimator_on_the_noiseless_simulation():
    cfg = {"noiseless_samples": 600, "noiseless_washout": 50}
    result = memory_capacity.noiseless_point("gaussian", 5, 3, cfg)
    model = memory_capacity.stack("linear", 5, 1, memory_capacity.NOISELESS_RADIUS, 3)
    u = np.random.default_rng(3 + 17).standard_normal(600)
    states = memory_capacity.simulate(model, u)
    expected = memory_function(states, u, 10, washout=50).sum()
    assert result["estimate"] == pytest.approx(expected, abs=1e-12)
    A, b, _ = memory_capacity.joint_linear_map(model)
    assert result["closed_form"] == pytest.approx(linear_memory_function(A, b, 10).sum(), abs=1e-8)


@pytest.mark.slow
def test_quick_run_findings_recompute_from_the_metrics(runs):
    from scipy import stats

    from rnnode.studies._claims import check_claims

    _, metrics = runs["memory_capacity"]
    claims = metrics["claims"]
    check_claims(claims)
    for reservoir, by_n in metrics["noiseless"].items():
        for n, entry in by_n.items():
            ratio = np.array(entry["estimates"]) / int(n)
            claim = claims[f"noiseless_{reservoir}_n{n}"]
            assert claim["value"] == pytest.approx(ratio.mean(), abs=1e-14)
            half = stats.t.ppf(0.975, ratio.size - 1) * stats.sem(ratio)
            assert claim["interval"] == pytest.approx(
                [ratio.mean() - half, ratio.mean() + half], abs=1e-12
            )
            assert claim["control"]["value"] == pytest.approx(
                np.mean(entry["closed_form"]) / int(n), abs=1e-14
            )
    cfg = metrics["settings"]
    N, seeds = cfg["units"], cfg["seeds"]
    gaps = [
        max(
            abs(e["estimates"][s] - e["closed_form"][s]) / N
            for by_r in metrics["capacity"]["linear"].values()
            for e in by_r.values()
            if "closed_form" in e
        )
        for s in range(seeds)
    ]
    assert claims["linear_matches_closed_form"]["value"] == pytest.approx(np.mean(gaps), abs=1e-14)
