"""studies._sweep: stable keys, one atomic file per point, resume, and the three engines.

The engines are real: in this process, a pool of spawned processes, and a Dask cluster whose
scheduler and workers listen on 127.0.0.1 (one cluster for the module). Calls are counted by
files the point function leaves in a folder, since it may run in another process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

from rnnode.studies import SweepError, atomic_write, point_key, read_json, sweep
from rnnode.studies._sweep import _call_point

ENGINES = ("inline", "processes", "dask")


# -- point functions: module level, so spawned processes and Dask workers can import them -------


def _calls(point: dict) -> Path:
    return Path(point["calls"])


def _record_call(point: dict) -> None:
    fd, _ = tempfile.mkstemp(dir=_calls(point), prefix=f"call-{point['x']}-")
    os.close(fd)


def square(point: dict) -> dict:
    """x squared, plus a draw of torch's generator and the dtype the point ran under."""
    _record_call(point)
    if (_calls(point) / f"fail-{point['x']}").exists():
        raise RuntimeError(f"told to fail at x={point['x']}")
    if (_calls(point) / f"interrupt-{point['x']}").exists():
        raise KeyboardInterrupt
    return {
        "square": point["x"] ** 2,
        "draw": torch.rand(2).tolist(),
        "dtype": str(torch.get_default_dtype()),
    }


def threads(point: dict) -> int:
    return torch.get_num_threads()


def not_json(point: dict) -> object:
    _record_call(point)
    return object() if point["x"] == 1 else point["x"]


