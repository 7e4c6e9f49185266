"""Memory capacity (Jaeger 2001): short-term memory of linear and tanh stacks of 1 to 3 layers
against the spectral radius, with the linear closed form overlaid.

Stacks: ``rnnode.ODERNN`` stacks (cell ``"linear"`` or ``"rnn"`` with tanh, no bias; the discrete
RNN, Euler step 1) of ``num_layers`` layers of N / num_layers units, so every stack has N units.
Every W_hh is a Gaussian matrix rescaled to spectral radius rho (the joint map is block lower
triangular, so rho is also its radius); layer 1 reads the input through W_ih ~ N(0,
``INPUT_SCALE``^2), higher layers W_ih ~ N(0, 1 / H). The stack is driven by white noise
u_t ~ N(0, 1) with state noise xi ~ N(0, ``NOISE``^2) added to every unit's update (without it a
linear network's capacity is N at every radius, a statement about float64, not memory), simulated
in numpy with the model's weights (the same recurrence as the model's solve; tests check it).

Estimate: ``rnnode.analysis.memory.memory_function`` from all layers' states, delays 0..2N - 1,
readouts fitted on the first half of the samples and scored on the second. Theory for the linear
stacks: ``rnnode.analysis.memory.linear_memory_function`` of the joint map with the same noise.

Claims (rules fixed before any run):
- ``capacity_at_most_n`` (verification of Jaeger's bound): every closed-form linear capacity is
  at most N (to 1e-9), and every estimate at most N + ``ESTIMATE_SLACK``.
- ``linear_matches_closed_form`` (finding): mean over seeds of the largest |estimate - closed form|
  / N over radii and depths is below ``TOLERANCE`` = 0.05.
- ``linear_approaches_n`` (finding): the 1-layer linear capacity at the largest radius below 1 is
  above 0.8 N.
- ``tanh_peaks_near_boundary`` (finding): the radius maximising the 1-layer tanh capacity lies
  within ``PEAK_WINDOW`` = 0.2 of 1 (mean over seeds of |argmax - 1|).

Figure ``memory_capacity``: capacity / N against rho, linear (left, closed form dashed on top) and
tanh (right), 1 to 3 layers, mean and 95% interval over seeds.

Full run: 11 min 14 s wall on the 2 shared cores (load average about 12; 390 numpy
simulations of 6000 steps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.analysis.memory import linear_memory_function, memory_function

from ._figures import interval_line
from ._run import Context, settings_for
from ._stats import bootstrap_interval

INPUT_SCALE = 0.2
NOISE = 1e-3
TOLERANCE = 0.05
PEAK_WINDOW = 0.2
ESTIMATE_SLACK = 0.5
KINDS = ("linear", "tanh")


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "units": 24,
    "layers": [1, 2, 3],
    "radii": [0.2, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.02, 1.05, 1.1, 1.2, 1.4],
    "samples": 6000,
    "washout": 300,
    "seeds": 5,
}
QUICK = {
    "units": 6,
    "layers": [1, 2],
    "radii": [0.5, 0.9, 1.1],
    "samples": 1500,
    "washout": 100,
    "seeds": 2,
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def stack(kind: str, units: int, num_layers: int, radius: float, seed: int) -> rnnode.ODERNN:
    """The study's stack: ``num_layers`` layers of ``units // num_layers``, W_hh at radius rho."""
    hidden = units // num_layers
    generator = torch.Generator().manual_seed(seed)
    model = rnnode.ODERNN(
        1, hidden, num_layers, cell="linear" if kind == "linear" else "rnn", bias=False
    )
    with torch.no_grad():
        for layer, field in enumerate(model.layers):
            w = torch.randn(hidden, hidden, generator=generator, dtype=torch.float64)
            w *= radius / torch.linalg.eigvals(w).abs().max()
            field.weight_hh.copy_(w)
            scale = INPUT_SCALE if layer == 0 else hidden**-0.5
            fan = field.weight_ih.shape[1]
            field.weight_ih.copy_(
                scale * torch.randn(hidden, fan, generator=generator, dtype=torch.float64)
            )
    return model


