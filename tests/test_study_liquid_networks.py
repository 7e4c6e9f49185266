"""The liquid_networks study: its task against the double-angle formula, its order fit and liquid
time constants against closed forms, and its quick run's claims recomputed from the metrics
(never which way a finding comes out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import read_json
from rnnode.studies._claims import check_claims
from rnnode.studies._stats import mean_test

pytest.importorskip("ncps.torch", reason="needs ncps: the extra rnnode[ncps], part of rnnode[dev]")
from rnnode.studies import liquid_networks as study  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(study_run):
    """The study's quick run (once per session): (metrics, folder)."""
    folder, metrics = study_run("liquid_networks")
    return metrics, folder


def test_the_task_doubles_the_frequency_of_a_unit_circle_input():
    x, y = study.sine_task(5, 20, np.random.default_rng(3))
    assert x.shape == (5, 20, 2) and y.shape == (5, 20, 1)
    np.testing.assert_allclose((x**2).sum(-1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(y[..., 0], 2 * x[..., 0] * x[..., 1], rtol=0, atol=1e-15)
    # Each sequence turns at its own constant rate within [0.5, 1.5] x 3 pi / 20 per sample.
    step = np.angle(np.exp(1j * np.diff(np.arctan2(x[..., 0], x[..., 1]), axis=1)))
    assert np.allclose(step, step[:, :1], atol=1e-12)
    assert ((step > 0.5 * 3 * np.pi / 20 - 1e-12) & (step < 1.5 * 3 * np.pi / 20 + 1e-12)).all()


def test_fitted_order_is_the_slope_over_six_unfolds_and_more():
    unfolds = [1, 2, 6, 12, 24]
    errors = [5.0, 5.0, 3.0 / 6, 3.0 / 12, 3.0 / 24]  # the first two off the line: ignored
    assert study.fitted_order(unfolds, errors) == pytest.approx(1.0, abs=1e-12)
    assert study.fitted_order([6, 12, 24], [1.0, 0.25, 0.0625]) == pytest.approx(2.0, abs=1e-12)


def test_liquid_time_constant_is_the_decay_time_of_an_isolated_neuron():
    """Without recurrent synapses dv_i/dt = (N_i - D_i v_i) / cm_i, so the Jacobian's diagonal
    is -D_i / cm_i = -1 / (liquid time constant)."""
    torch.manual_seed(0)
    model = rnnode.LTC(2, 4).double()
    with torch.no_grad():
        model.field(0).sparsity_mask.zero_()
    v = torch.randn(1, 4, dtype=torch.float64)
    x = torch.tensor([0.3, -0.8], dtype=torch.float64)
    tau = study.liquid_time_constants(model, v, x.unsqueeze(0))[0]
    A = rnnode.analysis.linearize(model, v, x, kind="continuous").A
    np.testing.assert_allclose(A.diagonal().numpy(), (-1 / tau).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(A.numpy(), np.diag(A.diagonal().numpy()), atol=0)


@pytest.mark.slow
def test_quick_run_writes_every_claim_with_value_interval_and_control(quick_run):
    metrics, folder = quick_run
    assert read_json(folder / "metrics.json") == metrics
    claims = metrics["claims"]
    check_claims(claims)
    assert set(claims) == {
        "bridge_is_ncps",
        "fused_step_first_order",
        "default_unfolds_differ",
        "network_learns",
        "accuracy_survives_ode",
        "fixed_points_stable",
        "training_slows_the_slowest_mode",
    }
    assert claims["bridge_is_ncps"]["holds"]
    seeds = study.settings(True)["seeds"]
    for claim in claims.values():
        if claim["kind"] == "finding":
            assert claim["seeds"] == seeds
            assert claim["control"]["label"]
    for name in ("fused_error", "accuracy", "timescales"):
        assert (folder / f"{name}.png").is_file() and (folder / f"{name}.pdf").is_file()


@pytest.mark.slow
def test_quick_run_findings_recompute_from_the_per_seed_metrics(quick_run):
    metrics, _ = quick_run
    cfg = study.settings(True)
    d, c = "6", str(cfg["control_unfolds"])
    mse6 = np.array([m[d] for m in metrics["mse"]])
    orders = [study.fitted_order(cfg["unfolds"], e) for e in metrics["errors"]]
    np.testing.assert_allclose(metrics["order"], orders, rtol=0, atol=1e-12)
    samples = {
        "fused_step_first_order": np.abs(np.asarray(orders) - 1),
        "default_unfolds_differ": np.array([g[d] for g in metrics["readout_gap"]]),
        "network_learns": mse6 / 0.5,
        "accuracy_survives_ode": np.array([m["ode"] for m in metrics["mse"]]) / mse6 - 1,
        "fixed_points_stable": np.asarray(metrics["max_real"]),
        "training_slows_the_slowest_mode": np.log10(
            np.asarray(metrics["slowest"]) / np.asarray(metrics["slowest_untrained"])
        ),
    }
    for name, values in samples.items():
        claim = metrics["claims"][name]
        expected = mean_test(values, claim["bound"])
        assert claim["value"] == pytest.approx(values.mean(), abs=1e-12), name
        assert [float(v) for v in claim["interval"]] == pytest.approx(
            list(expected.interval), abs=1e-12
        )
        assert claim["p_value"] == pytest.approx(expected.p_value, abs=1e-12)
    more = np.array([m[c] for m in metrics["mse"]])
    control = metrics["claims"]["accuracy_survives_ode"]["control"]["value"]
    assert control == pytest.approx(np.mean(more / mse6 - 1), abs=1e-12)
    # The errors fall as the unfolds grow (each state error against the same ODE solution).
    for errors in metrics["errors"]:
        assert errors[-1] < errors[0]
