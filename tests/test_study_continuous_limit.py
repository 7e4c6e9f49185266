"""studies/continuous_limit.py: its reference, its order fit, and the claims of its quick run.

The scipy reference is checked against a closed form: with W_hh = 0 the drive of a layer is
constant over each sample interval, so ds/dt = a_k - s relaxes exponentially,
s(k) = a_k + (s(k - 1) - a_k) e^{-1}, and Euler with n steps of 1/n gives
s(k) = a_k + (s(k - 1) - a_k) (1 - 1/n)^n.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rnnode
from rnnode.studies import claims_hold
from rnnode.studies import continuous_limit as study

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_folder(study_run) -> Path:
    return study_run("continuous_limit")[0]  # made once per session


@pytest.fixture(scope="module")
def metrics(run_folder) -> dict:
    return json.loads((run_folder / "metrics.json").read_text())


def relaxing_rnn(num_layers: int = 2) -> tuple[nn.RNN, torch.Tensor]:
    torch.manual_seed(5)
    module = nn.RNN(2, 3, num_layers=num_layers).double()
    with torch.no_grad():
        for layer in range(num_layers):
            getattr(module, f"weight_hh_l{layer}").zero_()
    return module, torch.randn(5, 2, 2, dtype=torch.float64)


def closed_form(module: nn.RNN, x: torch.Tensor, decay: float) -> np.ndarray:
    """States (layers, T + 1, batch, hidden) of s(k) = a_k + (s(k - 1) - a_k) * decay."""
    drive, layers = x.numpy(), []
    for layer in range(module.num_layers):
        w, b_ih, b_hh = (
            getattr(module, f"{n}_l{layer}").detach().numpy()
            for n in ("weight_ih", "bias_ih", "bias_hh")
        )
        s = [np.zeros((x.shape[1], module.hidden_size))]
        for u in drive:
            a = np.tanh(u @ w.T + b_ih + b_hh)
            s.append(a + (s[-1] - a) * decay)
        layers.append(np.stack(s))
        drive = layers[-1][1:]
    return np.stack(layers)


def test_the_scipy_reference_is_the_exact_relaxation():
    module, x = relaxing_rnn()
    exact, _ = study.reference("rnn_tanh", module, x.numpy(), coupling="sampled")
    # DOP853 at rtol = atol = 1e-13 over 5 unit intervals, states of size <= 1.
    np.testing.assert_allclose(exact, closed_form(module, x, math.exp(-1)), rtol=0, atol=1e-12)
    # The discrete recurrence is the relaxation with decay 0: s(k) = a_k.
    discrete = study.discrete_map("rnn_tanh", module, x.numpy())
    np.testing.assert_allclose(discrete, closed_form(module, x, 0.0), rtol=0, atol=1e-15)


@pytest.mark.parametrize("n", [1, 4, 16])
def test_the_errors_the_study_measures_are_the_closed_form_errors(n):
    """rnnode's Euler with step 1/n against the scipy reference: the closed-form gap."""
    module, x = relaxing_rnn()
    exact, _ = study.reference("rnn_tanh", module, x.numpy(), coupling="sampled")
    measured = study._state_error(rnnode.from_torch(module), x, "sampled", "euler", 1 / n, exact)
    expected = np.abs(
        closed_form(module, x, (1 - 1 / n) ** n) - closed_form(module, x, math.exp(-1))
    ).max()
    assert measured == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("coupling", rnnode.COUPLINGS)
@pytest.mark.parametrize("cell", study.SMOOTH)
def test_the_reference_agrees_with_rk4_at_a_small_step(cell, coupling):
    """Two independent integrators of the same field (scipy DOP853, torchdiffeq RK4) agree."""
    cfg = {"input_size": 2, "hidden_size": 3, "num_layers": 2, "length": 3, "batch": 2}
    module, x = study.torch_module(cell, cfg, seed=1)
    exact, curve = study.reference(cell, module, x.numpy(), coupling=coupling, dense=4)
    with torch.no_grad():
        model = rnnode.from_torch(module)
        states = model.solve(x, method="rk4", step_size=1 / 32, coupling=coupling).states
    # RK4's error is C h^4 with C of order 1e-3 here: about 1e-9 at h = 1/32.
    np.testing.assert_allclose(states[:, 0].numpy(), exact, rtol=0, atol=1e-8)
    # The dense curve passes through the top layer's states at the sample times.
    np.testing.assert_allclose(curve[::4], exact[-1], rtol=0, atol=1e-12)


