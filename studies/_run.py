"""Study runs: the registry of studies and one run's folder, config, metrics, figures and report.

A study is a module ``studies/<name>.py`` (a name without a leading underscore) whose docstring's
first line says what it produces and which defines ``run(ctx: Context) -> dict``. Discovery is
automatic: adding the module registers the study. ``run_study`` gives the study a folder
``OUT/<name>/``, fixed seeds and float64, calls ``run`` and writes, each file atomically (a
temporary file in the same folder, then ``os.replace``):

- ``config.json``: the arguments, seed, package versions, platform and git commit;
- ``metrics.json``: what ``run`` returned plus the claims it checked (``ctx.claim``), sorted keys
  and no timestamps, so the same seed gives the same bytes on the CPU;
- ``<figure>.png`` and ``<figure>.pdf`` for every ``ctx.figure``;
- ``report.html``: the claims, each figure with its numbers, and the full metrics table.
"""

from __future__ import annotations

import html
import importlib
import io
import json
import math
import os
import pkgutil
import platform
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import rnnode
from rnnode._io import atomic_write

from ._claims import finding_record, format_claim, verification_record

#: Packages whose versions go into every config.json.
VERSIONED = ("rnnode", "torch", "torchdiffeq", "numpy", "scipy", "sympy", "matplotlib")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_NOT_STUDIES = ("cli",)  # modules of the package that are not studies


# -- files ------------------------------------------------------------------------------------