def count_calls(folder: Path, x: int) -> int:
    return len(list(folder.glob(f"call-{x}-*")))


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scheduler():
    """Address of a real Dask cluster on loopback: a scheduler and 2 worker processes."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        yield cluster.scheduler_address


def engine_kwargs(engine: str, request) -> dict:
    if engine == "inline":
        return {"workers": 1}
    if engine == "processes":
        return {"workers": 2}
    return {"scheduler": request.getfixturevalue("scheduler")}


def make_points(tmp_path: Path, n: int = 4) -> tuple[list[dict], Path]:
    calls = tmp_path / "calls"
    calls.mkdir()
    return [{"x": x, "calls": str(calls)} for x in range(n)], calls


# -- keys and files ---------------------------------------------------------------------------


def test_point_key_is_the_hash_of_canonical_json():
    point = {"depth": 8, "seed": 3, "cell": "gru"}
    expected = hashlib.sha256(b'{"cell":"gru","depth":8,"seed":3}').hexdigest()[:16]
    assert point_key(point) == expected
    assert point_key(dict(reversed(list(point.items())))) == expected
    assert point_key({**point, "seed": 4}) != expected


def test_each_point_is_one_file_and_results_keep_the_order(tmp_path):
    points, calls = make_points(tmp_path)
    points = points[::-1]
    results = sweep(square, points, tmp_path / "out", workers=1, progress=False)
    assert [r["square"] for r in results] == [p["x"] ** 2 for p in points]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(f"{point_key(p)}.json" for p in points)
    for point, result in zip(points, results, strict=True):
        stored = read_json(tmp_path / "out" / f"{point_key(point)}.json")
        assert stored == {"key": point_key(point), "point": point, "result": result}


def test_a_rerun_computes_nothing_and_returns_the_saved_results(tmp_path):
    points, calls = make_points(tmp_path)
    first = sweep(square, points, tmp_path / "out", workers=1, progress=False)
    again = sweep(square, points, tmp_path / "out", workers=1, progress=False)
    assert again == first
    assert [count_calls(calls, p["x"]) for p in points] == [1, 1, 1, 1]


def test_duplicate_points_are_computed_once(tmp_path):
    points, calls = make_points(tmp_path, 2)
    results = sweep(square, points + points[:1], tmp_path / "out", workers=1, progress=False)
    assert results[2] == results[0]
    assert count_calls(calls, 0) == 1


# -- engines ----------------------------------------------------------------------------------


@pytest.mark.slow  # subprocesses or long solves: seconds
@pytest.mark.parametrize("engine", ENGINES)
def test_resume_after_a_failed_point_computes_only_that_point(tmp_path, engine, request):
    points, calls = make_points(tmp_path)
    (calls / "fail-2").touch()
    out = tmp_path / "out"
    kwargs = engine_kwargs(engine, request)
    with pytest.raises(SweepError, match="1 of 4 points failed") as info:
        sweep(square, points, out, progress=False, **kwargs)
    assert [p["x"] for p, _ in info.value.failed] == [2]
    assert isinstance(info.value.failed[0][1], RuntimeError)
    saved = {read_json(f)["point"]["x"] for f in out.glob("*.json")}
    assert saved == {0, 1, 3}  # every point that finished is on disk
    (calls / "fail-2").unlink()
    results = sweep(square, points, out, progress=False, **kwargs)
    assert [r["square"] for r in results] == [0, 1, 4, 9]
    assert [count_calls(calls, x) for x in range(4)] == [1, 1, 2, 1]
    # Every point ran under float64 and seeds from its key, so wherever it ran (and in
    # whatever order), it gives what a direct call in this process gives.
    assert {r["dtype"] for r in results} == {"torch.float64"}
    assert results == [_call_point(square, p) for p in points]
    assert len({tuple(r["draw"]) for r in results}) == len(points)


def test_an_interrupted_sweep_keeps_what_finished(tmp_path):
    points, calls = make_points(tmp_path)
    (calls / "interrupt-2").touch()
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        sweep(square, points, out, workers=1, progress=False)
    assert {read_json(f)["point"]["x"] for f in out.glob("*.json")} == {0, 1}
    assert not list(out.glob(".*"))  # no temporary file left behind
    (calls / "interrupt-2").unlink()
    sweep(square, points, out, workers=1, progress=False)
    assert [count_calls(calls, x) for x in range(4)] == [1, 1, 2, 1]


# -- atomic writes and bad results ------------------------------------------------------------


def test_atomic_write_leaves_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    atomic_write(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_result_that_is_not_json_fails_only_its_point(tmp_path):
    points, _ = make_points(tmp_path, 3)
    out = tmp_path / "out"
    with pytest.raises(SweepError, match="1 of 3 points failed") as info:
        sweep(not_json, points, out, workers=1, progress=False)
    assert isinstance(info.value.failed[0][1], ValueError)
    assert {read_json(f)["point"]["x"] for f in out.glob("*.json")} == {0, 2}
    assert not list(out.glob(".*"))


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        ({"point": {"x": 99}}, r"holds the point \{'x': 99\}, whose key is \w+, not"),
        ({"key": "0123456789abcdef"}, "holds the key '0123456789abcdef', not"),
    ],
)
def test_a_file_of_another_point_under_a_key_is_set_aside_and_recomputed(tmp_path, stored, why):
    """Before: a ValueError traceback (exit 1 from rnnode-study) for a foreign or edited file."""
    points, calls = make_points(tmp_path, 2)
    out = tmp_path / "out"
    first = sweep(square, points, out, workers=1, progress=False)
    bad = out / f"{point_key(points[0])}.json"
    record = {**read_json(bad), **stored}
    bad.write_text(json.dumps(record))
    with pytest.warns(RuntimeWarning, match=f"{bad.name} {why}.*moved it to {bad.name}.bad"):
        again = sweep(square, points, out, workers=1, progress=False)
    assert again == first
    assert [count_calls(calls, x) for x in range(2)] == [2, 1]
    assert read_json(out / f"{bad.name}.bad") == record
    assert read_json(bad)["point"] == points[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"points": {"x": 1}}, "points: expected a list of dicts, got dict"),
        ({"points": [1]}, r"points\[0\]: expected a dict, got int"),
        ({"points": [{"x": {1, 2}}]}, r"points\[0\]\['x'\]: expected JSON data"),
        ({"workers": 0}, "workers: expected a positive integer, got 0"),
        ({"scheduler": ""}, "scheduler: expected a Dask scheduler address"),
        ({"scheduler": "notaurl"}, r"scheduler: expected .*got 'notaurl' \(missing port"),
        ({"scheduler": "foo://h:1"}, r"got 'foo://h:1' \(unknown address scheme 'foo'"),
        ({"scheduler": "tcp://h:99999"}, r"got 'tcp://h:99999' \(port 99999 outside 1..65535"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path, kwargs, message, monkeypatch):
    args = {"points": [{"x": 1, "calls": str(tmp_path)}], **kwargs}
    points = args.pop("points")
    _no_client(monkeypatch)
    with pytest.raises(ValueError, match=message):
        sweep(square, points, tmp_path / "out", progress=False, **args)
    assert not (tmp_path / "out").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 1.5}, "workers: expected a positive integer, got 1.5"),
        ({"workers": True}, "workers: expected a positive integer, got True"),
        ({"scheduler": 8786}, "scheduler: expected a Dask scheduler address .*, got int"),
    ],
)
def test_wrong_types_are_type_errors(tmp_path, kwargs, message):
    with pytest.raises(TypeError, match=f"^{message}"):
        sweep(square, [{"x": 1}], tmp_path / "out", progress=False, **kwargs)


def _no_client(monkeypatch):
    """Make any ``distributed.Client`` a test failure: a malformed address must be refused
    before one is made (a Client given one waits out a 10 s close and prints a traceback when
    it is collected)."""
    distributed = pytest.importorskip("distributed")

    def refuse(*args, **kwargs):
        raise AssertionError(f"distributed.Client{args} was made")

    monkeypatch.setattr(distributed, "Client", refuse)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "is not valid JSON"),
        (b'{"key": "abc", "point": {"x"', "is not valid JSON"),
        (b"\xff\xfe garbage", "is not valid JSON"),
        (b"[1, 2]", "lacks the fields key, point and result"),
        (b'{"point": {"x": 0}}', "lacks the fields key, point and result"),
    ],
)
def test_an_unreadable_point_file_is_set_aside_and_recomputed(tmp_path, content, why):
    points, calls = make_points(tmp_path, 2)
    out = tmp_path / "out"
    first = sweep(square, points, out, workers=1, progress=False)
    bad = out / f"{point_key(points[0])}.json"
    bad.write_bytes(content)
    with pytest.warns(RuntimeWarning, match=f"{bad.name} {why}.*moved it to {bad.name}.bad"):
        again = sweep(square, points, out, workers=1, progress=False)
    assert again == first  # the point is recomputed (same seed), the other one is read back
    assert [count_calls(calls, x) for x in range(2)] == [2, 1]
    assert (out / f"{bad.name}.bad").read_bytes() == content
    assert read_json(bad)["result"] == first[0]


def test_counts_say_how_many_points_were_reused(tmp_path):
    points, _ = make_points(tmp_path, 3)
    out = tmp_path / "out"
    counts: dict = {}
    sweep(square, points[:1], out, workers=1, progress=False, counts=counts)
    assert counts == {"points": 1, "reused": 0, "computed": 1}
    sweep(square, points + points[:1], out, workers=1, progress=False, counts=counts)
    assert counts == {"points": 3, "reused": 1, "computed": 2}


@pytest.mark.slow  # subprocesses or long solves: seconds
@pytest.mark.parametrize("workers", [1, 2])
def test_every_point_runs_on_one_torch_thread(tmp_path, workers):
    points = [{"x": x} for x in range(2)]
    before = torch.get_num_threads()
    assert sweep(threads, points, tmp_path, workers=workers, progress=False) == [1, 1]
    assert torch.get_num_threads() == before


_PARENT = """
import os, sys, time
from pathlib import Path
from rnnode.studies import sweep

def sleeper(point):
    Path(point["pids"], str(os.getpid())).touch()
    time.sleep(600)
    return 0

if __name__ == "__main__":
    pids = sys.argv[1]
    points = [{"x": x, "pids": pids} for x in range(2)]
    sweep(sleeper, points, Path(pids).parent / "out", workers=2, progress=False)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


@pytest.mark.slow  # subprocesses or long solves: seconds
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_die_when_the_parent_is_killed(tmp_path):
    """kill -9 of the process running a sweep ends its pool workers (no orphans holding pipes)."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(_PARENT))
    pids = tmp_path / "pids"
    pids.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(pids)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120  # spawning two interpreters that import torch
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            assert parent.poll() is None, "the parent ended before its workers started"
            time.sleep(0.2)
        workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leave them behind when the check fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their parent"
