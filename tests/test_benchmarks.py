"""The benchmark scripts' quick settings run here, so that they cannot rot: every row they report
is computed, and bench_versions really imports the two trees it compares."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_bench_core_timing_reports_every_variant_as_ratios(tmp_path):
    out = tmp_path / "core.json"
    results = _load("bench_core").main(["--quick", "--part", "timing", "--out", str(out)])
    rows = results["timing"]
    assert rows["torch.nn.RNN"]["ratio_to_torch"] == pytest.approx(1.0)
    for name, row in rows.items():
        assert row["seconds"] > 0 and row["ratio_to_torch"] > 0, name
    # The counted evaluations are the grid's: T = 32 intervals, 2 RK4 steps of 4 stages each.
    assert rows["continuous rk4 step 0.5"]["nfe"] == 32 * 2 * 4
    assert rows["hand-written fused rk4 loop, step 0.5"]["nfe"] == 32 * 2 * 4
    assert rows["continuous rk4 step 0.5"]["ratio_to_fused_loop"] > 0
    assert json.loads(out.read_text())["timing"].keys() == rows.keys()


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_bench_versions_compares_two_trees_side_by_side(tmp_path):
    out = tmp_path / "versions.json"
    # One torch thread per process: tiny solves on a busy machine otherwise spin in OpenMP.
    args = ["--against", "HEAD", "--quick", "--variants", "dopri5", "--threads", "1"]
    args += ["--out", str(out)]
    results = _load("bench_versions").main(args)
    assert results["variants"].keys() == {"dopri5"}
    for row in results["variants"].values():
        assert row["to_torch_now"] > 0 and row["to_torch_then"] > 0
        assert row["now_over_then"] == pytest.approx(row["to_torch_now"] / row["to_torch_then"])
    assert json.loads(out.read_text()) == results