def plain(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data: dicts with str keys, lists, str, int, float, bool, None.

    Tensors and numpy arrays become (nested) lists, numpy scalars Python numbers, tuples lists.
    Non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (strict JSON has
    no such numbers). Anything else raises ValueError naming where it sits.
    """
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return plain(value.tolist(), where)
    if isinstance(value, np.generic):
        return plain(value.item(), where)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: expected string keys, got {k!r} ({type(k).__name__})")
            out[k] = plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(
        f"{where}: expected JSON data (dict, list, str, number, bool, None, tensor, array), "
        f"got {type(value).__name__}"
    )


def json_bytes(value: Any, where: str = "value") -> bytes:
    """Canonical JSON of ``value`` (see ``plain``): sorted keys, indent 2, a final newline."""
    text = json.dumps(plain(value, where), sort_keys=True, indent=2, allow_nan=False)
    return (text + "\n").encode()


def write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write ``value`` as canonical JSON, atomically."""
    return atomic_write(path, json_bytes(value, Path(path).name))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file (plain data only: ``json`` never executes anything)."""
    return json.loads(Path(path).read_text())


# -- seeds ------------------------------------------------------------------------------------


@contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread for a block, restoring the previous count after.

    Training the small stacks of the studies on several threads spends most of its time
    synchronising them (several times slower on 2 cores); sweep points run one per process anyway.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_with(model: torch.nn.Module, task: Any, settings: Mapping[str, Any], seed: int) -> dict:
    """``rnnode.training.train`` with a study's ``steps``, ``lr`` and ``batch_size`` settings, no
    bar."""
    return rnnode.training.train(
        model,
        task,
        steps=settings["steps"],
        lr=settings["lr"],
        batch_size=settings["batch_size"],
        seed=seed,
        progress=False,
    )


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under fixed seeds and float64 default dtype (and deterministic GPU kernels).

    Seeds Python's ``random``, numpy's global generator and torch; the previous states and dtype
    are restored on exit, so a run leaves no trace in the caller's session.

    Notes:
        ``torch.use_deterministic_algorithms`` is switched on only when CUDA is available: the
        CPU kernels rnnode uses are deterministic already, and the switch imports
        ``torch._inductor`` (about 2 s in every process, sweep workers included).
    """
    gpu = torch.cuda.is_available()
    saved = (
        random.getstate(),
        np.random.get_state(),
        torch.random.get_rng_state(),
        torch.get_default_dtype(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # Studies claim exactness in double precision.
    torch.set_default_dtype(torch.float64)
    if gpu:
        # warn_only: an op without a deterministic kernel warns rather than ending the run.
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.random.set_rng_state(saved[2])
        torch.set_default_dtype(saved[3])
        if gpu:
            torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


# -- registry ---------------------------------------------------------------------------------


def discover() -> dict[str, ModuleType]:
    """Every study: the modules of ``studies/`` without a leading underscore that define ``run``.

    Returns:
        ``{name: module}`` sorted by name, the name being the module's.
    """
    package = importlib.import_module(__package__)  # rnnode.studies, whatever the cwd holds
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in _NOT_STUDIES:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if callable(getattr(module, "run", None)):
            found[info.name] = module
    return dict(sorted(found.items()))


def describe(module: ModuleType) -> str:
    """A study's summary: the first paragraph of its docstring, on one line."""
    summary = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(summary.split())


def study_name(module: ModuleType) -> str:
    """A study's name: its module's name within ``studies``."""
    return module.__name__.rsplit(".", 1)[-1]


# -- one run ----------------------------------------------------------------------------------


@dataclass
class _Figure:
    name: str
    caption: str
    numbers: dict[str, Any]


@dataclass
class Context:
    """What a study's ``run`` gets: its settings, its folder and the ways to record results.

    Attributes:
        name: the study's name.
        folder: the run's folder ``OUT/<name>/`` (exists).
        quick: the small, fast setting (seconds; used by the tests).
        seed: the run's seed (already applied to random, numpy and torch).
        workers: processes for sweeps (None: one per CPU; 1: in this process).
        scheduler: address of a Dask distributed scheduler for sweeps (None: local processes).
        show_progress: whether ``progress`` draws bars.
    """

    name: str
    folder: Path
    quick: bool = False
    seed: int = 0
    workers: int | None = None
    scheduler: str | None = None
    show_progress: bool = True
    figures: list[_Figure] = field(default_factory=list)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)

    def figure(
        self,
        name: str,
        fig: Any,
        *,
        caption: str = "",
        numbers: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save a matplotlib figure as ``<name>.png`` and ``<name>.pdf`` in the run's folder.

        Arguments:
            name: file stem (letters, digits, ``_`` and ``-``), unique within the run.
            fig: a ``matplotlib.figure.Figure`` (build it with the ``Figure`` API: no pyplot
                state, no display needed).
            caption: what the figure shows, for the report.
            numbers: the numbers the figure illustrates, shown beside it in the report.

        Returns:
            The PNG's path.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"name: expected letters, digits, '_' or '-' (a file stem), got {name!r}"
            )
        if any(f.name == name for f in self.figures):
            raise ValueError(f"name: figure {name!r} was already saved in this run")
        # No creation date in the PDF and a fixed PNG software tag: reruns give equal files.
        for fmt, meta in (("png", {"Software": "rnnode"}), ("pdf", {"CreationDate": None})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=150, metadata=meta)
            atomic_write(self.folder / f"{name}.{fmt}", buffer.getvalue())
        self.figures.append(_Figure(name, caption, plain(dict(numbers or {}), "numbers")))
        return self.folder / f"{name}.png"

    def _record(self, name: str, record: dict[str, Any]) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name: expected letters, digits, '_' or '-', got {name!r}")
        if name in self.claims:
            raise ValueError(f"name: claim {name!r} was already recorded in this run")
        self.claims[name] = record

    def verify(
        self,
        name: str,
        holds: bool,
        statement: str,
        *,
        value: float | None = None,
        bound: float | None = None,
    ) -> bool:
        """Record a *verification*: a computation matched its reference (a formula, a theorem).

        Labelled as a verification in the report and never summarised as a finding; the same
        check belongs in ``tests/``. Returns ``holds`` as a bool.
        """
        self._record(name, verification_record(statement, holds, value=value, bound=bound))
        return bool(holds)

    def finding(
        self,
        name: str,
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
    ) -> str:
        """Record a *finding*, a pre-registered comparison with its evidence; return its verdict.

        Arguments:
            name: short identifier, unique within the run.
            statement: the claim in words.
            value: the measured statistic (for example the mean over seeds).
            comparison, bound: the rule, fixed before the data: ``value <comparison> bound``
                with ``comparison`` one of ``">", ">=", "<", "<="``.
            interval: the value's 95% interval (``rnnode.studies.bootstrap_interval`` or an
                exact test's).
            control, control_label: the control's value and what it is (untrained network,
                shuffled layers, baseline, theory).
            seeds: the number of seeds behind the value.
            test, p_value: the test behind the interval, and its p-value where it has one.

        Returns:
            ``"supported"``, ``"not supported"`` or ``"inconclusive"`` (see ``_claims``).
        """
        record = finding_record(
            statement,
            value=value,
            comparison=comparison,
            bound=bound,
            interval=interval,
            control=control,
            control_label=control_label,
            seeds=seeds,
            test=test,
            p_value=p_value,
        )
        self._record(name, record)
        return record["verdict"]

    def claim(self, name: str, holds: bool, statement: str) -> bool:
        """Record a check without evidence (older studies): reported as a verification."""
        return self.verify(name, holds, statement)

    def progress(self, iterable: Iterable, desc: str, total: int | None = None) -> Iterable:
        """``iterable`` with a tqdm progress bar (on stderr) labelled ``study: desc``."""
        return tqdm(
            iterable,
            desc=f"{self.name}: {desc}",
            total=total,
            disable=not self.show_progress,
            leave=False,
        )

    def sweep(
        self, fn: Callable[[dict], Any], points: Sequence[Mapping], *, name: str = "sweep"
    ) -> list:
        """Run ``fn`` over ``points`` with ``rnnode.studies._sweep.sweep`` on this run's workers or
        scheduler, each point's result kept in ``<folder>/<name>/`` (a rerun skips done points).
        """
        from ._sweep import sweep  # _sweep builds on this module's file helpers

        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"name: expected a folder name (letters, digits, _ or -), got {name!r}"
            )
        return sweep(
            fn,
            points,
            self.folder / name,
            workers=self.workers,
            scheduler=self.scheduler,
            desc=f"{self.name}: {name}",
            progress=self.show_progress,
        )


def _git_commit() -> str | None:
    """HEAD of the repository holding this package, or None (not a checkout, no git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = platform.python_version()
    return versions


def _check_settings(seed: object, workers: object, scheduler: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers: expected a positive integer or None, got {workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler):
        raise ValueError(
            f"scheduler: expected a Dask scheduler address such as 'tcp://127.0.0.1:8786' "
            f"or None, got {scheduler!r}"
        )


def run_study(
    study: str | ModuleType,
    *,
    out: str | os.PathLike = "runs",
    quick: bool = False,
    seed: int = 0,
    workers: int | None = None,
    scheduler: str | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run one study in its own folder ``out/<name>/`` and write its files.

    Arguments:
        study: a study's name (see ``discover``) or its module (anything with ``run(ctx)``).
        out: parent folder of the run's folder (created).
        quick: the small, fast setting.
        seed: seed of random, numpy and torch for the run.
        workers: processes for the study's sweeps (None: one per CPU; 1: in this process).
        scheduler: Dask distributed scheduler address for the study's sweeps.
        show_progress: draw tqdm progress bars.

    Returns:
        The metrics as written to ``metrics.json`` (plain JSON data), with ``"claims"``.
    """
    if isinstance(study, str):
        registry = discover()
        if study not in registry:
            raise ValueError(f"study: expected one of {tuple(registry)}, got {study!r}")
        module = registry[study]
    elif isinstance(study, ModuleType) and callable(getattr(study, "run", None)):
        module = study
    else:
        raise ValueError(f"study: expected a study name or a module defining run, got {study!r}")
    _check_settings(seed, workers, scheduler)
    name = study_name(module)
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "study": name,
        "description": describe(module),
        "arguments": {
            "quick": bool(quick),
            "seed": seed,
            "workers": workers,
            "scheduler": scheduler,
            "out": os.fspath(out),
        },
        "seed": seed,
        "command": list(sys.argv),
        "versions": _versions(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # A run that fails must not leave an earlier run's results beside its new config.
    for stale in ("metrics.json", "report.html"):
        (folder / stale).unlink(missing_ok=True)
    write_json(folder / "config.json", config)
    ctx = Context(name, folder, bool(quick), seed, workers, scheduler, show_progress)
    with seeded(seed):
        result = module.run(ctx)
    if not isinstance(result, Mapping):
        raise ValueError(f"{name}.run: expected a dict of metrics, got {type(result).__name__}")
    if "claims" in result:
        raise ValueError(f"{name}.run: the key 'claims' is reserved for ctx.claim")
    metrics = plain({**result, "claims": ctx.claims}, "metrics")
    write_json(folder / "metrics.json", metrics)
    atomic_write(folder / "report.html", _report(config, metrics, ctx.figures).encode())
    return metrics


def claims_hold(metrics: Mapping[str, Any]) -> bool:
    """Whether every claim recorded in ``metrics`` holds."""
    return all(c["holds"] for c in metrics.get("claims", {}).values())


# -- report -----------------------------------------------------------------------------------


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


def _report(config: Mapping, metrics: Mapping, figures: Sequence[_Figure]) -> str:
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
