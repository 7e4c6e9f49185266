"""The HTML report of a run: claims (one line each), figures with their numbers, metrics, config."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._claims import format_claim


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
    "text-align:left;font-family:monospace}img{max-width:100%}.ok{color:#070}.no{color:#b00}"
)


def report_html(config: Mapping, metrics: Mapping, figures: Sequence[FigureRecord]) -> str:
    """The run's HTML page: claims, figures with their numbers, metrics and configuration."""
    name = html.escape(config["study"])
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{name}</h1><p>{html.escape(config['description'])}</p>",
        "<h2>Claims</h2><table><tr><th>claim</th><th>kind</th><th>statement</th>"
        "<th>evidence</th><th>verdict</th></tr>",
    ]
    for key, c in sorted(metrics["claims"].items()):
        ok = c["holds"]
        label = c.get("verdict", "holds" if ok else "FAILS")
        mark = f"<span class='{'ok' if ok else 'no'}'>{html.escape(label)}</span>"
        evidence = format_claim(key, c).split(": ", 1)[-1].rsplit(" -> ", 1)[0]
        parts.append(
            f"<tr><td>{html.escape(key)}</td><td>{html.escape(c.get('kind', 'verification'))}"
            f"</td><td>{html.escape(c['statement'])}</td><td>{html.escape(evidence)}</td>"
            f"<td>{mark}</td></tr>"
        )
    parts.append("</table><h2>Figures</h2>")
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
