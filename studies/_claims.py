"""Claims a study records: verifications (the code equals a formula, a theorem holds) and findings
(what trained or random networks do), each with its evidence.

A *finding* is a pre-registered comparison that could come out either way: the measured
``value`` (a statistic over seeds), the ``comparison`` and ``bound`` written before the data, the
``control`` it is judged against (an untrained or shuffled network, a baseline), the number of
``seeds`` and a 95% ``interval`` of the value. Its verdict follows from the interval alone:

- ``"supported"``: the whole interval satisfies ``value <comparison> bound``;
- ``"not supported"``: the whole interval violates it;
- ``"inconclusive"``: the interval straddles the bound.

Where the p-value comes from the same test as the interval (``same_test``, as in
``Context.finding_over_seeds``), the verdict is conclusive exactly when p < 0.05: a one-sided rule
``> bound`` is supported exactly when the one-sided test rejects at 2.5%.

Every finding carries its minimum detectable effect ``mde`` (80% power, two-sided 5%; see
``_stats.minimum_detectable_effect``) and may state ``effect``, the smallest departure from the
bound that matters in practice (the rule's margin: for ``bound = baseline + margin``, the
margin). An inconclusive finding then *reads* (``reading``):

- ``"no effect larger than MDE"`` when ``mde <= effect``: the test had 80% power against every
  departure that matters and found none;
- ``"underpowered"`` otherwise, and always when no ``effect`` is stated (a study that does not say
  which effect matters cannot claim to have excluded it).

A conclusive finding reads as its verdict. ``p_holm`` is the Holm-adjusted p-value over all the
findings of the run that have a p-value (``holm_adjust``), ``findings`` the size of that family.

A *verification* records that a computation matched its reference, or something true by
construction (a theorem, an objective's optimum, a count the code must reproduce); it is labelled
as such in the report, never counted as a finding, and the same check lives in ``tests/``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from ._stats import LEVEL, holm, minimum_detectable_effect

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
VERDICTS = ("supported", "not supported", "inconclusive")
#: What an inconclusive finding reads as (see the module docstring).
NO_EFFECT, UNDERPOWERED = "no effect larger than MDE", "underpowered"


def _number(name: str, value: object, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value


def verdict(comparison: str, bound: float, interval: Sequence[float]) -> str:
    """The verdict of ``value <comparison> bound`` given the value's interval ``(lo, hi)``."""
    if comparison not in COMPARISONS:
        raise ValueError(f"comparison: expected one of {tuple(COMPARISONS)}, got {comparison!r}")
    lo, hi = interval
    holds = COMPARISONS[comparison]
    if holds(lo, bound) and holds(hi, bound):
        return "supported"
    if not holds(lo, bound) and not holds(hi, bound):
        return "not supported"
    return "inconclusive"


def interval_mde(interval: Sequence[float], seeds: int) -> float:
    """The MDE of a finding that gives only its 95% interval: the interval read as a t interval
    on ``seeds - 1`` df, se = (hi - lo) / (2 t_{0.975, seeds - 1}). Infinite for an unbounded
    interval or one seed."""
    lo, hi = float(interval[0]), float(interval[1])
    if seeds < 2 or not (math.isfinite(lo) and math.isfinite(hi)):
        return math.inf
    se = (hi - lo) / (2 * float(stats.t.ppf(0.5 + LEVEL / 2, seeds - 1)))
    return minimum_detectable_effect(se, seeds - 1)


def reading(result: str, mde: float, effect: float | None) -> str:
    """How a finding reads: its verdict, or for an inconclusive one ``NO_EFFECT`` (the MDE is at
    most the stated relevant ``effect``) or ``UNDERPOWERED``."""
    if result != "inconclusive":
        return result
    return NO_EFFECT if effect is not None and mde <= effect else UNDERPOWERED


