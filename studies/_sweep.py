"""Sweeps: one function over many points, in parallel processes or on a Dask cluster, resumable.

A *point* is a dict of JSON data (``{"depth": 8, "seed": 3}``); its *key* is a hash of its
canonical JSON, so the same point has the same key in every run, process and machine. The result
of point p goes to ``<folder>/<key>.json`` as ``{"key", "point", "result"}``, written atomically
as soon as the point finishes. A rerun reads the points already done and computes only the
others, so an interrupted or partly failed sweep loses nothing that finished.

Engines: ``workers=1`` runs in this process; otherwise a ``ProcessPoolExecutor`` of spawned
processes (no fork: torch's thread pools do not survive one), or, when ``scheduler`` names a Dask
distributed scheduler, the cluster behind it. Results travel back to this process, which writes
every file: workers need no access to the folder. Every point runs on one torch thread (the
small networks of the studies run several times slower on more), whatever the engine.

A local worker dies with its parent: on Linux the kernel sends it SIGKILL when the parent exits
(``PR_SET_PDEATHSIG``), and on every system a watchdog thread ends it within a second of finding
it orphaned, so a ``kill -9`` of the parent leaves no process behind holding its pipes.

A point file that cannot be read back (truncated, empty, not JSON, missing its fields, or
holding another point or key than its name says) is moved aside to ``<key>.json.bad`` with a
warning naming it, and the point is computed again.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rnnode._extras import require
from rnnode._validate import check_int

from ._io import json_bytes, plain, read_json, write_json
from ._seeds import one_thread, seeded

#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT = 5.0
#: Seconds between a worker's checks that its parent is alive.
_WATCH_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SweepError(RuntimeError):
    """Some points of a sweep raised; the others' results are saved. ``failed``: (point, error)."""

    def __init__(self, message: str, failed: list[tuple[dict, BaseException]]):
        super().__init__(message)
        self.failed = failed


