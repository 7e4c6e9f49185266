"""Benchmark of analysis/: batched sine probes and stability maps against per-point loops.

Both sides of each ratio run in the same process, on the same thread count, on the same inputs,
and their results are compared, so each ratio is a like-for-like speed-up (batched sides: the
median of 3 runs; loops: one run over all points):

1. ``measure_gain`` of a 4-layer stack at 256 frequencies as one batch, against a loop that
   measures one frequency per call.
2. ``frequency_response`` of a 4-layer hidden-64 stack (256 states) at 256 frequencies,
   against the sine-probe route (``measure_gain`` at amplitude 1e-6 from the same fixed point)
   and against a per-frequency ``numpy.linalg.solve`` loop on the same (A, B, C, D).
3. The spectra of a 64 x 64 stability map of a 2-layer tanh stack with hidden size 32
   (64 x 64 Jacobians at the fixed points): ``stability_map`` (vmapped Jacobians with
   per-point weights, eigenvalues of the 32 x 32 diagonal blocks in one batched call) against
   the plain way, a loop of ``torch.autograd.functional.jacobian`` and ``numpy.linalg.eigvals``
   per point. ``stability_map`` splits its batched eigenvalue call over 2 threads.
   The fixed points come from one full ``stability_map`` (timed separately, Newton
   included) and are handed to both sides.
4. ``find_fixed_points`` of a GRU (hidden 24, recurrent weights doubled) from 256 starts on
   its own trajectories, all starts batched, against the same search run start by
   start (Sussillo & Barak's per-start loop; the FixedPointFinder toolbox batches too). Both
   sides take the same Adam steps and Newton polish; every point the loop finds is matched
   to a batched one.

Run: ``python benchmarks/bench_analysis.py`` (about 15 minutes on a quiet core: the loops are
slow), ``--only NAME`` for one of ``gain``, ``response``, ``stability``, ``fixed_points``,
``--quick`` for a tiny run, ``--out results.json`` to also write the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

import rnnode
from rnnode.analysis import (
    STEP_POLYNOMIALS,
    find_fixed_points,
    stability_map,
)
from rnnode.analysis.gain import measure_gain
from rnnode.analysis.linear import frequency_response, linearize


def _timed(fn, repeats: int = 1):
    """(result, median wall time over ``repeats`` calls).

    The batched sides take well under a second, so a load spike on a shared machine can
    double one measurement; their median of 3 is as steady as the long loops, which average
    over hundreds of calls by themselves.
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times))


def bench_gain(num_freqs: int, num_layers: int, hidden: int, num_steps: int) -> dict:
    """One batched ``measure_gain`` call against one call per frequency."""
    torch.manual_seed(0)
    model = rnnode.ODERNN(1, hidden, num_layers, cell="rnn").double()
    omegas = np.linspace(0.05, 3.0, num_freqs)
    kwargs = dict(amplitude=1e-3, num_steps=num_steps)
    batched, t_batch = _timed(lambda: measure_gain(model, omegas, **kwargs), repeats=3)
    looped, t_loop = _timed(
        lambda: np.hstack([np.asarray(measure_gain(model, [w], **kwargs)) for w in omegas])
    )
    return {
        "frequencies": num_freqs,
        "layers": num_layers,
        "hidden": hidden,
        "steps": num_steps,
        "batched_s": t_batch,
        "loop_s": t_loop,
        "ratio": t_loop / t_batch,
        "max_abs_difference": float(np.abs(np.asarray(batched) - looped).max()),
    }