def finding_record(
    statement: str,
    *,
    value: float,
    comparison: str,
    bound: float,
    interval: Sequence[float],
    control: float | None,
    control_label: str,
    seeds: int,
    test: str = "interval given by the study",
    p_value: float | None = None,
    mde: float | None = None,
    effect: float | None = None,
    same_test: bool = False,
) -> dict[str, Any]:
    """The plain record of a finding (see the module docstring), with its verdict and reading.

    ``mde`` defaults to ``interval_mde(interval, seeds)``; ``same_test`` says that ``p_value``
    and ``interval`` come from one test (then a conclusive verdict must have p < 0.05).
    """
    if not isinstance(statement, str) or not statement:
        raise ValueError(f"statement: expected the claim in words, got {statement!r}")
    value = _number("value", value)
    bound = _number("bound", bound)
    if len(interval) != 2:
        raise ValueError(f"interval: expected (low, high), got {interval!r}")
    lo = _number("interval", interval[0], allow_inf=True)
    hi = _number("interval", interval[1], allow_inf=True)
    if not lo <= hi:
        raise ValueError(f"interval: expected low <= high, got ({lo}, {hi})")
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds: expected a positive integer, got {seeds!r}")
    if not isinstance(control_label, str) or not control_label:
        raise ValueError(f"control_label: expected what the control is, got {control_label!r}")
    if p_value is not None:
        p_value = _number("p_value", p_value)
        if not 0 <= p_value <= 1:
            raise ValueError(f"p_value: expected a probability, got {p_value}")
    mde = interval_mde((lo, hi), int(seeds)) if mde is None else _number("mde", mde, allow_inf=True)
    if mde < 0:
        raise ValueError(f"mde: expected a non-negative number, got {mde}")
    if effect is not None:
        effect = _number("effect", effect)
        if effect <= 0:
            raise ValueError(
                f"effect: expected the smallest effect that matters (> 0), got {effect}"
            )
    result = verdict(comparison, bound, (lo, hi))
    if same_test and p_value is not None and not _agrees(result, p_value, lo, hi):
        raise ValueError(
            f"p_value: {p_value:.4g} from the interval's test disagrees with its verdict {result!r}"
        )
    return {
        "kind": "finding",
        "statement": statement,
        "value": value,
        "comparison": comparison,
        "bound": bound,
        "interval": [lo, hi],
        "control": {
            "label": control_label,
            "value": None if control is None else _number("control", control, allow_inf=True),
        },
        "seeds": int(seeds),
        "test": test,
        "p_value": p_value,
        "same_test": bool(same_test),
        "mde": mde,
        "effect": effect,
        "verdict": result,
        "reading": reading(result, mde, effect),
        "holds": result == "supported",
    }


def _agrees(result: str, p_value: float, lo: float, hi: float) -> bool:
    """A test's verdict and its own p agree: conclusive exactly when p < 1 - LEVEL (a point
    interval, no spread at all, is exempt: there the rule is read off the point)."""
    if lo == hi:
        return True
    return (result != "inconclusive") == (p_value < 1 - LEVEL)


def verification_record(
    statement: str, holds: bool, *, value: float | None = None, bound: float | None = None
) -> dict[str, Any]:
    """The plain record of a verification: a computation checked against its reference."""
    if not isinstance(statement, str) or not statement:
        raise ValueError(f"statement: expected the check in words, got {statement!r}")
    return {
        "kind": "verification",
        "statement": statement,
        "holds": bool(holds),
        "value": None if value is None else float(value),
        "bound": None if bound is None else float(bound),
    }


def holm_adjust(claims: MutableMapping[str, dict[str, Any]]) -> None:
    """Set ``p_holm`` (Holm-adjusted over every finding with a p-value) and ``findings`` (the
    number of findings) on every finding of ``claims``, in place."""
    findings = {k: c for k, c in claims.items() if c.get("kind") == "finding"}
    tested = [k for k, c in findings.items() if c.get("p_value") is not None]
    adjusted = dict(zip(tested, holm([float(findings[k]["p_value"]) for k in tested]), strict=True))
    for key, c in findings.items():
        c["p_holm"] = adjusted.get(key)
        c["findings"] = len(findings)


def _g(x: float | str | None) -> str:
    # Metrics store non-finite numbers as "inf", "-inf", "nan" (strict JSON has none).
    return "n/a" if x is None else f"{float(x):.4g}"


def finding_outcome(record: Mapping[str, Any]) -> str:
    """The verdict; for an inconclusive finding with its reading ("no effect larger than MDE = x"
    or "underpowered")."""
    if record["verdict"] != "inconclusive" or "reading" not in record:
        return record["verdict"]
    if record["reading"] == NO_EFFECT:
        return f"inconclusive: {NO_EFFECT} = {_g(record.get('mde'))}"
    return f"inconclusive: {record['reading']}"


