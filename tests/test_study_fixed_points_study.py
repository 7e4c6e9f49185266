"""The fixed_points_study study: its helpers against independent computations. No test asserts
which way a finding comes out. (A quick run's files and each claim's evidence are tested for
every study in tests/test_studies.py.)
"""

from __future__ import annotations

import torch

import rnnode
from rnnode.studies import (
    fixed_points_study,
)

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
