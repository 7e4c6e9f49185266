"""The signal_propagation study: its helpers against independent computations. No test asserts
which way a finding comes out. (A quick run's files and each claim's evidence are tested for
every study in tests/test_studies.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnode
from rnnode.studies import (
    signal_propagation,
)

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
