"""rnnode.studies claims and statistics: verdicts from intervals, records, tests behind them."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from rnnode.studies import (
    Context,
    bootstrap_interval,
    format_claim,
    holm,
    mean_test,
    minimum_detectable_effect,
    sign_test,
    spearman,
)
from rnnode.studies._claims import (
    NO_EFFECT,
    UNDERPOWERED,
    check_claims,
    finding_record,
    verdict,
    verification_record,
)


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
    # the MDE from the interval read as a t interval on 19 df
    se = 0.25 / stats.t.ppf(0.975, 19)
    assert record["mde"] == pytest.approx(minimum_detectable_effect(se, 19), rel=1e-12)
    assert line.endswith(f"20 seeds, sign test, p = 0.01, MDE {record['mde']:.4g} -> supported")


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
        ({"effect": 0.0}, ValueError, "effect"),
        ({"mde": -1.0}, ValueError, "mde"),
        ({"p_value": 0.3, "same_test": True}, ValueError, "p_value: 0.3 from the interval"),
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


def test_bootstrap_interval_of_a_mean_is_close_to_the_t_interval_and_is_seeded():
    rng = np.random.default_rng(1)
    samples = rng.normal(2.0, 1.0, size=200)
    lo, hi = bootstrap_interval(samples, seed=3)
    t_lo, t_hi = stats.t.interval(0.95, 199, loc=samples.mean(), scale=stats.sem(samples))
    # For 200 normal samples the BCa bootstrap and the t interval agree to a few percent of
    # their width (resampling noise at 10,000 draws and the 1/sqrt(n) bias).
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
    with pytest.raises(ValueError, match=r"claims\['a'\]: reading 'underpowered' does not"):
        check_claims({"a": {**good, "reading": UNDERPOWERED}})


def _finding(interval, effect=None, p_value=None, same_test=False):
    return finding_record(
        "s",
        value=0.0 if math.isinf(interval[0]) else sum(interval) / 2,
        comparison=">",
        bound=0.0,
        interval=interval,
        control=None,
        control_label="c",
        seeds=10,
        p_value=p_value,
        effect=effect,
        same_test=same_test,
    )


def test_an_inconclusive_finding_reads_no_effect_only_when_its_mde_is_below_the_stated_effect():
    mde = _finding((-0.1, 0.1))["mde"]
    assert 0.1 < mde < 0.2  # (0.1 / t_0.975,9) * (t_0.975,9 + t_0.8,9 approx.)
    assert _finding((-0.1, 0.1), effect=mde)["reading"] == NO_EFFECT
    assert _finding((-0.1, 0.1), effect=0.5 * mde)["reading"] == UNDERPOWERED
    assert _finding((-0.1, 0.1))["reading"] == UNDERPOWERED  # no relevant effect stated
    assert _finding((0.1, 0.3), effect=0.01)["reading"] == "supported"
    assert _finding((-math.inf, math.inf), effect=1.0)["mde"] == math.inf
    line = format_claim("x", _finding((-0.1, 0.1), effect=1.0))
    assert line.endswith(f"vs relevant effect 1 -> inconclusive: {NO_EFFECT} = {mde:.4g}")


def test_a_p_value_from_the_intervals_own_test_must_agree_with_the_verdict():
    assert _finding((0.1, 0.3), p_value=0.01, same_test=True)["verdict"] == "supported"
    assert _finding((-0.1, 0.3), p_value=0.5, same_test=True)["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="disagrees with its verdict 'inconclusive'"):
        _finding((-0.1, 0.3), p_value=0.01, same_test=True)
    _finding((-0.1, 0.3), p_value=0.01)  # a p from another test (a sign test) may differ
    bad = {**_finding((-0.1, 0.3), p_value=0.5, same_test=True), "p_value": 0.01}
    with pytest.raises(ValueError, match="disagrees with its test's verdict"):
        check_claims({"a": bad})


def test_context_records_t_findings_holm_p_values_and_verifications_over_seeds(tmp_path):
    ctx = Context("t", tmp_path)
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.5, size=10), rng.normal(0.0, 0.5, size=10)
    assert (
        ctx.finding_over_seeds(
            "a", "above", a, comparison=">", bound=0.0, control=0.0, control_label="c"
        )
        == "supported"
    )
    ctx.finding_over_seeds(
        "b", "above", b, comparison=">", bound=0.0, control=0.0, control_label="c", effect=2.0
    )
    scores = rng.normal(0.2, 1.0, size=(5, 30))
    ctx.finding_over_seeds(
        "c", "items", scores, comparison="<", bound=1.0, control=None, control_label="c"
    )
    assert ctx.verify_over_seeds("v", "true by construction", b, comparison="<", bound=5.0)
    claims = ctx.claims
    expected = mean_test(a, 0.0)
    assert claims["a"]["interval"] == list(expected.interval)
    assert claims["a"]["p_value"] == expected.p_value and claims["a"]["mde"] == expected.mde
    assert claims["a"]["same_test"] and claims["a"]["seeds"] == 10
    assert claims["b"]["verdict"] == "inconclusive" and claims["b"]["reading"] == NO_EFFECT
    assert claims["c"]["seeds"] == 5 and claims["c"]["interval"] == list(
        mean_test(scores, 1.0).interval
    )
    assert "30 test items" in claims["c"]["test"]
    raw = [claims[k]["p_value"] for k in "abc"]
    assert [claims[k]["p_holm"] for k in "abc"] == holm(raw)
    assert all(claims[k]["findings"] == 3 for k in "abc")
    assert claims["v"]["kind"] == "verification" and claims["v"]["value"] == pytest.approx(b.mean())
    assert "Holm" in format_claim("a", claims["a"]) and "over 3 findings" in format_claim(
        "a", claims["a"]
    )
    check_claims(claims)
    wrong = {k: dict(c) for k, c in claims.items()}
    wrong["a"]["p_holm"] = raw[0]
    with pytest.raises(ValueError, match=r"claims\['a'\]: p_holm"):
        check_claims(wrong)
    with pytest.raises(ValueError, match="comparison"):
        ctx.verify_over_seeds("w", "s", b, comparison="==", bound=0.0)


def _report(quick: bool) -> str:
    from rnnode.studies._claims import holm_adjust
    from rnnode.studies._report import report_html

    claims = {
        "up": _finding((0.1, 0.3), p_value=0.001, same_test=True),
        "down": _finding((-0.3, -0.1), p_value=0.002, same_test=True),
        "open": _finding((-0.1, 0.3), p_value=0.4, same_test=True),
        "theorem": verification_record("a bound holds by construction", True),
        "broken": verification_record("code equals formula", False),
    }
    holm_adjust(claims)
    config = {"study": "demo", "description": "d", "arguments": {"quick": quick}}
    return report_html(config, {"claims": claims}, [])


def test_report_colours_verdicts_apart_and_lists_verifications_separately():
    text = _report(quick=False)
    assert "QUICK" not in text
    style = text[text.index("<style>") : text.index("</style>")]
    inconclusive = style[style.index(".inconclusive{") :].split("}")[0]
    assert "#b00" not in inconclusive and "#070" not in inconclusive  # neither red nor green

    def colour(cls: str) -> str:
        rule = next(r for r in style.split("}") if re.search(rf"\.{cls}[,{{]", r))
        return re.search(r"(?<!-)color:([^;}]+)", rule).group(1)

    colours = {c: colour(c) for c in ("supported", "not-supported", "inconclusive")}
    assert len(set(colours.values())) == 3, colours  # three verdicts, three colours
    assert "<span class='supported'>supported</span>" in text
    assert "<span class='not-supported'>not supported</span>" in text
    assert "<span class='inconclusive'>inconclusive: underpowered" in text
    findings, verifications = (
        text.index("<h2>Findings (3)</h2>"),
        text.index("<h2>Verifications (2)</h2>"),
    )
    assert findings < text.index("<td>open</td>") < verifications < text.index("<td>theorem</td>")
    assert "1 of 2 hold" in text and "<span class='fails'>FAILS</span>" in text
    assert "<td>0.003</td>" in text  # down's Holm p: 2 x 0.002 (up's 3 x 0.001 = 0.003 too)
    assert "<td>0.4</td>" in text  # open's raw p; Holm: max(0.4, ...) = 0.4


def test_a_quick_runs_report_says_quick_at_the_top():
    text = _report(quick=True)
    body = text[text.index("<body>") :]
    assert body.index("QUICK run") < body.index("<h1>")
    assert "<title>demo (QUICK)</title>" in text
