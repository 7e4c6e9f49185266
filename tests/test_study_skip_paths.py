"""The skip_paths study: its quick run's statistics recomputed here from the metrics, and path
counts by enumeration. No test asserts which way a finding comes out. (A quick run's files and
each claim's evidence are tested for every study in tests/test_studies.py.)
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from rnnode.studies import skip_paths
from tests.helpers import assert_seed_finding, assert_seed_verification

STUDIES = {"skip_paths": skip_paths}


@pytest.fixture(scope="module")
def runs(study_run):
    """The study's quick run (made once per session): {name: (folder, metrics)}."""
    return {name: study_run(name) for name in STUDIES}


# -- skip_paths -------------------------------------------------------------------------------


def brute_force_paths(num_layers: int, skips) -> int:
    """Sequences of offsets from ``skips`` that step from layer L exactly down to layer 1."""
    total = 0
    for length in range(num_layers):
        for steps in itertools.product(skips, repeat=length):
            total += sum(steps) == num_layers - 1
    return total


@pytest.mark.parametrize("n", range(1, 15))
def test_binet_is_the_fibonacci_recurrence(n):
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, a + b
    assert skip_paths.binet(n) == a


@pytest.mark.parametrize("skips", skip_paths.PATTERNS)
@pytest.mark.parametrize("num_layers", [1, 2, 5, 7])
def test_measured_paths_equal_brute_force_enumeration(skips, num_layers):
    assert skip_paths.measured_paths(num_layers, skips) == brute_force_paths(num_layers, skips)


@pytest.mark.slow
def test_skip_paths_quick_run(runs):
    _, m = runs["skip_paths"]
    layers = m["layers"]
    assert m["fibonacci"] == [brute_force_paths(n, (1, 2)) for n in layers]
    for key, values in m["measured_paths"].items():
        skips = tuple(json.loads(key))
        assert values == [float(brute_force_paths(n, skips)) for n in layers]
    tanh = m["tanh"]
    ratio = np.array(tanh["ratio_skip_over_plain"])
    np.testing.assert_allclose(tanh["median_ratio"], np.median(ratio, axis=1), rtol=1e-14)
    slopes = {
        v: [np.polyfit(tanh["depths"], np.log(c), 1)[0] for c in np.array(g).T]
        for v, g in tanh["layer1_gradient"].items()
    }
    # at the default init mean field predicts the decay: verifications, not findings
    assert_seed_verification(m["claims"]["plain_vanishes"], slopes["plain"])
    assert_seed_verification(m["claims"]["skips_still_decay"], slopes["skips"])
    assert_seed_finding(m["claims"]["skips_carry_gradient"], np.log10(ratio[-1]))


@pytest.mark.slow
def test_the_example_lines_of_studies_readme_are_what_this_quick_run_prints(runs):
    """studies/README.md shows two lines of ``rnnode-study run skip_paths --quick``: they equal
    the lines the command prints for those claims today (``format_claim`` of the quick run)."""
    from pathlib import Path

    from rnnode.studies._claims import format_claim

    text = (Path(__file__).resolve().parents[1] / "studies" / "README.md").read_text()
    block = text[text.index("rnnode-study run skip_paths --quick") :]
    start = block.index("```\n") + 4
    lines = block[start : block.index("\n```", start)].splitlines()
    claims = runs["skip_paths"][1]["claims"]
    for line in lines:
        name = line.split()[1].rstrip(":")
        assert line == format_claim(name, claims[name])
