"""Core benchmark: the bridge against torch.nn.RNN, continuous solves, adjoint memory.

Everything is measured side by side in one run and reported as ratios (the machines are shared
and noisy): timings are medians of interleaved repeats, memory is the peak resident set of a fresh
process per configuration.

    python benchmarks/bench_core.py            # T=256, batch 32, 16 -> 128, 4 layers
    python benchmarks/bench_core.py --quick    # a small smoke run
    python benchmarks/bench_core.py --out results.json
    python benchmarks/bench_core.py --part adjoint_scaling   # adjoint time at T = 500..4000
    python benchmarks/bench_core.py --part memory --lengths 256 1024
"""

from __future__ import annotations

import argparse
import json
import os
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
    elif isinstance(model, torch.nn.RNNBase):
        output, nfe = model(x)[0], None
    else:
        output, nfe = model(x)
    output.pow(2).mean().backward()
    return time.perf_counter() - start, nfe


class FusedRK4(torch.nn.Module):
    """A hand-written RK4 loop (torchdiffeq's 3/8 rule, the input held on each interval) over a
    continuously coupled tanh stack: the same arithmetic as ``coupling="continuous"``, with every
    layer's inter-layer products in one baddbmm and the recurrent ones in another per evaluation.
    """

    def __init__(self, model: rnnode.ODERNN, step_size: float):
        super().__init__()
        self.model = model
        self.substeps = round(1 / step_size)
        self.h = 1.0 / self.substeps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        fields = self.model.layers
        w_hh = torch.stack([f.weight_hh for f in fields]).transpose(1, 2)
        b_hh = torch.stack([f.bias_hh for f in fields]).unsqueeze(1)
        w_ih = torch.stack([f.weight_ih for f in fields[1:]]).transpose(1, 2)
        b_ih = torch.stack([f.bias_ih for f in fields[1:]]).unsqueeze(1)
        drive = fields[0].project(x)  # (T, B, H): the first layer's held input, projected once

        def rate(y, u0):
            inter = torch.baddbmm(b_ih, y[:-1], w_ih)
            return (
                torch.tanh(torch.cat([u0.unsqueeze(0), inter]) + torch.baddbmm(b_hh, y, w_hh)) - y
            )

        h = self.h
        y = x.new_zeros(len(fields), x.shape[1], self.model.hidden_size)
        outputs, nfe = [], 0
        for u0 in drive.unbind(0):
            for _ in range(self.substeps):
                k1 = rate(y, u0)
                k2 = rate(torch.add(y, k1, alpha=h / 3), u0)
                k3 = rate(y + h * (k2 - k1 / 3), u0)
                k4 = rate(y + h * (k1 - k2 + k3), u0)
                y = y + (k1 + 3 * (k2 + k3) + k4) * (h / 8)
                nfe += 4
            outputs.append(y[-1])
        return torch.stack(outputs), nfe


#: The continuous-time solves the benchmarks time (``bench_versions`` uses them too).
CONTINUOUS_RK4 = {"coupling": "continuous", "method": "rk4", "step_size": 0.5}
CONTINUOUS_DOPRI5 = {"coupling": "continuous", "method": "dopri5", "rtol": 1e-5, "atol": 1e-7}