def bench_frequency_response(num_freqs: int, num_layers: int, hidden: int, num_steps: int) -> dict:
    """``frequency_response`` of a stack against sine probes and a per-frequency numpy loop.

    The stack (tanh, biases) is linearised at its resting state for x = 0; the probes start
    there, so both routes measure the same linear system (the probes at amplitude 1e-6).
    """
    torch.manual_seed(0)
    model = rnnode.ODERNN(1, hidden, num_layers, cell="rnn").double()
    (h_star,) = find_fixed_points(model, torch.zeros(1), 1, opt_steps=0, max_iter=50).points
    omegas = np.geomspace(0.01, 3.0, num_freqs)
    numeric, t_numeric = _timed(lambda: frequency_response(model, omegas, h=h_star), repeats=3)
    probes, t_probe = _timed(
        lambda: measure_gain(model, omegas, amplitude=1e-6, num_steps=num_steps, hx=h_star)
    )
    A, B, C, D = (v.numpy() for v in linearize(model, h_star, torch.zeros(1)))

    def numpy_loop():
        n = A.shape[0]
        out = np.empty((num_layers, num_freqs))
        for f, w in enumerate(omegas):
            response = C @ np.linalg.solve(np.exp(1j * w) * np.eye(n) - A, B) + D
            out[:, f] = np.linalg.norm(np.abs(response[:, 0]).reshape(num_layers, -1), axis=1)
        return out

    looped, t_loop = _timed(numpy_loop)
    gain = numeric.gain.numpy()
    # The slowest modes decay like |a|^k: judge the probes only where the transient has died.
    return {
        "frequencies": num_freqs,
        "layers": num_layers,
        "hidden": hidden,
        "states": A.shape[0],
        "probe_steps": num_steps,
        "numeric_s": t_numeric,
        "sine_probe_s": t_probe,
        "numpy_loop_s": t_loop,
        "ratio_to_sine_probes": t_probe / t_numeric,
        "ratio_to_numpy_loop": t_loop / t_numeric,
        "max_rel_difference_numpy": float(np.abs(gain / looped - 1).max()),
        "max_rel_difference_probes": float(np.abs(gain / np.asarray(probes) - 1).max()),
    }


def _plain_spectra(model, smap, method: str, dt: float):
    """The plain way: per point, a scaled copy's Jacobian by autograd and numpy's eigenvalues."""
    coefficients = STEP_POLYNOMIALS[method]
    P, Q = smap.max_real.shape
    L, S = model.num_layers, model.layers[0].state_size
    max_real = np.empty((P, Q))
    radius = np.empty((P, Q))
    jacobians = np.empty((P, Q, L * S, L * S))
    eig_seconds = 0.0
    for i, p in enumerate(smap.p):
        scaled = rnnode.ODERNN(model.input_size, model.hidden_size, L, cell=model.cell).double()
        scaled.load_state_dict(model.state_dict())
        with torch.no_grad():
            for field in scaled.layers:
                field.weight_hh.mul_(float(p))
        for j, q in enumerate(smap.q):
            x = torch.full((model.input_size,), float(q), dtype=torch.float64)
            h = torch.as_tensor(smap.fixed_points[i, j]).reshape(-1)
            J = torch.autograd.functional.jacobian(
                lambda v, s=scaled, x=x: s.joint_field(v.reshape(L, S), x).reshape(-1), h
            )
            jacobians[i, j] = J.detach().numpy()
            start = time.perf_counter()
            eig = np.linalg.eigvals(jacobians[i, j])
            eig_seconds += time.perf_counter() - start
            max_real[i, j] = eig.real.max()
            radius[i, j] = np.abs(np.polyval(coefficients[::-1], dt * eig)).max()
    return max_real, radius, jacobians, eig_seconds


