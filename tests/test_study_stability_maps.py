"""The stability_maps study: its quick run's claims, and its helpers against independent
references (closed forms, numpy). (A quick run's files and each claim's evidence are tested for
every study in tests/test_studies.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import stability_maps

STUDIES = {
    "stability_maps": stability_maps,
}


@pytest.fixture(scope="module")
def runs(study_run):
    """The study's quick run (made once per session): {name: (folder, metrics)}."""
    return {name: study_run(name) for name in STUDIES}


def _holds(metrics, name):
    return metrics["claims"][name]["holds"]


# -- stability_maps ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [-0.7, -0.05, 0.3])
def test_growth_rate_recovers_an_exponential(rate):
    t = np.arange(60)
    norms = 1e-7 * np.exp(rate * t)
    assert stability_maps.growth_rate(norms) == pytest.approx(rate, abs=1e-12)


def test_perturbation_of_a_linear_stack_is_the_matrix_exponential():
    """dh/dt = (W - I) h + W_ih x on one layer: delta_t = expm((W - I) t) delta_0 (scipy)."""
    from scipy.linalg import expm

    model = rnnode.ODERNN(1, 3, 1, cell="linear")
    field = model.field(0)
    x = 0.4
    A = (field.weight_hh - torch.eye(3)).detach().numpy()
    b = (field.weight_ih[:, 0] * x + field.bias_ih + field.bias_hh).detach().numpy()
    star = np.linalg.solve(A, -b)[None]  # (layers, state)
    norms = stability_maps.perturbation(model, 1.0, x, star, 5, method="rk4", step_size=0.01)
    generator = torch.Generator().manual_seed(1)
    delta = torch.randn(1, 3, generator=generator, dtype=torch.float64).numpy()[0]
    delta *= stability_maps.DELTA0 / np.linalg.norm(delta)
    expected = [np.linalg.norm(expm(A * t) @ delta) for t in range(6)]
    # RK4 at step 0.01: relative error ~1e-10 on norms of 1e-7; the fixed point is exact here.
    np.testing.assert_allclose(norms, expected, rtol=1e-8, atol=1e-16)


@pytest.mark.slow
def test_stability_maps_quick_run(runs):
    _, m = runs["stability_maps"]
    counts = m["counts"]
    assert counts["euler_stable_but_ode_unstable"] == 0
    assert 0 < counts["euler_stable"] <= counts["rk4_stable"]
    assert m["max_eigenvalue_error"] < stability_maps.EIG_TOL
    assert m["max_numpy_residual"] < stability_maps.ROOT_TOL
    max_real = np.array(m["max_real"], dtype=float)
    radius = np.array(m["euler_spectral_radius"], dtype=float)
    # Where the RNN's step map contracts, the ODE's eigenvalues have negative real parts.
    assert np.all(max_real[radius < 1] < 0)
    trajectories = m["trajectories"]
    assert {"stable", "unstable"} <= set(trajectories)
    for t in trajectories.values():
        assert np.sign(t["ode_rate"]) == np.sign(t["max_real"])
        assert np.sign(t["rnn_rate"]) == np.sign(t["log_euler_radius"])
    assert trajectories["stable"]["max_real"] < 0 < trajectories["unstable"]["max_real"]
    for name in m["claims"]:
        assert _holds(m, name), name