def _weights(model: rnnode.ODERNN) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (f.weight_ih.detach().numpy().copy(), f.weight_hh.detach().numpy().copy())
        for f in model.layers
    ]


def simulate(
    model: rnnode.ODERNN, inputs: np.ndarray, noise: np.ndarray | None = None
) -> np.ndarray:
    """All layers' states (T, L * H) of the discrete stack h^l_t = f(W_hh h^l_{t-1} +
    W_ih h^{l-1}_t + xi^l_t), h^0_t = u_t, from rest; ``noise`` (T, L, H) or None."""
    f = (lambda z: z) if model.cell == "linear" else np.tanh
    weights = _weights(model)
    L, H = model.num_layers, model.hidden_size
    h = np.zeros((L, H))
    out = np.empty((len(inputs), L * H))
    for t, u in enumerate(inputs):
        below = np.array([u])
        for layer, (w_ih, w_hh) in enumerate(weights):
            z = w_hh @ h[layer] + w_ih @ below
            if noise is not None:
                z = z + noise[t, layer]
            h[layer] = f(z)
            below = h[layer]
        out[t] = h.ravel()
    return out


def joint_linear_map(model: rnnode.ODERNN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, b, M) of a linear stack written as H_t = A H_{t-1} + b u_t + M xi_t.

    H_t = D H_{t-1} + S H_t + e u_t + xi_t with D = blockdiag(W_hh), S the same-time W_ih blocks
    (strictly lower) and e layer 1's input weights: M = (I - S)^-1, A = M D, b = M e.
    """
    weights = _weights(model)
    L, H = model.num_layers, model.hidden_size
    n = L * H
    D, S, e = np.zeros((n, n)), np.zeros((n, n)), np.zeros(n)
    for layer, (w_ih, w_hh) in enumerate(weights):
        rows = slice(layer * H, (layer + 1) * H)
        D[rows, rows] = w_hh
        if layer == 0:
            e[rows] = w_ih[:, 0]
        else:
            S[rows, (layer - 1) * H : layer * H] = w_ih
    M = np.linalg.inv(np.eye(n) - S)
    return M @ D, M @ e, M


def capacity_point(kind: str, num_layers: int, radius: float, seed: int, cfg: dict) -> dict:
    """Estimated (and, for linear stacks below radius 1, closed-form) capacity of one stack."""
    model = stack(kind, cfg["units"], num_layers, radius, seed)
    rng = np.random.default_rng(seed + 17)
    u = rng.standard_normal(cfg["samples"])
    xi = NOISE * rng.standard_normal((cfg["samples"], num_layers, model.hidden_size))
    delays = 2 * cfg["units"]
    states = simulate(model, u, xi)
    result: dict[str, Any] = {"estimate": None, "closed_form": None}
    if np.isfinite(states).all() and np.abs(states).max() < 1e6:
        m = memory_function(states, u, delays, washout=cfg["washout"])
        result["estimate"] = float(m.sum())
    if kind == "linear" and radius < 1:
        A, b, M = joint_linear_map(model)
        closed = linear_memory_function(A, b, delays, noise=NOISE**2 * M @ M.T)
        result["closed_form"] = float(closed.sum())
    return result


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    N = cfg["units"]
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    radii = cfg["radii"]
    results = {
        (k, L, r, s): capacity_point(k, L, r, s, cfg)
        for k, L, r, s in ctx.progress(
            [(k, L, r, s) for k in KINDS for L in cfg["layers"] for r in radii for s in seeds],
            "stacks",
        )
    }
    closed = [v["closed_form"] for v in results.values() if v["closed_form"] is not None]
    estimates = [v["estimate"] for v in results.values() if v["estimate"] is not None]
    ctx.verify(
        "capacity_at_most_n",
        max(closed) <= N + 1e-9 and max(estimates) <= N + ESTIMATE_SLACK,
        f"memory capacity is at most N = {N} (Jaeger 2001): every closed-form linear capacity "
        f"(to 1e-9) and every estimate (to {ESTIMATE_SLACK}, sampling error)",
        value=max(max(closed), max(estimates)),
        bound=N,
    )
    below = [r for r in radii if r < 1]
    gaps = np.array(
        [
            max(
                abs(
                    results["linear", L, r, s]["estimate"]
                    - results["linear", L, r, s]["closed_form"]
                )
                / N
                for L in cfg["layers"]
                for r in below
            )
            for s in seeds
        ]
    )
    ctx.finding_over_seeds(
        "linear_matches_closed_form",
        "the estimated capacity of every linear stack (1 to 3 layers, every radius below 1) is "
        f"within {TOLERANCE} N of the closed form (largest gap per seed, mean over seeds)",
        gaps,
        comparison="<",
        bound=TOLERANCE,
        control=0.0,
        control_label="closed form (A, b, noise) of the joint linear map",
    )
    top = max(below)
    near = np.array([results["linear", 1, top, s]["estimate"] / N for s in seeds])
    ctx.finding_over_seeds(
        "linear_approaches_n",
        f"a 1-layer linear network at radius {top:g} holds more than 0.8 N of its past input",
        near,
        comparison=">",
        bound=0.8,
        control=float(np.mean([results["linear", 1, min(radii), s]["estimate"] for s in seeds]))
        / N,
        control_label=f"linear capacity / N at radius {min(radii):g}",
    )
    peaks = []
    for s in seeds:
        values = [results["tanh", 1, r, s]["estimate"] or -np.inf for r in radii]
        peaks.append(radii[int(np.argmax(values))])
    off = np.abs(np.array(peaks) - 1.0)
    ctx.finding_over_seeds(
        "tanh_peaks_near_boundary",
        f"the radius that maximises a 1-layer tanh network's capacity lies within {PEAK_WINDOW} "
        "of the stability boundary rho = 1",
        off,
        comparison="<",
        bound=PEAK_WINDOW,
        control=1.0,
        control_label="stability boundary rho = 1",
    )

    table: dict[str, Any] = {}
    for k in KINDS:
        for L in cfg["layers"]:
            for r in radii:
                est = [results[k, L, r, s]["estimate"] for s in seeds]
                ok = np.array([e for e in est if e is not None]) / N
                entry: dict[str, Any] = {"estimates": est}
                if ok.size:
                    entry["mean"] = float(ok.mean())
                    entry["interval"] = list(bootstrap_interval(ok, seed=ctx.seed))
                cf = [results[k, L, r, s]["closed_form"] for s in seeds]
                if cf[0] is not None:
                    entry["closed_form"] = cf
                table.setdefault(k, {}).setdefault(str(L), {})[f"{r:g}"] = entry
    ctx.figure(
        "memory_capacity",
        _figure(table, N),
        caption=f"Memory capacity / N (N = {N} units in every stack; state noise {NOISE:g}) "
        "against the spectral radius of W_hh, mean and 95% interval over seeds. Left: linear "
        "stacks, dashed: closed form. Right: tanh stacks.",
        numbers={"tanh_peak_radius": peaks, "linear_near_one": near.tolist()},
    )
    return {"settings": cfg, "capacity": table, "tanh_peak_radius": peaks}


def _figure(table, N) -> Figure:
    fig = Figure(figsize=(10, 3.8))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind in zip(axes, KINDS, strict=True):
        for i, (L, by_r) in enumerate(table[kind].items()):
            pts = [(float(r), e) for r, e in by_r.items() if "mean" in e]
            r, records = [p[0] for p in pts], [p[1] for p in pts]
            interval_line(ax, r, records, color=f"C{i}", label=f"{L} layer(s)", zorder=2)
            cf = [
                (float(r), np.mean(e["closed_form"]) / N)
                for r, e in by_r.items()
                if "closed_form" in e
            ]
            if cf:
                ax.plot(
                    *zip(*cf, strict=True),
                    "--",
                    color="k",
                    lw=1.2,
                    zorder=5,
                    label="closed form" if i == 0 else None,
                )
        ax.axvline(1.0, color="0.6", lw=0.8)
        ax.set_xlabel("spectral radius of W_hh")
        ax.set_title(f"{kind} stacks", fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("memory capacity / N")
    return fig