def bench_stability(grid: int, hidden: int, num_layers: int, method: str, dt: float) -> dict:
    """Spectra of a grid x grid stability map: batched against a per-point loop."""
    torch.manual_seed(0)
    model = rnnode.ODERNN(4, hidden, num_layers, cell="rnn").double()
    p = np.linspace(0.2, 2.0, grid)
    q = np.linspace(-1.0, 1.0, grid)
    full, t_full = _timed(lambda: stability_map(model, p, q, method=method, dt=dt))
    spectra, t_batch = _timed(
        lambda: stability_map(model, p, q, method=method, dt=dt, h0=full.fixed_points),
        repeats=3,
    )
    full = full.numpy()
    (max_real, radius, jacobians, eig_loop), t_loop = _timed(
        lambda: _plain_spectra(model, full, method, dt)
    )
    spectra = spectra.numpy()
    # The two halves apart: eigenvalues of the same Jacobians, per point (numpy, full matrix,
    # timed inside the loop) against one batched call on the diagonal blocks.
    S = hidden
    blocks = torch.as_tensor(jacobians).reshape(grid * grid, num_layers, S, num_layers, S)
    blocks = blocks.diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2).contiguous()
    _, eig_batch = _timed(lambda: torch.linalg.eigvals(blocks), repeats=3)
    return {
        "grid": grid,
        "hidden": hidden,
        "layers": num_layers,
        "jacobian_size": num_layers * hidden,
        "method": method,
        "dt": dt,
        "converged_fraction": float(full.converged.mean()),
        "full_map_with_newton_s": t_full,
        "batched_spectra_s": t_batch,
        "loop_spectra_s": t_loop,
        "ratio": t_loop / t_batch,
        "eigenvalues_loop_s": eig_loop,
        "eigenvalues_batched_blocks_s": eig_batch,
        "eigenvalue_ratio": eig_loop / eig_batch,
        "max_abs_difference_max_real": float(np.nanmax(np.abs(spectra.max_real - max_real))),
        "max_abs_difference_radius": float(np.nanmax(np.abs(spectra.spectral_radius - radius))),
        "unstable_fraction": float(np.mean(spectra.max_real > 0)),
    }


