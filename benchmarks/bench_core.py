"""Core benchmark: the bridge against torch.nn.RNN, continuous solves, adjoint memory.

Everything is measured side by side in one run and reported as ratios (the machines are shared
and noisy): timings are medians of interleaved repeats, memory is the peak resident set of a fresh
process per configuration.

    python benchmarks/bench_core.py            # T=256, batch 32, 16 -> 128, 4 layers
    python benchmarks/bench_core.py --quick    # a small smoke run
    python benchmarks/bench_core.py --out results.json
    python benchmarks/bench_core.py --part adjoint_scaling   # adjoint time at T = 500..4000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

import rnnode


def _fwd_bwd(model, x, **kwargs) -> tuple[float, int | None]:
    start = time.perf_counter()
    if isinstance(model, rnnode.ODERNN):
        sol = model.solve(x, **kwargs)
        output, nfe = sol.output, sol.nfe
    else:
        output, nfe = model(x)[0], None
    output.pow(2).mean().backward()
    return time.perf_counter() - start, nfe


def timing(T: int, batch: int, inputs: int, hidden: int, layers: int, repeats: int) -> dict:
    """Seconds per forward + backward of each variant and its ratio to torch.nn.RNN."""
    torch.manual_seed(0)
    reference = torch.nn.RNN(inputs, hidden, num_layers=layers)
    model = rnnode.from_torch(reference)
    x = torch.randn(T, batch, inputs)
    variants = {
        "torch.nn.RNN": (reference, {}),
        "from_torch default (euler, hold, sampled)": (model, {}),
        "continuous rk4 step 0.5": (
            model,
            {"coupling": "continuous", "method": "rk4", "step_size": 0.5},
        ),
        "continuous dopri5 rtol 1e-5": (
            model,
            {"coupling": "continuous", "method": "dopri5", "rtol": 1e-5, "atol": 1e-7},
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    nfes: dict[str, int | None] = {}
    for m, kw in variants.values():  # warm-up
        _fwd_bwd(m, x, **kw)
    for _ in range(repeats):
        for name, (m, kw) in variants.items():
            m.zero_grad()
            seconds, nfes[name] = _fwd_bwd(m, x, **kw)
            times[name].append(seconds)
    base = statistics.median(times["torch.nn.RNN"])
    return {
        name: {
            "seconds": statistics.median(ts),
            "ratio_to_torch": statistics.median(ts) / base,
            "nfe": nfes[name],
        }
        for name, ts in times.items()
    }


#: The memory comparison's solve: the continuous-time stack, where backprop stores every stage.
MEMORY_SOLVE = {"coupling": "continuous", "method": "rk4", "step_size": 0.5}


def _peak_child(T: int, batch: int, inputs: int, hidden: int, layers: int, adjoint: bool) -> None:
    """Run in a fresh process: print the peak RSS growth (MiB) of one forward + backward."""
    torch.manual_seed(0)
    model = rnnode.ODERNN(inputs, hidden, num_layers=layers)
    x = torch.randn(T, batch, inputs)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    output, _ = model(x, adjoint=adjoint, **MEMORY_SOLVE)
    output.pow(2).mean().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_growth_mib": (peak - before) / 1024}))


def memory(lengths: list[int], batch: int, inputs: int, hidden: int, layers: int) -> dict:
    """Peak memory growth of plain backprop and of adjoint=True as T grows."""
    rows = {}
    for T in lengths:
        row = {}
        for adjoint in (False, True):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(T),
                str(batch),
                str(inputs),
                str(hidden),
                str(layers),
                str(int(adjoint)),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            row["adjoint" if adjoint else "backprop"] = json.loads(out.splitlines()[-1])[
                "peak_growth_mib"
            ]
        row["adjoint_over_backprop"] = row["adjoint"] / max(row["backprop"], 1e-9)
        rows[T] = row
        print(
            f"  T={T:5d}  backprop {row['backprop']:8.1f}  adjoint {row['adjoint']:8.1f}  "
            f"ratio {row['adjoint_over_backprop']:.3f}",
            flush=True,
        )
    return rows


def adjoint_scaling(lengths: list[int], method: str, batch: int = 8, hidden: int = 16) -> dict:
    """Seconds of one adjoint forward + backward of a 2-layer sampled stack as T grows.

    Issue: with sampled coupling and 2 or more layers, each per-interval adjoint of layer 2 read a
    row of layer 1's output still attached to layer 1's whole graph (quadratic in T).
    """
    kwargs = {"method": method, "adjoint": True}
    if method not in rnnode.FIXED_METHODS:
        kwargs.update(rtol=1e-4, atol=1e-6)
    rows = {}
    for T in lengths:
        torch.manual_seed(0)
        model = rnnode.ODERNN(4, hidden, num_layers=2)
        x = torch.randn(T, batch, 4)
        seconds, _ = _fwd_bwd(model, x, **kwargs)
        rows[T] = {"seconds": seconds}
    base = rows[lengths[0]]["seconds"]
    for T in lengths:
        rows[T]["ratio_to_first"] = rows[T]["seconds"] / base
        print(
            f"  {method:7s} T={T:5d}  {rows[T]['seconds']:8.2f} s  "
            f"time(T)/time({lengths[0]}) {rows[T]['ratio_to_first']:5.2f}  "
            f"(linear: {T / lengths[0]:.1f})",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument(
        "--part",
        choices=("all", "timing", "memory", "adjoint_scaling"),
        default="all",
        help="run only the timings or only the memory measurements",
    )
    parser.add_argument("--child", nargs=6, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        T, batch, inputs, hidden, layers, adjoint = args.child
        _peak_child(T, batch, inputs, hidden, layers, bool(adjoint))
        return {}
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.quick:
        sizes = {"T": 32, "batch": 4, "inputs": 4, "hidden": 16, "layers": 2}
        repeats, lengths = 3, [64, 256]
    else:
        sizes = {"T": 256, "batch": 32, "inputs": 16, "hidden": 128, "layers": 4}
        repeats, lengths = 7, [256, 1024, 4096]
    results = {"sizes": sizes, "torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.part in ("all", "timing"):
        results["timing"] = timing(repeats=repeats, **sizes)
        print(
            f"forward + backward, T={sizes['T']}, batch {sizes['batch']}, input "
            f"{sizes['inputs']}, hidden {sizes['hidden']}, {sizes['layers']} layers "
            f"(median of {repeats}):"
        )
        for name, row in results["timing"].items():
            nfe = "" if row["nfe"] is None else f"  nfe {row['nfe']}"
            print(
                f"  {name:45s} {row['seconds'] * 1e3:9.1f} ms  {row['ratio_to_torch']:6.2f}x{nfe}",
                flush=True,
            )
    if args.part in ("all", "memory"):
        mem_sizes = {k: v for k, v in sizes.items() if k != "T"}
        print(f"peak memory growth of one forward + backward (MiB), {MEMORY_SOLVE}:")
        results["memory"] = memory(lengths, **mem_sizes)
    if args.part in ("all", "adjoint_scaling"):
        lengths = [50, 100, 200] if args.quick else [500, 1000, 2000, 4000]
        print("adjoint forward + backward, 2 layers, hidden 16, batch 8, sampled coupling:")
        results["adjoint_scaling"] = {
            method: adjoint_scaling(lengths, method) for method in ("rk4", "dopri5")
        }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
