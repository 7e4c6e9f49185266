"""The HTML report of a run: a QUICK banner for quick runs, findings (how many, verdicts coloured
by kind, raw and Holm-adjusted p, MDE) and verifications in separate tables, figures with their
numbers, metrics and configuration."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._claims import VERDICTS, finding_outcome, format_claim


@dataclass
class FigureRecord:
    """A saved figure as the report lists it."""

    name: str
    caption: str
    numbers: dict[str, Any]


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        rows = []
        for k in sorted(value):
            rows += _flatten(value[k], f"{prefix}.{k}" if prefix else k)
        return rows
    return [(prefix, value)]


def _cell(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    if isinstance(value, float):
        text = f"{value:.6g}"
    if len(text) > 160:
        text = text[:157] + "..."
    return html.escape(text)


def _table(rows: Iterable[tuple[str, Any]], head: tuple[str, str]) -> str:
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<table><tr><th>{head[0]}</th><th>{head[1]}</th></tr>{body}</table>"


_STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left;font-family:monospace}img{max-width:100%}"
    ".supported,.holds{color:#070;font-weight:bold}.not-supported,.fails{color:#b00;"
    "font-weight:bold}.inconclusive{color:#555;font-style:italic}"
    ".quick{background:#fd4;color:#000;padding:.5em 1em;font-size:1.4em;font-weight:bold}"
)
#: CSS class of each verdict (inconclusive is grey, not red: the data did not decide).
_VERDICT_CLASS = {"supported": "supported", "not supported": "not-supported"}


def _findings(claims: Mapping[str, Any]) -> list[str]:
    findings = {k: c for k, c in claims.items() if c.get("kind") == "finding"}
    counts = {v: sum(c["verdict"] == v for c in findings.values()) for v in VERDICTS}
    tested = sum(c.get("p_value") is not None for c in findings.values())
    parts = [
        f"<h2>Findings ({len(findings)})</h2><p>{len(findings)} findings: "
        f"<span class='supported'>{counts['supported']} supported</span>, "
        f"<span class='not-supported'>{counts['not supported']} not supported</span>, "
        f"<span class='inconclusive'>{counts['inconclusive']} inconclusive</span>. "
        f"Verdicts from each finding's 95% interval; p raw and Holm-adjusted over the "
        f"{tested} findings with a p-value; MDE: the smallest departure from the bound its test "
        "detects with 80% power.</p>",
        "<table><tr><th>finding</th><th>statement</th><th>evidence</th><th>p</th>"
        "<th>p (Holm)</th><th>MDE</th><th>verdict</th></tr>",
    ]
    for key, c in sorted(findings.items()):
        css = _VERDICT_CLASS.get(c["verdict"], "inconclusive")
        evidence = format_claim(key, c).split(": ", 1)[-1].rsplit(" -> ", 1)[0]
        evidence = evidence.split(", p = ")[0].split(", MDE ")[0]
        parts.append(
            f"<tr><td>{html.escape(key)}</td><td>{html.escape(c['statement'])}</td>"
            f"<td>{html.escape(evidence)}</td><td>{_p(c.get('p_value'))}</td>"
            f"<td>{_p(c.get('p_holm'))}</td><td>{_p(c.get('mde'))}</td>"
            f"<td><span class='{css}'>{html.escape(finding_outcome(c))}</span></td></tr>"
        )
    parts.append("</table>")
    return parts


def _p(value: Any) -> str:
    return "n/a" if value is None else html.escape(f"{float(value):.3g}")


def _verifications(claims: Mapping[str, Any]) -> list[str]:
    checks = {k: c for k, c in claims.items() if c.get("kind", "verification") == "verification"}
    held = sum(c["holds"] for c in checks.values())
    parts = [
        f"<h2>Verifications ({len(checks)})</h2><p>{held} of {len(checks)} hold. A verification "
        "checks a computation against its reference, or something true by construction (a "
        "theorem, an objective's optimum): it cannot come out the other way, so it is not a "
        "finding.</p><table><tr><th>verification</th><th>statement</th><th>evidence</th>"
        "<th>result</th></tr>",
    ]
    for key, c in sorted(checks.items()):
        mark = "holds" if c["holds"] else "FAILS"
        evidence = format_claim(key, c).split(key, 1)[-1].rsplit(" -> ", 1)[0].strip(" ()")
        parts.append(
            f"<tr><td>{html.escape(key)}</td><td>{html.escape(c['statement'])}</td>"
            f"<td>{html.escape(evidence)}</td><td><span class='{mark.lower()}'>{mark}</span>"
            "</td></tr>"
        )
    parts.append("</table>")
    return parts


def report_html(config: Mapping, metrics: Mapping, figures: Sequence[FigureRecord]) -> str:
    """The run's HTML page: QUICK banner (quick runs), findings, verifications, figures with their
    numbers, metrics and configuration."""
    name = html.escape(config["study"])
    quick = bool(config.get("arguments", {}).get("quick"))
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}"
        f"{' (QUICK)' if quick else ''}</title><style>{_STYLE}</style></head><body>",
    ]
    if quick:
        parts.append(
            "<p class='quick'>QUICK run: the small, fast setting (few seeds, short training). "
            "Its numbers test the code, not the claims; the full run's report has the results."
            "</p>"
        )
    parts.append(f"<h1>{name}</h1><p>{html.escape(config['description'])}</p>")
    parts += _findings(metrics["claims"])
    parts += _verifications(metrics["claims"])
    parts.append("<h2>Figures</h2>")
    for f in figures:
        stem = html.escape(f.name)
        parts.append(
            f"<h3>{stem}</h3><img src='{stem}.png' alt='{stem}'>"
            f"<p>{html.escape(f.caption)} (<a href='{stem}.png'>PNG</a>, "
            f"<a href='{stem}.pdf'>PDF</a>)</p>"
        )
        if f.numbers:
            parts.append(_table(_flatten(f.numbers), ("number", "value")))
    metric_rows = [(k, v) for k, v in _flatten(metrics) if not k.startswith("claims.")]
    parts.append("<h2>Metrics</h2>" + _table(metric_rows, ("metric", "value")))
    settings = [(k, v) for k, v in _flatten(config) if k not in ("study", "description")]
    parts.append("<h2>Configuration</h2>" + _table(settings, ("setting", "value")))
    parts.append("</body></html>\n")
    return "".join(parts)
