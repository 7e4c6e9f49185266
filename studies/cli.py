"""The ``rnnode-study`` command: list the studies, run one or all of them.

Usage::

    rnnode-study list
    rnnode-study run NAME [--quick] [--seed S] [--out DIR] [--workers N] [--scheduler ADDRESS]
    rnnode-study run all --quick      # the studies side by side, one per CPU (--workers)

Also ``python -m rnnode.studies.cli ...``. Exit status: 0 when every run completed (a claim the
data do not support is a finding, printed and recorded in metrics.json and the report, not a
crash); with ``--strict``, 1 when some claim does not hold; 2 for bad arguments (an unknown
study, a seed outside [0, 2**63), an ``--out`` that is a file or cannot be written, a scheduler
address Dask cannot parse (at once) or one that does not answer within ``CONNECT_TIMEOUT``
seconds), and for a study or ``--scheduler`` that needs a package of an extra that is not
installed (one line naming the extra).
``rnnode-study --version`` prints the installed version.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rnnode import __version__
from rnnode._extras import MissingExtraError

from ._claims import VERDICTS, format_claim
from ._run import SEED_LIMIT, claims_hold, describe, discover, run_folder, run_study
from ._sweep import _init_process, connect


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer below 2**63, got {text!r}"
        )
    return value


def _writable_folder(out: str) -> str | None:
    """Why ``out`` cannot hold runs (None if it can): it is a file, or it cannot be created or
    written."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        return f"--out: expected a folder, got the file {out!r}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        return f"--out: cannot write runs into {out!r} ({err.strerror or err})"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnode-study",
        description="Reproducible studies of stacked RNNs as continuous-time dynamical systems.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the studies with what each produces")
    run = commands.add_parser("run", help="run a study (or all) into OUT/NAME/")
    run.add_argument("name", help="a study's name (see 'list') or 'all'")
    run.add_argument("--quick", action="store_true", help="small, fast setting")
    run.add_argument("--seed", type=_seed, default=0, help="seed of the run (default 0)")
    run.add_argument("--out", default="runs", help="parent folder of the runs (default runs)")
    run.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="processes for sweeps, or for the studies of 'run all' (default: one per CPU; "
        "1: no extra processes)",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask distributed scheduler for sweeps, e.g. tcp://127.0.0.1:8786",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--strict", action="store_true", help="exit with status 1 when any claim does not hold"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rnnode-study``; returns the exit status.

    A study (or ``--scheduler``) that needs a package of an extra that is not installed ends
    with one line naming the extra, and status 2.
    """
    try:
        return _main(argv)
    except MissingExtraError as error:
        print(f"rnnode-study: {error}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    registry = discover()
    if args.command == "list":
        width = max((len(n) for n in registry), default=0)
        for name, module in registry.items():
            print(f"{name:<{width}}  {describe(module)}")
        return 0
    if args.name != "all" and args.name not in registry:
        parser.error(f"NAME: expected 'all' or one of {', '.join(registry)}; got {args.name!r}")
    names = list(registry) if args.name == "all" else [args.name]
    problem = _writable_folder(args.out)
    if problem:
        parser.error(problem)
    if args.scheduler is not None:
        try:
            connect(args.scheduler).close()
        except (ValueError, ConnectionError) as err:  # malformed at once, or no answer
            parser.error(f"--{err}")
    options = {"out": args.out, "quick": args.quick, "seed": args.seed}
    nworkers = args.workers or os.cpu_count() or 1
    if len(names) > 1 and nworkers > 1 and args.scheduler is None:
        # several studies on a local machine: the studies themselves run side by side, one
        # per process (each with its sweeps in that process), reported in registry order
        runs = _side_by_side(registry, names, options, min(nworkers, len(names)))
    else:
        more = {
            "workers": args.workers,
            "scheduler": args.scheduler,
            "show_progress": not args.no_progress,
        }
        runs = ((name, run_study(registry[name], **options, **more)) for name in names)
    failed = []
    for name, metrics in runs:
        claims = metrics["claims"]
        checks = [c for c in claims.values() if c.get("kind", "verification") == "verification"]
        findings = [c for c in claims.values() if c.get("kind") == "finding"]
        counts = {v: sum(c["verdict"] == v for c in findings) for v in VERDICTS}
        print(
            f"{name}: verifications {sum(c['holds'] for c in checks)}/{len(checks)} hold; "
            f"findings {counts['supported']} supported, {counts['not supported']} not "
            f"supported, {counts['inconclusive']} inconclusive -> "
            f"{os.fspath(run_folder(args.out, name, args.quick))}/"
        )
        for key, claim in sorted(claims.items()):
            print(f"  {format_claim(key, claim)}")
        if not claims_hold(metrics):
            failed.append(name)
    return 1 if failed and args.strict else 0


def _study_in_process(module: str, options: dict) -> dict:
    """Run the study module named ``module`` in this (worker) process, its sweeps in-process."""
    return run_study(importlib.import_module(module), **options, workers=1, show_progress=False)


def _side_by_side(registry: dict, names: Sequence[str], options: dict, nworkers: int) -> Iterator:
    """(name, metrics) of every study in ``names``, run on ``nworkers`` processes at once and
    yielded in the order of ``names`` as each completes. The processes die with this one."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        nworkers, mp_context=context, initializer=_init_process, initargs=(os.getpid(),)
    )
    try:
        futures = [
            pool.submit(_study_in_process, registry[name].__name__, options) for name in names
        ]
        for name, future in zip(names, futures, strict=True):
            yield name, future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


if __name__ == "__main__":
    sys.exit(main())