def bench_fixed_points(num_starts: int, hidden: int, opt_steps: int) -> dict:
    """``find_fixed_points`` from ``num_starts`` starts at once against one call per start."""
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, hidden, 1, dtype=torch.float64)
    with torch.no_grad():
        gru.weight_hh_l0.mul_(2.0)
    model = rnnode.from_torch(gru)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(40, 16, 3, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        states = model.solve(x).states[:, 0].permute(1, 2, 0, 3).reshape(-1, 1, hidden)
    pick = torch.randperm(len(states), generator=generator)[:num_starts]
    starts = states[pick]
    zero = torch.zeros(3, dtype=torch.float64)

    def search(batch):
        return find_fixed_points(model, zero, batch, kind="discrete", opt_steps=opt_steps)

    batched, t_batch = _timed(lambda: search(starts), repeats=3)
    loop, t_loop = _timed(lambda: [search(starts[i : i + 1]) for i in range(num_starts)])
    found = [p for result in loop for p in result.points]
    # every point the loop keeps is one of the batched search's points (same Adam, same Newton)
    distance = max(
        (float((batched.points - p).abs().amax(dim=(1, 2)).min()) for p in found), default=0.0
    )
    return {
        "starts": num_starts,
        "hidden": hidden,
        "opt_steps": opt_steps,
        "points": len(batched.points),
        "classes": {
            c: batched.classification.count(c) for c in sorted(set(batched.classification))
        },
        "batched_s": t_batch,
        "loop_s": t_loop,
        "ratio": t_loop / t_batch,
        "max_distance_loop_to_batched": distance,
    }


def _write_json(path: str, results: dict) -> None:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> dict:
    """Run both benchmarks, print the timings and ratios, optionally write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--out", help="write the results as JSON to this path")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--only", choices=("gain", "response", "stability", "fixed_points"), help="one part"
    )
    args = parser.parse_args(argv)
    # One thread by default: on a shared machine, OpenMP threads that wait on busy cores
    # slow small operations by orders of magnitude and would distort both sides.
    torch.set_num_threads(args.threads)
    sizes = {
        "gain": dict(num_freqs=256, num_layers=4, hidden=16, num_steps=200),
        "response": dict(num_freqs=256, num_layers=4, hidden=64, num_steps=400),
        "stability": dict(grid=64, hidden=32, num_layers=2, method="rk4", dt=0.5),
        "fixed_points": dict(num_starts=256, hidden=24, opt_steps=200),
    }
    if args.quick:
        sizes = {
            "gain": dict(num_freqs=16, num_layers=4, hidden=4, num_steps=60),
            "response": dict(num_freqs=16, num_layers=2, hidden=8, num_steps=400),
            "stability": dict(grid=8, hidden=4, num_layers=2, method="rk4", dt=0.5),
            "fixed_points": dict(num_starts=6, hidden=6, opt_steps=20),
        }
    benches = {
        "gain": ("measure_gain", bench_gain),
        "response": ("frequency_response", bench_frequency_response),
        "stability": ("stability_map", bench_stability),
        "fixed_points": ("find_fixed_points", bench_fixed_points),
    }
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "quick": args.quick}
    for part, (key, bench) in benches.items():
        if args.only in (None, part):
            results[key] = bench(**sizes[part])
    print(f"torch {results['torch']}, {results['threads']} thread(s)")
    if "measure_gain" in results:
        gain = results["measure_gain"]
        print(
            f"measure_gain, {gain['frequencies']} frequencies x {gain['layers']} layers "
            f"(hidden {gain['hidden']}, {gain['steps']} steps): batched {gain['batched_s']:.3f} s, "
            f"loop {gain['loop_s']:.3f} s, ratio {gain['ratio']:.1f}x "
            f"(max |difference| {gain['max_abs_difference']:.1e})"
        )
    if "frequency_response" in results:
        resp = results["frequency_response"]
        print(
            f"frequency_response, {resp['frequencies']} frequencies x {resp['layers']} layers "
            f"(hidden {resp['hidden']}, {resp['states']} states): "
            f"numeric {resp['numeric_s']:.3f} s, "
            f"sine probes ({resp['probe_steps']} steps) {resp['sine_probe_s']:.2f} s "
            f"(ratio {resp['ratio_to_sine_probes']:.1f}x), numpy.linalg.solve loop "
            f"{resp['numpy_loop_s']:.3f} s (ratio {resp['ratio_to_numpy_loop']:.1f}x); "
            f"max relative "
            f"difference {resp['max_rel_difference_numpy']:.1e} to numpy, "
            f"{resp['max_rel_difference_probes']:.1e} to the probes"
        )
    if "stability_map" in results:
        stab = results["stability_map"]
        print(
            f"stability map {stab['grid']} x {stab['grid']}, {stab['layers']} layers x hidden "
            f"{stab['hidden']} ({stab['jacobian_size']} x {stab['jacobian_size']} Jacobians, "
            f"{stab['method']} dt={stab['dt']}): full map with Newton "
            f"{stab['full_map_with_newton_s']:.2f} s; spectra batched "
            f"{stab['batched_spectra_s']:.2f} s, loop {stab['loop_spectra_s']:.2f} s, "
            f"ratio {stab['ratio']:.1f}x "
            f"(max |difference| {stab['max_abs_difference_max_real']:.1e} in max Re, "
            f"{stab['max_abs_difference_radius']:.1e} in radius)"
        )
        print(
            f"  of which eigenvalues: batched blocks {stab['eigenvalues_batched_blocks_s']:.2f} s, "
            f"loop {stab['eigenvalues_loop_s']:.2f} s, ratio {stab['eigenvalue_ratio']:.1f}x"
        )
    if "find_fixed_points" in results:
        fp = results["find_fixed_points"]
        print(
            f"find_fixed_points, {fp['starts']} starts, GRU hidden {fp['hidden']}, "
            f"{fp['opt_steps']} Adam steps + Newton: batched {fp['batched_s']:.2f} s, per-start "
            f"loop {fp['loop_s']:.1f} s, ratio {fp['ratio']:.1f}x ({fp['points']} points "
            f"{fp['classes']}; loop's points within {fp['max_distance_loop_to_batched']:.1e})"
        )
    if args.out:
        _write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
