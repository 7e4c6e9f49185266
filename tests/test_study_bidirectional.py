"""The bidirectional study: its helpers against independent references (numpy, scipy,
statsmodels) and its quick run's numbers (through the real runner, once per session). No test
asserts which way a finding comes out. (A quick run's files and each claim's evidence are tested
for every study in tests/test_studies.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch

from rnnode.studies import (
    bidirectional,
)
from rnnode.studies._run import json_bytes
from tests.helpers import assert_seed_finding, assert_seed_verification

STUDIES = (bidirectional,)


@pytest.fixture(scope="module")
def quick_runs(study_run):
    """Metrics of the study's quick run (made once per session), and the folder holding it."""
    folder, metrics = study_run("bidirectional")
    return {"bidirectional": metrics}, folder.parent


# -- bidirectional ----------------------------------------------------------------------------


def test_the_causal_bound_is_three_quarters():
    """E[max(Phi(a), 1 - Phi(a))] over a ~ N(0, 1), by quadrature, is the middle steps' bound;
    with 1/2 at k = 1 and 1 at k = T the average over T steps stays 3/4."""
    middle, _ = scipy.integrate.quad(
        lambda a: max(scipy.stats.norm.cdf(a), scipy.stats.norm.sf(a)) * scipy.stats.norm.pdf(a),
        -np.inf,
        np.inf,
        epsabs=1e-13,
    )
    assert middle == pytest.approx(0.75, abs=1e-10)
    for length in (2, 5, 20):
        assert ((length - 2) * middle + 0.5 + 1.0) / length == pytest.approx(
            bidirectional.CAUSAL_BOUND, abs=1e-10
        )


def test_the_causal_rule_scores_the_bound_on_a_large_sample():
    task = bidirectional.future_task(1, 40000, 10, seed=0)
    accuracy = bidirectional.causal_bayes_accuracy(task.x_test, task.y_test)
    # Standard error sqrt(3/16 / 400000) ~ 7e-4 (with dependence within a sequence: < 2e-3).
    assert accuracy == pytest.approx(bidirectional.CAUSAL_BOUND, abs=5e-3)


def test_the_best_additive_rule_scores_the_additive_bound():
    """1[x_(k-1) > 0] + 1[x_(k+1) > 0] >= 2, an additive rule, scores 3/4 inside and 1 at the
    ends: ``additive_bound`` (which no additive rule exceeds, see the module docstring)."""
    task = bidirectional.two_sided_task(1, 20000, 8, seed=2)
    padded = torch.nn.functional.pad(task.x_test[..., 0], (1, 1))
    guess = ((padded[:, :-2] > 0).long() + (padded[:, 2:] > 0).long() >= 2).long()
    accuracy = float((guess == task.y_test).double().mean())
    # Standard error sqrt(3/16 / 120000) ~ 1.3e-3 over the inner steps.
    assert accuracy == pytest.approx(bidirectional.additive_bound(8), abs=6e-3)
    assert bidirectional.additive_bound(8) == pytest.approx((6 * 0.75 + 2) / 8, rel=1e-15)


@pytest.mark.slow
def test_bidirectional_quick_numbers(quick_runs):
    m = quick_runs[0]["bidirectional"]
    bound = bidirectional.CAUSAL_BOUND
    # the causal and additive bounds are theorems: verifications, not findings
    assert_seed_verification(
        m["claims"]["unidirectional_is_causal"], m["accuracy"]["unidirectional"]
    )
    assert_seed_finding(
        m["claims"]["bidirectional_sees_the_future"], m["accuracy"]["bidirectional"]
    )
    assert m["claims"]["unidirectional_is_causal"]["bound"] == bound + bidirectional.BOUND_SLACK
    two_sided = m["two_sided_accuracy"]
    assert_seed_verification(
        m["claims"]["one_bidirectional_layer_is_additive"], two_sided["layers_1"]
    )
    assert_seed_finding(
        m["claims"]["two_bidirectional_layers_combine_sides"], two_sided["layers_2"]
    )
    for value in m["accuracy"]["causal_bayes"]:
        assert value == pytest.approx(bound, abs=bidirectional.BOUND_SLACK)


@pytest.mark.slow  # trains the point twice: seconds
@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_a_point_is_a_pure_function_of_its_settings_and_seed(study):
    """Same point, same numbers (on the CPU), bit for bit: seeds are set inside the point."""
    p = {"settings": {**study.settings(True), "steps": 3}, "seed": 4}
    first = study.point(p)
    torch.manual_seed(123)  # the global generator's state must not matter
    assert json_bytes(study.point(p)) == json_bytes(first)
