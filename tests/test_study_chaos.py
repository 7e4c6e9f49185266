"""The chaos study: its helpers against independent computations and its quick run's findings
recomputed from the metrics. No test asserts which way a finding comes out. (A quick run's files
and each claim's evidence are tested for every study in tests/test_studies.py.)
"""

from __future__ import annotations

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


def test_crossing_interpolates_the_last_sign_change():
    gains = [0.8, 1.0, 1.2, 1.4]
    assert chaos.crossing(gains, [-0.2, -0.1, 0.1, 0.3]) == pytest.approx(1.1, abs=1e-15)
    # a dip below zero after a first crossing: the curve stays >= 0 only above the last one
    assert chaos.crossing(gains, [-0.2, 0.1, -0.1, 0.3]) == pytest.approx(1.25, abs=1e-15)
    assert chaos.crossing(gains, [0.0, 0.1, 0.2, 0.3]) == 0.8
    assert chaos.crossing(gains, [-0.3, -0.2, -0.1, -0.05]) == 1.4
    with pytest.raises(ValueError, match="gains"):
        chaos.crossing([1.0, 0.9], [0.1, 0.2])


@pytest.mark.slow
def test_continuous_exponent_at_small_gain_is_the_origins():
    # small g: the origin is the attractor and the exponent is -1 + max Re eig(g W) (numpy); RK4
    # at step 0.5 maps eigenvalue mu of -I + g W to R(mu / 2), R(z) = 1 + z + z^2/2 + z^3/6 +
    # z^4/24, so the measured exponent is max ln|R(mu / 2)| / 0.5, reached to O(1 / duration)
    model = chaos.network(6, 0.5, seed=2)
    w = model.layers[0].weight_hh.detach().numpy()
    mu = -1 + np.linalg.eigvals(w)
    assert chaos.origin_exponent(model) == pytest.approx(mu.real.max(), abs=1e-15)
    z = mu / 2
    rk4 = np.log(np.abs(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24)).max() / 0.5
    measured = chaos.largest_exponent(model, 1, 2000, 50, seed=0, continuous=True)
    assert measured == pytest.approx(rk4, abs=1e-3)


@pytest.mark.slow
def test_quick_run_findings_recompute_from_the_metrics(runs):
    from scipy import stats

    from rnnode.studies._claims import check_claims

    _, metrics = runs["chaos"]
    claims = metrics["claims"]
    check_claims(claims)
    cfg = metrics["settings"]
    gains = cfg["continuous_gains"]
    for size in (cfg["continuous_small_size"], cfg["continuous_size"]):
        curves = np.array([metrics["continuous"][str(size)][f"{g:g}"]["samples"] for g in gains])
        assert metrics["crossing"][str(size)] == pytest.approx(
            chaos.crossing(gains, curves.mean(axis=1)), abs=1e-14
        )
    assert claims["crossing_near_1"]["value"] == metrics["crossing"][str(cfg["continuous_size"])]
    samples = np.array(metrics["continuous"][str(cfg["continuous_size"])]["0.8"]["samples"])
    claim = claims["continuous_stable_below_1"]
    half = stats.t.ppf(0.975, samples.size - 1) * stats.sem(samples)
    assert claim["interval"] == pytest.approx(
        [samples.mean() - half, samples.mean() + half], abs=1e-12
    )