def test_the_couplings_differ_only_above_the_first_layer():
    cfg = {"input_size": 2, "hidden_size": 3, "num_layers": 2, "length": 3, "batch": 2}
    module, x = study.torch_module("gru", cfg, seed=2)
    sampled, _ = study.reference("gru", module, x.numpy(), coupling="sampled")
    continuous, _ = study.reference("gru", module, x.numpy(), coupling="continuous")
    np.testing.assert_allclose(sampled[0], continuous[0], rtol=0, atol=1e-12)
    assert np.abs(sampled[1] - continuous[1]).max() > 1e-3


@pytest.mark.parametrize("p", [1.0, 2.0, 4.0, 2.5])
def test_fitted_order_recovers_an_exact_power_law(p):
    steps = [2.0**-k for k in range(2, 7)]
    errors = [0.3 * h**p for h in steps]
    assert study.fitted_order(steps, errors) == pytest.approx(p, abs=1e-12)


@pytest.mark.slow
def test_quick_run_bridge_is_exact(metrics):
    bridge = metrics["bridge_max_abs_error"]
    assert set(bridge) == set(study.MODULES)
    assert max(bridge.values()) < study.BRIDGE_TOL
    assert max(metrics["reference_check_max_abs_error"].values()) < study.BRIDGE_TOL
    assert metrics["claims"]["bridge_exact"]["holds"]
    assert metrics["claims"]["reference_is_the_rnn"]["holds"]


@pytest.mark.slow
@pytest.mark.parametrize("coupling", rnnode.COUPLINGS)
@pytest.mark.parametrize("method", list(study.ORDERS))
def test_quick_run_observed_orders_are_the_classical_ones(metrics, method, coupling):
    for cell in study.SMOOTH:
        c = metrics["convergence"][coupling][cell][method]
        assert c["order"] == pytest.approx(study.ORDERS[method], abs=study.BANDS[method])
        assert c["order"] == pytest.approx(study.fitted_order(c["steps"], c["errors"]), abs=1e-12)
        assert np.all(np.diff(c["errors"]) < 0)
    assert metrics["claims"][f"{method}_order"]["holds"]
    assert metrics["claims"]["converges"]["holds"]


def test_quick_setting_is_smaller_than_the_full_one():
    quick, full = study.settings(True), study.settings(False)
    for key in ("hidden_size", "num_layers", "length", "batch"):
        assert quick[key] <= full[key]
    for method in study.ORDERS:
        assert min(quick["steps"][method]) >= min(full["steps"][method])


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_the_full_settings_smallest_step_fits_the_solves_budget(method):
    """The full run's smallest step over the full length exceeds the default step budget (100
    steps per sample interval): the study must set the budget, or the full run fails where the
    quick run passes (it did: 3840 Euler steps over 30 samples)."""
    full = study.settings(False)
    h = min(full["steps"][method])
    torch.manual_seed(0)
    module = nn.RNN(2, 3).double()
    x = torch.randn(full["length"], 1, 2, dtype=torch.float64)
    model = rnnode.from_torch(module)
    # against the step-1 map's states: the error is finite and of the order of the states
    out = module(x)[0].detach().numpy()
    exact = np.concatenate([np.zeros_like(out[:1]), out])  # (T + 1, batch, hidden) from h_0 = 0
    error = study._state_error(model, x, "sampled", method, h, exact)
    assert 0.0 < error < 1.0


@pytest.mark.slow
def test_the_command_reproduces_the_run_in_a_fresh_process(run_folder, tmp_path):
    """``python -m rnnode.studies.cli run continuous_limit --quick``: same seed, same metrics
    bytes."""
    argv = ["run", "continuous_limit", "--quick", "--seed", "0", "--workers", "1"]
    argv += ["--out", str(tmp_path), "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-m", "rnnode.studies.cli", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "continuous_limit: verifications 6/6 hold" in done.stdout
    folder = tmp_path / "continuous_limit-quick"
    assert (folder / "metrics.json").read_bytes() == (run_folder / "metrics.json").read_bytes()
    assert claims_hold(json.loads((folder / "metrics.json").read_text()))
    config = json.loads((folder / "config.json").read_text())
    assert config["arguments"]["quick"] is True and config["seed"] == 0
    assert config["command"][1:] == argv
    report = (folder / "report.html").read_text()
    for name in ("convergence", "trajectory"):
        assert f"<img src='{name}.png'" in report
        assert (folder / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert (folder / f"{name}.pdf").read_bytes().startswith(b"%PDF")
