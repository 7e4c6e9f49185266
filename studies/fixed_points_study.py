"""Fixed points of GRUs trained on the 3-bit flip-flop task (Sussillo & Barak 2013): how many
stable points, at which memory corners, and the saddles between them, in the top principal
components.

Task: three input channels carry sparse pulses (+1 or -1 with probability ``PULSE`` per step and
channel, and a pulse on every channel at t = 1); each output must hold the sign of its channel's
last pulse. A ``torch.nn.GRU`` (1 layer, and a 2-layer stack in the full run) with a linear
readout is trained on the per-step squared error (Adam), then turned into the equivalent
``rnnode.ODERNN`` (``rnnode.from_torch``: Euler step 1 = the GRU). Its fixed points at zero input
are found by ``rnnode.analysis.stability.fixed_points`` (Newton from many starts, batched,
de-duplicated) and classified by the step map's Jacobian eigenvalues mu = 1 + lambda
(``rnnode.analysis.stability.eigenvalues``): stable (every |mu| < 1), saddle with k unstable
directions, or unstable (every |mu| > 1).

Published picture: 8 stable fixed points, one per memory corner (the readout's sign pattern), with
saddles between them.

Claims (rules fixed before any run):
- ``points_are_roots`` (verification): every returned point has max |F(h*, 0)| < 1e-9.
- ``eight_stable_points`` (finding): per trained 1-layer GRU, |number of stable points - 8|, mean
  over seeds, below 0.5.
- ``corners_covered`` (finding): per trained 1-layer GRU, 8 minus the number of distinct readout
  sign patterns among its stable points, mean over seeds, below 0.5.

Figure ``fixed_points``: test trajectories and the fixed points in the top-3 principal
components of the states (first seed of each variant), coloured by class.

Full run: not completed on the 2 shared cores (one 1-layer seed took 12 min wall at load
average 15; the whole run needs about an hour there). The quick setting takes seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.analysis.stability import eigenvalues, fixed_points

from ._run import Context, one_thread
from ._stats import bootstrap_interval

PULSE = 0.05
ROOT_TOL = 1e-9
BITS = 3


def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the quick and the full setting."""
    if quick:
        return {
            "variants": {"gru1": 1},
            "hidden": 8,
            "length": 20,
            "batch": 16,
            "steps": 20,
            "lr": 1e-2,
            "seeds": 2,
            "starts": 64,
        }
    return {
        "variants": {"gru1": 1, "gru2": 2},
        "hidden": 24,
        "length": 60,
        "batch": 64,
        "steps": 1500,
        "lr": 5e-3,
        "seeds": 3,
        "starts": 512,
    }


def flip_flop(batch: int, length: int, generator: torch.Generator) -> tuple:
    """Inputs (T, B, 3) of sparse +-1 pulses and targets (T, B, 3): the last pulse's sign."""
    shape = (length, batch, BITS)
    pulses = (torch.rand(shape, generator=generator) < PULSE).double()
    pulses[0] = 1.0
    signs = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
    x = pulses * signs.double()
    y = torch.empty(shape, dtype=torch.float64)
    state = x[0]
    for t in range(length):
        state = torch.where(x[t] != 0, x[t], state)
        y[t] = state
    return x, y


