"""Claims a study records: verifications (the code equals a formula, a theorem holds) and findings
(what trained or random networks do), each with its evidence.

A *finding* is a pre-registered comparison: the measured ``value`` (a statistic over seeds), the
``comparison`` and ``bound`` written before the data, the ``control`` it is judged against (an
untrained or shuffled network, a baseline, theory), the number of ``seeds`` and a 95%
``interval`` of the value. Its verdict follows from the interval alone:

- ``"supported"``: the whole interval satisfies ``value <comparison> bound``;
- ``"not supported"``: the whole interval violates it;
- ``"inconclusive"``: the interval straddles the bound.

A *verification* records that a computation matched its reference; it is labelled as such in the
report, never counted as a finding, and the same check lives in ``tests/``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
VERDICTS = ("supported", "not supported", "inconclusive")


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
    test: str = "bootstrap over seeds",
    p_value: float | None = None,
) -> dict[str, Any]:
    """The plain record of a finding (see the module docstring), with its verdict."""
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
    result = verdict(comparison, bound, (lo, hi))
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
        "verdict": result,
        "holds": result == "supported",
    }


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


def _g(x: float | str | None) -> str:
    # Metrics store non-finite numbers as "inf", "-inf", "nan" (strict JSON has none).
    return "n/a" if x is None else f"{float(x):.4g}"


def format_claim(name: str, record: Mapping[str, Any]) -> str:
    """One line: kind, name, value with its interval against the bound, control, verdict."""
    if record.get("kind") == "finding":
        lo, hi = record["interval"]
        control = record["control"]
        return (
            f"finding {name}: {_g(record['value'])} [{_g(lo)}, {_g(hi)}] "
            f"{record['comparison']} {_g(record['bound'])}; control ({control['label']}) "
            f"{_g(control['value'])}; {record['seeds']} seeds, {record['test']}"
            + ("" if record.get("p_value") is None else f", p = {record['p_value']:.3g}")
            + f" -> {record['verdict']}"
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
    seeds, a test, and the verdict ``verdict(comparison, bound, interval)``.

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
        missing = {"value", "comparison", "bound", "interval", "control", "seeds", "test"} - set(c)
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
