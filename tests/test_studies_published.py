"""The "published results reproduced" studies (chaos, signal_propagation, memory_capacity,
stable_cells, predictive_inference): their quick runs through the real runner, the evidence every
claim carries, and their helpers against independent computations. No test asserts which way a
finding comes out."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import (
    chaos,
    fixed_points_study,
    memory_capacity,
    predictive_inference,
    run_study,
    signal_propagation,
    stable_cells,
)

STUDIES = {
    "chaos": chaos,
    "signal_propagation": signal_propagation,
    "memory_capacity": memory_capacity,
    "stable_cells": stable_cells,
    "predictive_inference": predictive_inference,
    "fixed_points_study": fixed_points_study,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every study's quick run, once: {name: (folder, metrics)}."""
    out = tmp_path_factory.mktemp("published")
    done = {}
    for name, module in STUDIES.items():
        metrics = run_study(module, out=out, quick=True, seed=0, workers=1, show_progress=False)
        done[name] = (out / f"{name}-quick", metrics)  # quick runs: OUT/NAME-quick
    return done


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


# -- predictive_inference ---------------------------------------------------------------------


def _tiny_network():
    torch.manual_seed(3)
    net = predictive_inference.Network(3, 4, 2, 5)
    x = torch.randn(6, 7, 3)
    y = torch.randint(0, 5, (6,))
    return net, x, y


def test_value_nodes_start_at_the_models_own_forward_pass():
    net, x, y = _tiny_network()
    values = net.forward_values(x)
    output = net.rnn(x.transpose(0, 1))[0]
    for t in range(7):
        torch.testing.assert_close(values[-1][t], output[t], rtol=0, atol=1e-14)
    # the energy at the forward pass is the loss: every prediction error is zero
    torch.testing.assert_close(net.energy(values, x, y), net.loss(x, y), rtol=0, atol=1e-14)


def test_without_inference_only_the_head_learns_and_its_update_is_exact():
    net, x, y = _tiny_network()
    pc = predictive_inference.pc_gradients(net, x, y, 0)
    bptt = predictive_inference.bptt_gradients(net, x, y)
    c = predictive_inference.cosines(net, pc, bptt)
    assert c["head"] == pytest.approx(1.0, abs=1e-12)
    assert c["layer1"] == 0.0 and c["layer2"] == 0.0


def test_inference_lowers_the_energy():
    net, x, y = _tiny_network()
    energies = [
        float(net.energy(predictive_inference.infer(net, x, y, n), x, y).detach())
        for n in (0, 1, 5, 20)
    ]
    assert all(b < a for a, b in zip(energies, energies[1:], strict=False))


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
