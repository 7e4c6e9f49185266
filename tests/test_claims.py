"""rnnode.studies claims and statistics: verdicts from intervals, records, tests behind them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rnnode.studies import bootstrap_interval, format_claim, sign_test, spearman
from rnnode.studies._claims import finding_record, verdict, verification_record


@pytest.mark.parametrize(
    ("comparison", "interval", "expected"),
    [
        (">", (0.1, 0.3), "supported"),
        (">", (-0.3, -0.1), "not supported"),
        (">", (-0.1, 0.3), "inconclusive"),
        ("<", (-0.3, -0.1), "supported"),
        ("<", (0.1, 0.3), "not supported"),
        ("<=", (-0.2, 0.0), "supported"),
        (">=", (0.0, 0.0), "supported"),
        (">", (0.0, 0.2), "inconclusive"),  # the edge touches the bound: not strictly above
        (">", (-math.inf, math.inf), "inconclusive"),
    ],
)
def test_verdict_follows_the_interval_against_the_bound(comparison, interval, expected):
    assert verdict(comparison, 0.0, interval) == expected


def test_a_finding_records_value_bound_control_seeds_interval_and_verdict():
    record = finding_record(
        "layer index correlates with timescale",
        value=0.4,
        comparison=">",
        bound=0.0,
        interval=(0.1, 0.6),
        control=0.02,
        control_label="untrained networks",
        seeds=20,
        test="sign test",
        p_value=0.01,
    )
    assert record["kind"] == "finding" and record["verdict"] == "supported" and record["holds"]
    assert record["control"] == {"label": "untrained networks", "value": 0.02}
    assert record["interval"] == [0.1, 0.6] and record["seeds"] == 20
    line = format_claim("hierarchy", record)
    assert line.startswith("finding hierarchy: 0.4 [0.1, 0.6] > 0; control (untrained networks)")
    assert line.endswith("20 seeds, sign test, p = 0.01 -> supported")


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ({"value": float("nan")}, ValueError, "value"),
        ({"value": "1"}, TypeError, "value"),
        ({"interval": (0.5, 0.1)}, ValueError, "interval"),
        ({"comparison": "=="}, ValueError, "comparison"),
        ({"seeds": 0}, ValueError, "seeds"),
        ({"control_label": ""}, ValueError, "control_label"),
        ({"p_value": 1.5}, ValueError, "p_value"),
    ],
)
def test_a_finding_without_its_evidence_is_refused(override, error, match):
    kwargs = dict(
        value=0.4,
        comparison=">",
        bound=0.0,
        interval=(0.1, 0.6),
        control=0.0,
        control_label="untrained",
        seeds=5,
    )
    with pytest.raises(error, match=match):
        finding_record("s", **{**kwargs, **override})


def test_verification_is_labelled_and_printed_as_one():
    record = verification_record("gain equals the formula", True, value=1e-9, bound=1e-8)
    assert record["kind"] == "verification"
    assert format_claim("gain", record) == "verification gain (1e-09 vs 1e-08) -> holds"


def test_bootstrap_interval_covers_the_mean_like_a_t_interval_and_is_seeded():
    rng = np.random.default_rng(1)
    samples = rng.normal(2.0, 1.0, size=200)
    lo, hi = bootstrap_interval(samples, seed=3)
    t_lo, t_hi = stats.t.interval(0.95, 199, loc=samples.mean(), scale=stats.sem(samples))
    # For 200 normal samples the percentile bootstrap and the t interval agree to a few percent
    # of their width (bootstrap resampling noise at 10,000 draws and the 1/sqrt(n) bias).
    width = t_hi - t_lo
    assert abs(lo - t_lo) < 0.05 * width and abs(hi - t_hi) < 0.05 * width
    assert bootstrap_interval(samples, seed=3) == (lo, hi)
    assert bootstrap_interval([1.0]) == (-math.inf, math.inf)
    # Two samples resample only to their own range: no interval, the finding is inconclusive.
    assert bootstrap_interval([1.0, 2.0]) == (-math.inf, math.inf)
    assert bootstrap_interval([1.0, 2.0, 4.0]) != (-math.inf, math.inf)


def test_sign_test_matches_the_binomial_distribution():
    # 9 positive of 10 non-zero differences: p = 2 * P(X >= 9), X ~ Binomial(10, 1/2).
    diffs = [1.0] * 9 + [-1.0] + [0.0] * 3
    expected = 2 * (stats.binom.sf(8, 10, 0.5))
    assert sign_test(diffs) == pytest.approx(expected, rel=1e-12)
    assert sign_test([0.0, 0.0]) == 1.0


def test_spearman_matches_a_rank_correlation_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    rho, p = spearman(x, y)
    d = x - np.array([2, 1, 4, 3, 5])  # ranks of y
    assert rho == pytest.approx(1 - 6 * (d**2).sum() / (5 * (25 - 1)), abs=1e-12)
    assert 0 < p < 1


def test_a_record_read_back_from_json_formats_its_infinite_interval():
    """Metrics store an unbounded interval as the strings "-inf" and "inf"."""
    record = finding_record(
        "one seed",
        value=1.0,
        comparison=">",
        bound=0.0,
        interval=(-math.inf, math.inf),
        control=None,
        control_label="none",
        seeds=1,
    )
    stored = {**record, "interval": ["-inf", "inf"]}
    assert "1 [-inf, inf] > 0" in format_claim("x", stored)


def test_check_claims_accepts_evidence_and_names_a_verdict_that_does_not_follow():
    from rnnode.studies._claims import check_claims

    good = finding_record(
        "s",
        value=0.5,
        comparison=">",
        bound=0.0,
        interval=(0.1, 0.9),
        control=0.0,
        control_label="c",
        seeds=5,
    )
    check_claims({"a": good, "b": verification_record("v", True)})
    with pytest.raises(ValueError, match=r"claims\['a'\]: verdict 'not supported' does not"):
        check_claims({"a": {**good, "verdict": "not supported"}})
    with pytest.raises(ValueError, match=r"claims\['a'\]: a finding lacks \['control'\]"):
        check_claims({"a": {k: v for k, v in good.items() if k != "control"}})
