"""Study runs: one run's folder, config, metrics, figures and report, written all or nothing.

A study is a module ``studies/<name>.py`` (a name without a leading underscore) whose docstring's
first line says what it produces and which defines ``run(ctx: Context) -> dict`` (see
``_registry``). ``run_study`` gives the study fixed seeds and float64, calls ``run`` and writes:

- ``config.json``: the arguments, seed, package versions, platform, git commit and how many sweep
  points were reused;
- ``metrics.json``: what ``run`` returned plus the claims it recorded (``ctx.verify``,
  ``ctx.finding``), sorted keys and no timestamps, so the same seed gives the same bytes on the
  CPU;
- ``<figure>.png`` and ``<figure>.pdf`` for every ``ctx.figure``;
- ``report.html``: the claims, each figure with its numbers, and the full metrics table;
- ``<sweep>/<key>.json``: one file per sweep point.

The full setting's run lives in ``OUT/<name>/``, the quick one's in ``OUT/<name>-quick/`` (a
study's name has no ``-``, so the two never share a folder: a quick run cannot overwrite a full
run's report, metrics or sweep points). A run writes into a staging folder
``OUT/.<folder>.partial/`` and replaces the old run only when it completes; an interrupted run
leaves the old one untouched, and a rerun reuses the sweep points of both.

This module re-exports the names the studies import (``Context``, ``one_thread``,
``train_with``, ``settings_for``, ...), which live in ``_context``, ``_io``, ``_seeds``,
``_registry`` and ``_report``.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from ._context import Context, settings_for, train_with
from ._io import atomic_write, json_bytes, plain, read_json, write_json
from ._registry import describe, discover, study_name
from ._report import report_html
from ._seeds import one_thread, seeded
from ._sweep import _check_scheduler, _check_workers

__all__ = [
    "VERSIONED",
    "Context",
    "atomic_write",
    "claims_hold",
    "describe",
    "discover",
    "json_bytes",
    "one_thread",
    "plain",
    "read_json",
    "run_folder",
    "run_study",
    "seeded",
    "settings_for",
    "study_name",
    "train_with",
    "write_json",
]

#: Packages whose versions go into every config.json.
VERSIONED = ("rnnode", "torch", "torchdiffeq", "numpy", "scipy", "sympy", "matplotlib")
#: Seeds are integers in [0, SEED_LIMIT): studies add small offsets and torch takes < 2**64.
SEED_LIMIT = 2**63


def run_folder(out: str | os.PathLike, name: str, quick: bool) -> Path:
    """The folder of a study's run: ``out/<name>/`` (full setting) or ``out/<name>-quick/``."""
    return Path(out) / (f"{name}-quick" if quick else name)


def _stage(final: Path) -> tuple[Path, Path]:
    """Prepare the staging folder of a run whose result goes to ``final``.

    Files left at the top of an interrupted run's staging folder go (they belong to no complete
    run); its sweep folders stay, and the sweep folders of the completed run (or of one caught
    between the two renames of ``_commit``) are copied in, so a rerun reuses their points.

    Returns:
        ``(staging, old)``: the staging folder (exists) and where ``_commit`` parks the old run.
    """
    staging = final.with_name(f".{final.name}.partial")
    old = final.with_name(f".{final.name}.old")
    staging.mkdir(parents=True, exist_ok=True)
    for path in staging.iterdir():
        if not path.is_dir():
            path.unlink()
    for source in (final, old):
        if source.is_dir():
            for sub in source.iterdir():
                if sub.is_dir():
                    shutil.copytree(sub, staging / sub.name, dirs_exist_ok=True)
    return staging, old


def _commit(staging: Path, final: Path, old: Path) -> None:
    """Replace ``final`` by the completed ``staging`` folder: two renames, then drop the old run.

    Between the renames ``final`` is missing for an instant; ``_stage`` recovers the old run's
    sweep points from ``old`` if a crash falls there.
    """
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    if old.exists():
        shutil.rmtree(old)


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
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an integer, got {type(seed).__name__}")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed: expected an integer in [0, 2**63), got {seed!r}")
    _check_workers(workers)
    _check_scheduler(scheduler)


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
    """Run one study into ``out/<name>/`` (``out/<name>-quick/`` when quick) and write its files.

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

    Raises:
        OSError: ``out`` cannot hold the run's folder (a file, or not writable).
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
    final = run_folder(out, name, bool(quick))
    folder, old = _stage(final)
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
    write_json(folder / "config.json", config)
    ctx = Context(name, folder, bool(quick), seed, workers, scheduler, show_progress)
    with seeded(seed):
        result = module.run(ctx)
    if not isinstance(result, Mapping):
        raise ValueError(f"{name}.run: expected a dict of metrics, got {type(result).__name__}")
    if "claims" in result:
        raise ValueError(f"{name}.run: the key 'claims' is reserved for ctx.verify and ctx.finding")
    metrics = plain({**result, "claims": ctx.claims}, "metrics")
    write_json(folder / "metrics.json", metrics)
    config["sweeps"] = ctx.sweeps
    write_json(folder / "config.json", config)
    atomic_write(folder / "report.html", report_html(config, metrics, ctx.figures).encode())
    _commit(folder, final, old)
    for sweep_name, counts in ctx.sweeps.items():
        if counts["reused"]:
            print(
                f"{name}: sweep {sweep_name}: reused {counts['reused']} of {counts['points']} "
                f"saved points, computed {counts['computed']}",
                file=sys.stderr,
            )
    return metrics


def claims_hold(metrics: Mapping[str, Any]) -> bool:
    """Whether every claim recorded in ``metrics`` holds."""
    return all(c["holds"] for c in metrics.get("claims", {}).values())
