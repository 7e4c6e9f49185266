"""Solves of this tree against an earlier commit's, side by side in one run.

Variants (``--variants``): ``bridge`` (``from_torch``'s default: Euler step 1, held input),
``rk4`` (``coupling="continuous"``, RK4 step 0.5) and ``dopri5`` (``coupling="continuous"``,
rtol 1e-5, atol 1e-7). Each measurement is a fresh process that imports one tree's rnnode and
times forward + backward of the variant and of the ``torch.nn.RNN`` it was converted from,
interleaved; the processes of the two trees alternate, so both see the same machine load.
Reported per variant: each tree's median ratio to ``torch.nn.RNN`` and their quotient (this
tree / the earlier one; below 1: faster now).

    python benchmarks/bench_versions.py --against 997df94   # T=256, batch 32, 16 -> 128, 4 layers
    python benchmarks/bench_versions.py --against 194ccf6 --variants dopri5 rk4
    python benchmarks/bench_versions.py --against HEAD --quick
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, statistics, sys, time
import torch
import rnnode

T, batch, inputs, hidden, layers, repeats, threads = (int(a) for a in sys.argv[1:8])
KWARGS = json.loads(sys.argv[8])
if threads:
    torch.set_num_threads(threads)
torch.manual_seed(0)
reference = torch.nn.RNN(inputs, hidden, num_layers=layers)
model = rnnode.from_torch(reference)
x = torch.randn(T, batch, inputs)


def run(m, **kwargs):
    m.zero_grad()
    start = time.perf_counter()
    m(x, **kwargs)[0].pow(2).mean().backward()
    return time.perf_counter() - start


run(model, **KWARGS), run(reference)  # warm-up
ratios = []
for _ in range(repeats):
    ratios.append(run(model, **KWARGS) / run(reference))
print(json.dumps({"ratio": statistics.median(ratios), "file": rnnode.__file__}))
"""


def _solves() -> dict[str, dict]:
    """Each variant's solve keywords: bench_core's, loaded from this script's folder."""
    spec = importlib.util.spec_from_file_location(
        "bench_core", Path(__file__).with_name("bench_core.py")
    )
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    return {"bridge": {}, "rk4": core.CONTINUOUS_RK4, "dopri5": core.CONTINUOUS_DOPRI5}


VARIANTS = ("bridge", "rk4", "dopri5")


def _measure(tree: Path, sizes: list[int], solve: dict, threads: int) -> dict:
    """One fresh process importing ``tree``'s rnnode (its repository root first on the path)."""
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); " + _CHILD
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            *map(str, sizes),
            str(threads),
            json.dumps(solve),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
    ).stdout
    return json.loads(out.splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--rounds", type=int, default=7, help="alternating process pairs")
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=["bridge"], help="what to compare"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per process (0: torch's default)"
    )
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        sizes, rounds = [32, 4, 4, 16, 2, 3], 1
    else:
        sizes, rounds = [256, 32, 16, 128, 4, 5], args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        earlier = Path(tmp) / "earlier"
        archive = subprocess.run(
            ["git", "archive", "--format=tar", args.against],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        earlier.mkdir()
        subprocess.run(["tar", "-x", "-C", str(earlier)], input=archive, check=True)
        solves = _solves()
        rows: dict[str, tuple[list[dict], list[dict]]] = {v: ([], []) for v in args.variants}
        for _ in range(rounds):
            for variant, (now, then) in rows.items():
                now.append(_measure(ROOT, sizes, solves[variant], args.threads))
                then.append(_measure(earlier, sizes, solves[variant], args.threads))
        for now, then in rows.values():
            # The child must have imported the tree it was given, not an installed rnnode.
            for measured, tree in ((now, ROOT), (then, earlier)):
                assert all(Path(r["file"]).is_relative_to(tree) for r in measured)
    results: dict = {
        "sizes": dict(
            zip(("T", "batch", "inputs", "hidden", "layers", "repeats"), sizes, strict=True)
        ),
        "against": args.against,
        "threads": args.threads,
        "variants": {},
    }
    for variant, (now, then) in rows.items():
        ratio_now = statistics.median(r["ratio"] for r in now)
        ratio_then = statistics.median(r["ratio"] for r in then)
        results["variants"][variant] = {
            "to_torch_now": ratio_now,
            "to_torch_then": ratio_then,
            "now_over_then": ratio_now / ratio_then,
        }
        print(
            f"{variant} / torch.nn.RNN (forward + backward, median of {rounds} process pairs): "
            f"this tree {ratio_now:.2f}x, {args.against} {ratio_then:.2f}x; "
            f"this tree / {args.against}: {ratio_now / ratio_then:.2f}",
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