def train(layers: int, cfg: dict, seed: int) -> tuple[torch.nn.GRU, torch.nn.Linear, float]:
    """A GRU and readout trained on the flip-flop task; the test mean squared error."""
    torch.manual_seed(seed)
    gru = torch.nn.GRU(BITS, cfg["hidden"], layers, dtype=torch.float64)
    head = torch.nn.Linear(cfg["hidden"], BITS, dtype=torch.float64)
    params = list(gru.parameters()) + list(head.parameters())
    optimiser = torch.optim.Adam(params, lr=cfg["lr"])
    generator = torch.Generator().manual_seed(seed + 11)
    for _ in range(cfg["steps"]):
        x, y = flip_flop(cfg["batch"], cfg["length"], generator)
        loss = ((head(gru(x)[0]) - y) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    x, y = flip_flop(256, cfg["length"], torch.Generator().manual_seed(seed + 99))
    with torch.no_grad():
        mse = float(((head(gru(x)[0]) - y) ** 2).mean())
    return gru, head, mse


def classify(model: rnnode.ODERNN, points: torch.Tensor) -> list[dict[str, Any]]:
    """Each point's residual, step-map eigenvalue moduli and class."""
    x = torch.zeros(model.input_size, dtype=torch.float64)
    out = []
    with torch.no_grad():
        residual = model.joint_field(points, x.expand(len(points), -1)).abs().amax(dim=(1, 2))
    lam = eigenvalues(model, points, x).detach()
    for i in range(len(points)):
        moduli = (1 + lam[i]).abs()
        unstable = int((moduli > 1).sum())
        kind = "stable" if unstable == 0 else "unstable" if unstable == len(moduli) else "saddle"
        out.append(
            {
                "residual": float(residual[i]),
                "unstable_directions": unstable,
                "class": kind,
                "max_modulus": float(moduli.max()),
            }
        )
    return out


def analyse(layers: int, cfg: dict, seed: int) -> dict[str, Any]:
    """Train, find and classify fixed points, and keep test trajectories for the figure."""
    gru, head, mse = train(layers, cfg, seed)
    model = rnnode.from_torch(gru)
    points = fixed_points(
        model, torch.zeros(BITS, dtype=torch.float64), num_starts=cfg["starts"], seed=seed
    )
    info = classify(model, points) if len(points) else []
    with torch.no_grad():
        corners = torch.sign(head(points[:, -1])).numpy() if len(points) else np.zeros((0, 3))
        x, _ = flip_flop(8, cfg["length"] * 2, torch.Generator().manual_seed(seed + 5))
        trajectories = gru(x)[0].numpy()  # (T, 8, H): top layer
    stable = [i for i, p in enumerate(info) if p["class"] == "stable"]
    return {
        "test_mse": mse,
        "points": points[:, -1].numpy(),
        "info": info,
        "stable": len(stable),
        "saddles": sum(p["class"] == "saddle" for p in info),
        "corners": len({tuple(corners[i]) for i in stable}),
        "trajectories": trajectories,
    }


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    results: dict[str, list[dict[str, Any]]] = {}
    with one_thread():
        for name, layers in cfg["variants"].items():
            results[name] = [
                analyse(layers, cfg, seed) for seed in ctx.progress(seeds, f"{name} seeds")
            ]
    residuals = [p["residual"] for runs in results.values() for r in runs for p in r["info"]]
    ctx.verify(
        "points_are_roots",
        max(residuals, default=0.0) < ROOT_TOL,
        f"every fixed point returned has max |F(h*, 0)| < {ROOT_TOL:g}",
        value=max(residuals, default=0.0),
        bound=ROOT_TOL,
    )
    one = results["gru1"]
    off = np.array([abs(r["stable"] - 8) for r in one], dtype=float)
    ctx.finding(
        "eight_stable_points",
        "a GRU trained on the 3-bit flip-flop has 8 stable fixed points at zero input "
        "(|stable - 8| below 0.5 on average over seeds)",
        value=float(off.mean()),
        comparison="<",
        bound=0.5,
        interval=bootstrap_interval(off, seed=ctx.seed),
        control=8.0,
        control_label="published: 8 stable points (Sussillo & Barak 2013)",
        seeds=len(one),
    )
    missing = np.array([8 - r["corners"] for r in one], dtype=float)
    ctx.finding(
        "corners_covered",
        "the readout of the stable fixed points takes all 8 sign patterns (memory corners)",
        value=float(missing.mean()),
        comparison="<",
        bound=0.5,
        interval=bootstrap_interval(missing, seed=ctx.seed),
        control=8.0,
        control_label="published: one stable point per corner (Sussillo & Barak 2013)",
        seeds=len(one),
    )
    summary = {
        name: {k: [r[k] for r in runs] for k in ("test_mse", "stable", "saddles", "corners")}
        for name, runs in results.items()
    }
    ctx.figure(
        "fixed_points",
        _figure(results),
        caption="Test trajectories (grey) and fixed points at zero input in the top-3 principal "
        "components of the top layer's states (first seed): stable (blue), saddles (orange), "
        "unstable (red).",
        numbers=summary,
    )
    return {
        "settings": cfg,
        "summary": summary,
        "points": {
            name: [
                {
                    "classes": [p["class"] for p in r["info"]],
                    "unstable_directions": [p["unstable_directions"] for p in r["info"]],
                }
                for r in runs
            ]
            for name, runs in results.items()
        },
    }


def _figure(results) -> Figure:
    fig = Figure(figsize=(5 * len(results), 4.5))
    colours = {"stable": "C0", "saddle": "C1", "unstable": "C3"}
    for i, (name, runs) in enumerate(results.items()):
        ax = fig.add_subplot(1, len(results), i + 1, projection="3d")
        r = runs[0]
        states = r["trajectories"].reshape(-1, r["trajectories"].shape[-1])
        mean = states.mean(axis=0)
        _, _, vt = np.linalg.svd(states - mean, full_matrices=False)
        basis = vt[:3].T
        for b in range(r["trajectories"].shape[1]):
            path = (r["trajectories"][:, b] - mean) @ basis
            ax.plot(*path.T, color="0.7", lw=0.5)
        if len(r["points"]):
            proj = (r["points"] - mean) @ basis
            for kind, colour in colours.items():
                keep = [j for j, p in enumerate(r["info"]) if p["class"] == kind]
                if keep:
                    ax.scatter(*proj[keep].T, color=colour, s=25, label=kind, depthshade=False)
        ax.set_title(f"{name}: {r['stable']} stable, {r['saddles']} saddles", fontsize=9)
        ax.legend(fontsize=7)
    return fig