def format_claim(name: str, record: Mapping[str, Any]) -> str:
    """One line: kind, name, value with its interval against the bound, control, test, p (raw and
    Holm-adjusted), MDE, verdict."""
    if record.get("kind") == "finding":
        lo, hi = record["interval"]
        control = record["control"]
        p = "" if record.get("p_value") is None else f", p = {float(record['p_value']):.3g}"
        if p and record.get("p_holm") is not None:
            p += f" (Holm {float(record['p_holm']):.3g} over {record['findings']} findings)"
        mde = "" if "mde" not in record else f", MDE {_g(record['mde'])}"
        if record.get("effect") is not None:
            mde += f" vs relevant effect {_g(record['effect'])}"
        return (
            f"finding {name}: {_g(record['value'])} [{_g(lo)}, {_g(hi)}] "
            f"{record['comparison']} {_g(record['bound'])}; control ({control['label']}) "
            f"{_g(control['value'])}; {record['seeds']} seeds, {record['test']}{p}{mde}"
            f" -> {finding_outcome(record)}"
        )
    mark = "holds" if record["holds"] else "FAILS"
    detail = (
        "" if record.get("value") is None else f" ({_g(record['value'])} vs {_g(record['bound'])})"
    )
    return f"verification {name}{detail} -> {mark}"


def check_claims(claims: Mapping[str, Mapping[str, Any]]) -> None:
    """Check that recorded claims carry their evidence and that each verdict follows from it.

    Every claim is a verification (``holds``, ``statement``) or a finding with a finite value,
    an interval ``lo <= hi``, a bound and comparison, a labelled control, a positive number of
    seeds, a test, the verdict ``verdict(comparison, bound, interval)``, an MDE and the reading
    that follows from verdict, MDE and relevant effect; a p-value from the interval's own test
    agrees with the verdict, and the Holm-adjusted p-values are those of the run's findings.

    Raises:
        ValueError: naming the first claim that does not, and what is wrong with it.
    """
    for name, c in claims.items():
        kind = c.get("kind")
        if kind == "verification":
            if not isinstance(c.get("holds"), bool) or not c.get("statement"):
                raise ValueError(f"claims[{name!r}]: a verification needs holds and a statement")
            continue
        if kind != "finding":
            raise ValueError(f"claims[{name!r}]: expected kind 'finding' or 'verification'")
        needed = {"value", "comparison", "bound", "interval", "control", "seeds", "test", "mde"}
        missing = needed - set(c)
        if missing:
            raise ValueError(f"claims[{name!r}]: a finding lacks {sorted(missing)}")
        lo, hi = (float(v) for v in c["interval"])
        if not (math.isfinite(float(c["value"])) and lo <= hi):
            raise ValueError(f"claims[{name!r}]: value {c['value']} and interval {c['interval']}")
        if not c["control"].get("label") or int(c["seeds"]) < 1:
            raise ValueError(f"claims[{name!r}]: expected a labelled control and seeds >= 1")
        expected = verdict(c["comparison"], float(c["bound"]), (lo, hi))
        if c["verdict"] != expected or c["holds"] != (expected == "supported"):
            raise ValueError(
                f"claims[{name!r}]: verdict {c['verdict']!r} does not follow from the interval "
                f"({expected!r})"
            )
        effect = None if c.get("effect") is None else float(c["effect"])
        if c.get("reading") != reading(expected, float(c["mde"]), effect):
            raise ValueError(
                f"claims[{name!r}]: reading {c.get('reading')!r} does not follow from the verdict, "
                f"MDE {c['mde']} and relevant effect {effect}"
            )
        p = c.get("p_value")
        if c.get("same_test") and p is not None and not _agrees(expected, float(p), lo, hi):
            raise ValueError(f"claims[{name!r}]: p = {p} disagrees with its test's verdict")
    findings = {k: c for k, c in claims.items() if c.get("kind") == "finding"}
    if any("p_holm" in c for c in findings.values()):
        tested = [k for k, c in findings.items() if c.get("p_value") is not None]
        adjusted = holm([float(findings[k]["p_value"]) for k in tested])
        for key, p_holm in zip(tested, adjusted, strict=True):
            got = findings[key].get("p_holm")
            if got is None or not math.isclose(float(got), p_holm, rel_tol=1e-12, abs_tol=0):
                raise ValueError(f"claims[{key!r}]: p_holm {got} is not Holm's {p_holm}")