def timing(T: int, batch: int, inputs: int, hidden: int, layers: int, repeats: int) -> dict:
    """Seconds per forward + backward of each variant, its ratio to torch.nn.RNN and the time per
    layer-evaluation relative to torch.nn.RNN's per layer-step."""
    torch.manual_seed(0)
    reference = torch.nn.RNN(inputs, hidden, num_layers=layers)
    model = rnnode.from_torch(reference)
    x = torch.randn(T, batch, inputs)
    continuous = CONTINUOUS_RK4
    per_sample = torch.arange(T + 1, dtype=x.dtype).unsqueeze(1).expand(T + 1, batch)
    # (model, keywords, layer evaluations per counted evaluation)
    variants = {
        "torch.nn.RNN": (reference, {}, None),
        "from_torch default (euler, hold, sampled)": (model, {}, 1),
        "continuous rk4 step 0.5": (model, continuous, layers),
        "hand-written fused rk4 loop, step 0.5": (FusedRK4(model, 0.5), {}, layers),
        "continuous rk4 step 0.5, per-sample t": (model, dict(continuous, t=per_sample), layers),
        "continuous dopri5 rtol 1e-5": (model, CONTINUOUS_DOPRI5, layers),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    nfes: dict[str, int | None] = {}
    for m, kw, _ in variants.values():  # warm-up
        _fwd_bwd(m, x, **kw)
    for _ in range(repeats):
        for name, (m, kw, _) in variants.items():
            m.zero_grad()
            seconds, nfes[name] = _fwd_bwd(m, x, **kw)
            times[name].append(seconds)
    base = statistics.median(times["torch.nn.RNN"])
    rows = {}
    for name, ts in times.items():
        seconds = statistics.median(ts)
        per_eval = variants[name][2]
        layer_evals = None if nfes[name] is None else nfes[name] * per_eval
        rows[name] = {
            "seconds": seconds,
            "ratio_to_torch": seconds / base,
            "nfe": nfes[name],
            # torch.nn.RNN takes T * layers layer-steps
            "per_layer_eval_to_torch": (
                None if layer_evals is None else seconds / layer_evals / (base / (T * layers))
            ),
        }
    fused = rows["hand-written fused rk4 loop, step 0.5"]["seconds"]
    rows["continuous rk4 step 0.5"]["ratio_to_fused_loop"] = (
        rows["continuous rk4 step 0.5"]["seconds"] / fused
    )
    rows["continuous rk4 step 0.5, per-sample t"]["ratio_to_shared_t"] = (
        rows["continuous rk4 step 0.5, per-sample t"]["seconds"]
        / rows["continuous rk4 step 0.5"]["seconds"]
    )
    return rows


#: The memory comparison's solve: the continuous-time stack, where backprop stores every stage.
MEMORY_SOLVE = CONTINUOUS_RK4


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


#: glibc's malloc keeps freed blocks below its dynamic mmap threshold (which rises to 32 MiB as
#: blocks are freed) in its heap, so a process's resident set stays near the peak of what was
#: ever allocated, even when, as with the discrete adjoint, each interval's recomputation is freed
#: before the next. A fixed low threshold maps every tensor buffer on its own and unmaps it when
#: freed: the peak resident set then measures the peak of live memory.
_LIVE_MEMORY_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "32768"}


def memory(lengths: list[int], batch: int, inputs: int, hidden: int, layers: int) -> dict:
    """Peak memory growth of plain backprop and of adjoint=True as T grows (live memory: see
    ``_LIVE_MEMORY_ENV``)."""
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
            out = subprocess.run(
                cmd, check=True, capture_output=True, text=True, env=_LIVE_MEMORY_ENV
            ).stdout
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
    parser.add_argument(
        "--lengths", type=int, nargs="+", help="sequence lengths of the memory measurements"
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
        print(f"  {'variant':45s} {'time':>12s} {'/ nn.RNN':>8s} {'per layer-eval':>15s}  nfe")
        for name, row in results["timing"].items():
            nfe = "" if row["nfe"] is None else f"  {row['nfe']}"
            per = row["per_layer_eval_to_torch"]
            per = "" if per is None else f"{per:.2f}x"
            print(
                f"  {name:45s} {row['seconds'] * 1e3:9.1f} ms {row['ratio_to_torch']:7.2f}x "
                f"{per:>15s}{nfe}",
                flush=True,
            )
        rows = results["timing"]
        print(
            f"  continuous rk4 / fused loop: "
            f"{rows['continuous rk4 step 0.5']['ratio_to_fused_loop']:.2f}x; per-sample t / "
            f"shared t: {rows['continuous rk4 step 0.5, per-sample t']['ratio_to_shared_t']:.2f}x",
            flush=True,
        )
    if args.part in ("all", "memory"):
        mem_sizes = {k: v for k, v in sizes.items() if k != "T"}
        print(f"peak memory growth of one forward + backward (MiB), {MEMORY_SOLVE}:")
        results["memory"] = memory(args.lengths or lengths, **mem_sizes)
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