def point_key(point: Mapping[str, Any]) -> str:
    """The stable key of a point: the first 16 hex digits of the SHA-256 of its canonical JSON.

    Canonical JSON sorts keys, so ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` share a key;
    ``1`` and ``1.0`` do not (JSON tells them apart, and so may the point's function).
    """
    text = json.dumps(plain(point, "point"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _seed_of(key: str) -> int:
    return int(key[:8], 16)


def _call_point(fn: Callable[[dict], Any], point: dict) -> Any:
    """Evaluate ``fn(point)`` under seeds derived from the point's key (see ``seeded``).

    The same point then gives the same result in any process, on any worker, in any order. The
    point runs on one torch thread (``one_thread``).
    """
    with seeded(_seed_of(point_key(point))), one_thread():
        return fn(point)


def _die_with_parent(parent: int) -> None:
    """End this process when ``parent`` (its parent's pid) exits, even by SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, the kernel's own notice. Everywhere: a daemon
    thread that polls ``os.getppid()`` (an orphan is re-parented) and exits at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still works
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_INTERVAL)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before the notice was in place
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _init_process(parent: int) -> None:
    """Initialiser of a pool worker: die with the parent; one torch thread."""
    _die_with_parent(parent)
    # One torch thread per process: N processes x N threads would oversubscribe the cores.
    import torch

    torch.set_num_threads(1)


def _check_points(points: object) -> list[dict]:
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Sequence):
        raise ValueError(f"points: expected a list of dicts, got {type(points).__name__}")
    checked = []
    for i, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise ValueError(f"points[{i}]: expected a dict, got {type(point).__name__}")
        # Round trip through JSON: the function sees exactly what a rerun reads from the file.
        checked.append(json.loads(json_bytes(point, f"points[{i}]")))
    return checked


def _set_aside(path: Path, why: str) -> None:
    """Move an unreadable point file to ``<name>.bad`` (replacing an older one) and warn."""
    aside = path.with_name(path.name + ".bad")
    os.replace(path, aside)
    warnings.warn(
        f"sweep point file {path} {why}; moved it to {aside.name} and computing the point again",
        RuntimeWarning,
        stacklevel=3,
    )


def _load_done(path: Path, point: dict) -> tuple[bool, Any]:
    """Whether ``path`` holds ``point``'s result, and the result.

    A file that cannot be read back as ``point``'s (unreadable, or holding another point or
    key: a foreign or edited file) is set aside (see the module docstring).
    """
    if not path.exists():
        return False, None
    try:
        stored = read_json(path)
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        _set_aside(path, f"is not valid JSON ({type(err).__name__}: {err})")
        return False, None
    if not isinstance(stored, dict) or not {"key", "point", "result"} <= set(stored):
        _set_aside(path, "lacks the fields key, point and result")
        return False, None
    if stored["point"] != point:
        key = point_key(stored["point"])  # JSON data as read: always has a key
        _set_aside(path, f"holds the point {stored['point']!r}, whose key is {key}, not {point!r}")
        return False, None
    if stored["key"] != path.stem:
        _set_aside(path, f"holds the key {stored['key']!r}, not its name's")
        return False, None
    return True, stored["result"]


def _check_workers(workers: object) -> int | None:
    """``workers`` of a sweep or a study: None (one per CPU) or a positive integer.

    Raises:
        TypeError: not an integer (nor None).
        ValueError: an integer below 1.
    """
    return None if workers is None else check_int("workers", workers, minimum=1)


_ADDRESS = "a Dask scheduler address such as 'tcp://127.0.0.1:8786' or None"


def _check_scheduler(scheduler: object) -> str | None:
    """``scheduler`` of a sweep or a study: None or an address Dask can parse, checked before
    any connection (a ``distributed.Client`` given a malformed address waits out its close
    timeout and prints a traceback when it is collected).

    Raises:
        TypeError: not a string (nor None).
        ValueError: empty, or an address that is not ``[scheme://]host:port`` of a scheme Dask
            knows (``inproc://`` addresses of this process pass as they are).
    """
    if scheduler is None:
        return None
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler: expected {_ADDRESS}, got {type(scheduler).__name__}")
    problem = _address_problem(scheduler)
    if problem:
        raise ValueError(f"scheduler: expected {_ADDRESS}, got {scheduler!r} ({problem})")
    return scheduler


def _address_problem(address: str) -> str | None:
    """Why Dask cannot connect to ``address`` whatever runs there, or None."""
    if not address.strip():
        return "an empty address"
    try:
        from distributed.comm.addressing import get_address_host_port, parse_address
    except ImportError:  # connect() says that distributed is missing
        return None
    try:
        if parse_address(address)[0] == "inproc":
            return None
        _, port = get_address_host_port(address)  # knows the schemes; needs host:port
    except ValueError as err:
        return str(err)
    if not 0 < port < 65536:
        return f"port {port} outside 1..65535"
    return None


def sweep(
    fn: Callable[[dict], Any],
    points: Sequence[Mapping[str, Any]],
    folder: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    desc: str = "sweep",
    progress: bool = True,
    counts: dict[str, int] | None = None,
) -> list[Any]:
    """Evaluate ``fn(point)`` for every point, skipping points whose result is already saved.

    Arguments:
        fn: a picklable function (defined at module level) of one point returning JSON data
            (dicts, lists, numbers, str, bool, None, tensors or arrays). It runs under seeds
            derived from the point's key and float64 (``rnnode.studies._run.seeded``).
        points: the points, dicts of JSON data; duplicates are computed once.
        folder: where each point's ``<key>.json`` lives (created).
        workers: local processes (None: one per CPU; 1: in this process, no pool; a single
            missing point also runs in this process). Ignored when ``scheduler`` is given.
        scheduler: address of a Dask distributed scheduler (``"tcp://host:8786"``); the points
            run on its workers through ``distributed.Client(scheduler)``.
        desc: label of the progress bar.
        progress: draw a tqdm progress bar.
        counts: if given, filled with ``{"points", "reused", "computed"}``: distinct points,
            those read back from saved files, those computed now.

    Returns:
        The results in the order of ``points``, as read back from JSON (so a fresh result and a
        saved one are equal).

    Raises:
        SweepError: some points raised (or returned something that is not JSON data); every
            other point's result is saved before it is raised, so a rerun computes only those.
    """
    points = _check_points(points)
    nworkers = _check_workers(workers) or os.cpu_count() or 1
    _check_scheduler(scheduler)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [point_key(p) for p in points]
    results: dict[str, Any] = {}
    todo: dict[str, dict] = {}
    for key, point in zip(keys, points, strict=True):
        done, result = _load_done(folder / f"{key}.json", point)
        if done:
            results[key] = result
        else:
            todo[key] = point
    if counts is not None:
        counts.update(points=len(results) + len(todo), reused=len(results), computed=len(todo))
    failed: list[tuple[dict, BaseException]] = []
    bar = tqdm(total=len(todo), desc=desc, disable=not progress or not todo, leave=False)

    def finish(key: str, outcome: Callable[[], Any]) -> None:
        try:
            record = {"key": key, "point": todo[key], "result": outcome()}
            # Serialise before writing: a result that is not JSON data fails its point only.
            results[key] = json.loads(json_bytes(record, f"result of point {key}"))["result"]
            write_json(folder / f"{key}.json", record)
        except Exception as err:  # any failure of one point is reported after the others
            failed.append((todo[key], err))
        bar.update()

    try:
        if todo and scheduler is not None:
            _run_dask(fn, todo, scheduler, finish)
        elif todo and (nworkers == 1 or len(todo) == 1):
            for key, point in todo.items():
                finish(key, functools.partial(_call_point, fn, point))
        elif todo:
            _run_processes(fn, todo, min(nworkers, len(todo)), finish)
    finally:
        bar.close()
    if failed:
        lines = "; ".join(f"{p!r}: {type(e).__name__}: {e}" for p, e in failed[:5])
        raise SweepError(
            f"{len(failed)} of {len(set(keys))} points failed ({lines}); the other results are "
            f"saved in {folder}, rerun to compute only the failed points",
            failed,
        ) from failed[0][1]
    return [results[k] for k in keys]


def _run_processes(fn, todo: dict[str, dict], nworkers: int, finish) -> None:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        nworkers, mp_context=context, initializer=_init_process, initargs=(os.getpid(),)
    )
    try:
        futures = {pool.submit(_call_point, fn, point): key for key, point in todo.items()}
        for future in as_completed(futures):
            finish(futures[future], future.result)
    except BaseException:
        # Interrupted: drop the queued points; what finished is already on disk.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def connect(scheduler: str, timeout: float | None = None) -> Any:
    """A ``distributed.Client`` of the scheduler at ``scheduler``, within ``timeout`` seconds
    (default ``CONNECT_TIMEOUT``).

    Raises:
        TypeError, ValueError: ``scheduler`` is not an address (see ``_check_scheduler``), at
            once.
        ConnectionError: nothing answered at the address in time (the message says what was
            tried and for how long).
    """
    _check_scheduler(scheduler)
    Client = require("distributed", "dask[distributed]", "studies", "--scheduler").Client

    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        return Client(scheduler, set_as_default=False, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise ConnectionError(
            f"scheduler: could not connect to a Dask scheduler at {scheduler!r} within "
            f"{timeout:g} s ({type(err).__name__}: {err}); start one with "
            "'dask scheduler' and pass the address it prints, such as tcp://127.0.0.1:8786"
        ) from None


def _run_dask(fn, todo: dict[str, dict], scheduler: str, finish) -> None:
    from distributed import as_completed as dask_completed

    with connect(scheduler) as client:
        # pure=False: a rerun resubmits a point even if the cluster remembers an earlier try.
        futures = {
            client.submit(_call_point, fn, point, pure=False): key for key, point in todo.items()
        }
        with client.as_current():  # as_completed finds its client as the current one
            for future in dask_completed(futures):
                finish(futures[future], future.result)
