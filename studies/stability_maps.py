"""Stability maps: a tanh stack's fixed-point eigenvalues over two parameters, Euler and RK4.

Maps over (W_hh scale, input level) with the Euler and RK4 step regions, and simulated
trajectories that confirm them.

The stack dh/dt = F(h, x) (coupling="continuous", tau = 1) at a constant input x = q (1, ..., 1),
with every W_hh scaled by p, rests at a fixed point h*(p, q). Its Jacobian J is block lower
triangular, so the fixed point is stable when max Re lambda(J) < 0 (``rnnode.analysis.jacobians``).
A fixed step dt maps a perturbation by R(dt J): explicit Euler (R(z) = 1 + z; with dt = 1 this is
the discrete tanh RNN) and RK4 (the Taylor polynomial of e^z to degree 4).

Claim 1 (independent eigenvalues). At every converged grid point the fixed point is a root of
the field written in numpy (max |F| < 1e-9) and the largest real part from numpy.linalg.eigvals
of the analytic blocks J_ll = -I + diag(1 - tanh(z_l)^2) p W_hh equals the map's to 1e-10.

Claim 2 (regions). |1 + lambda| < 1 implies Re lambda < 0, so every point where the Euler step
map (dt = 1) is stable is a stable point of the ODE: no grid point violates it. The RK4 region
at dt = 1 covers more of the left half-plane: it is stable at no fewer grid points than Euler.

Claim 3 (trajectories). From h* + delta (|delta| = 1e-7), the perturbation's growth rate,
fitted as the slope of log |delta_t| while 1e-9 < |delta_t| < 1e-3, has the sign that the map
predicts: RK4 with step 0.05 (the ODE) against max Re lambda, Euler with step 1 (the RNN) against
log max |1 + lambda|, at the grid points farthest inside each region.

Figures: ``euler_map`` and ``rk4_map`` (``rnnode.analysis.plots.plot_stability_map``) and
``trajectories`` (log |delta_t| against t with the predicted slopes).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.analysis import stability_map
from rnnode.analysis.plots import plot_stability_map

from ._run import Context, settings_for

ROOT_TOL = 1e-9  # Newton stops at max |F| < 1e-10; the numpy field is evaluated at the result
EIG_TOL = 1e-10  # eigenvalues of 4 x 4 blocks with entries O(1): rounding is ~1e-15
DELTA0 = 1e-7
FIT_WINDOW = (1e-9, 1e-3)  # above the fixed point's residual, below the nonlinear regime


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "input_size": 2,
    "hidden_size": 6,
    "num_layers": 3,
    "p": np.linspace(0.25, 4.0, 31).tolist(),
    "q": np.linspace(-2.0, 2.0, 31).tolist(),
    "length": 40,
}
QUICK = {
    "hidden_size": 4,
    "num_layers": 2,
    "p": np.linspace(0.25, 4.0, 7).tolist(),
    "q": np.linspace(-2.0, 2.0, 7).tolist(),
    "length": 30,
}


def settings(quick: bool) -> dict[str, Any]:
    """Grid and stack sizes: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def _numpy_check(model: rnnode.ODERNN, p: float, q: float, h: np.ndarray) -> tuple[float, float]:
    """max |F(h)| and max Re lambda of the analytic Jacobian blocks, in numpy."""
    drive = q * np.ones(model.input_size)
    residual, max_real = 0.0, -np.inf
    for layer in range(model.num_layers):
        f = model.field(layer)
        w_ih, w_hh, b_ih, b_hh = (
            getattr(f, n).detach().numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        z = w_ih @ drive + b_ih + p * w_hh @ h[layer] + b_hh
        residual = max(residual, float(np.abs(np.tanh(z) - h[layer]).max()))
        block = -np.eye(len(z)) + (1 - np.tanh(z) ** 2)[:, None] * (p * w_hh)
        max_real = max(max_real, float(np.linalg.eigvals(block).real.max()))
        drive = h[layer]
    return residual, max_real


def _scaled(model: rnnode.ODERNN, p: float) -> rnnode.ODERNN:
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        for field in scaled.layers:
            field.weight_hh.mul_(p)
    return scaled


def perturbation(
    model: rnnode.ODERNN, p: float, q: float, h: np.ndarray, length: int, **solve_kwargs
) -> np.ndarray:
    """|delta_t| at t = 0..length from h* + delta at a constant input q (continuous coupling)."""
    scaled = _scaled(model, p)
    generator = torch.Generator().manual_seed(1)
    delta = torch.randn(*h.shape, generator=generator, dtype=torch.float64)
    delta *= DELTA0 / delta.norm()
    star = torch.as_tensor(h)
    x = torch.full((length, 1, model.input_size), q)
    with torch.no_grad():
        states = scaled.solve(x, (star + delta)[:, None], coupling="continuous", **solve_kwargs)
    gap = states.states[:, 0, :, 0] - star[:, None]  # (L, T + 1, S)
    return gap.transpose(0, 1).flatten(1).norm(dim=-1).numpy()


def growth_rate(norms: np.ndarray) -> float:
    """Slope of log |delta_t| against t over the samples inside ``FIT_WINDOW`` (NaN: < 3)."""
    t = np.arange(len(norms))
    keep = (norms > FIT_WINDOW[0]) & (norms < FIT_WINDOW[1])
    if keep.sum() < 3:
        return float("nan")
    return float(np.polyfit(t[keep], np.log(norms[keep]), 1)[0])


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    torch.manual_seed(ctx.seed)
    model = rnnode.ODERNN(cfg["input_size"], cfg["hidden_size"], cfg["num_layers"], cell="rnn")
    # Any: ``StabilityMap.numpy()`` holds numpy arrays in the fields typed as tensors.
    maps: dict[str, Any] = {
        method: stability_map(
            model, cfg["p"], cfg["q"], method=method, dt=1.0, seed=ctx.seed
        ).numpy()
        for method in ctx.progress(("euler", "rk4"), "maps")
    }
    euler, rk4 = maps["euler"], maps["rk4"]
    converged = euler.converged & rk4.converged
    ok = np.argwhere(converged)

    residuals, eig_errors = [], []
    for i, j in ok:
        residual, max_real = _numpy_check(model, euler.p[i], euler.q[j], euler.fixed_points[i, j])
        residuals.append(residual)
        eig_errors.append(abs(max_real - euler.max_real[i, j]))
    ctx.verify(
        "converged",
        bool(converged.mean() >= 0.95),
        "Newton's method finds the fixed point at >= 95% of the grid points",
        value=float(converged.mean()),
        bound=0.95,
    )
    ctx.verify(
        "eigenvalues_match_numpy",
        max(residuals) < ROOT_TOL and max(eig_errors) < EIG_TOL,
        f"at every converged point the numpy field vanishes (max |F| < {ROOT_TOL:g}) and "
        f"numpy.linalg.eigvals of the analytic blocks gives the same max Re lambda "
        f"(to {EIG_TOL:g}); value: the largest eigenvalue difference",
        value=max(eig_errors),
        bound=EIG_TOL,
    )

    stable_ode = (euler.max_real < 0) & converged
    stable_euler = (euler.spectral_radius < 1) & converged
    stable_rk4 = (rk4.spectral_radius < 1) & converged
    counts = {
        "grid": int(converged.size),
        "converged": int(converged.sum()),
        "ode_stable": int(stable_ode.sum()),
        "euler_stable": int(stable_euler.sum()),
        "rk4_stable": int(stable_rk4.sum()),
        "euler_stable_but_ode_unstable": int((stable_euler & ~stable_ode).sum()),
        "ode_stable_but_euler_unstable": int((stable_ode & ~stable_euler).sum()),
    }
    ctx.verify(
        "euler_region_inside_ode_region",
        counts["euler_stable_but_ode_unstable"] == 0 and counts["euler_stable"] > 0,
        "every grid point where Euler with dt = 1 (the discrete RNN) is stable has "
        "max Re lambda < 0 (|1 + lambda| < 1 implies Re lambda < 0: a theorem, checked on the "
        "computed maps), and there is such a point; value: grid points violating it",
        value=counts["euler_stable_but_ode_unstable"],
        bound=0,
    )
    ctx.verify(
        "rk4_region_larger",
        counts["rk4_stable"] >= counts["euler_stable"],
        "RK4 with dt = 1 is stable at no fewer grid points than Euler with dt = 1 (RK4's "
        "stability region contains Euler's disk: a theorem, checked on the computed maps)",
        value=counts["rk4_stable"] - counts["euler_stable"],
        bound=0,
    )

    # The points farthest inside each region, by the margin of their own criterion.
    margin_ode = np.where(converged, euler.max_real, np.nan)
    log_rho = np.where(converged, np.log(euler.spectral_radius), np.nan)
    picks = {
        "stable": np.nanargmin(np.where(stable_euler, log_rho, np.nan)),
        "unstable": np.nanargmax(margin_ode),
    }
    if counts["ode_stable_but_euler_unstable"]:
        picks["ode_stable_rnn_unstable"] = np.nanargmax(
            np.where(stable_ode & ~stable_euler, log_rho, np.nan)
        )
    trajectories: dict[str, dict[str, Any]] = {}
    for name, flat in picks.items():
        i, j = np.unravel_index(flat, converged.shape)
        p, q, h = float(euler.p[i]), float(euler.q[j]), euler.fixed_points[i, j]
        ode = perturbation(model, p, q, h, cfg["length"], method="rk4", step_size=0.05)
        rnn = perturbation(model, p, q, h, cfg["length"], method="euler", step_size=1.0)
        trajectories[name] = {
            "p": p,
            "q": q,
            "max_real": float(euler.max_real[i, j]),
            "log_euler_radius": float(log_rho[i, j]),
            "ode_norms": ode,
            "rnn_norms": rnn,
            "ode_rate": growth_rate(ode),
            "rnn_rate": growth_rate(rnn),
        }
    ctx.verify(
        "trajectories_confirm",
        all(
            np.sign(t["ode_rate"]) == np.sign(t["max_real"])
            and np.sign(t["rnn_rate"]) == np.sign(t["log_euler_radius"])
            for t in trajectories.values()
        ),
        "simulated perturbations grow or decay as predicted: the sign of the fitted rate of "
        "the ODE (RK4, step 0.05) is that of max Re lambda, and the RNN's (Euler, step 1) that "
        "of log max |1 + lambda|, at the points farthest inside each region",
    )

    labels = {"p_label": "W_hh scale p", "q_label": "input level q"}
    for method, smap in maps.items():
        ctx.figure(
            f"{method}_map",
            plot_stability_map(smap, **labels),
            caption=f"Left: max Re lambda(J) at the fixed point (black: 0). Right: spectral radius "
            f"of the {method} step map with dt = 1 (black: 1).",
            numbers={k: v for k, v in counts.items() if "rk4" not in k or method == "rk4"},
        )
    ctx.figure(
        "trajectories",
        _trajectory_figure(trajectories),
        caption="|h_t - h*| from a perturbation of 1e-7 at the fixed point: the ODE (RK4, "
        "step 0.05, solid) and the RNN (Euler, step 1, dots); dashed: slopes max Re lambda and "
        "log max |1 + lambda| predicted by the map.",
        numbers={
            k: {n: t[n] for n in ("p", "q", "max_real", "ode_rate", "rnn_rate")}
            for k, t in trajectories.items()
        },
    )
    return {
        "settings": cfg,
        "counts": counts,
        "max_numpy_residual": max(residuals),
        "max_eigenvalue_error": max(eig_errors),
        "max_real": euler.max_real,
        "euler_spectral_radius": euler.spectral_radius,
        "rk4_spectral_radius": rk4.spectral_radius,
        "trajectories": trajectories,
    }


def _trajectory_figure(trajectories: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(4 * len(trajectories), 3.4), layout="constrained")
    axes = fig.subplots(1, len(trajectories), squeeze=False)[0]
    for ax, (name, tr) in zip(axes, trajectories.items(), strict=True):
        t = np.arange(len(tr["ode_norms"]))
        ax.semilogy(t, tr["ode_norms"], "-", color="C0", label="ODE (RK4)")
        ax.semilogy(t, tr["rnn_norms"], "o", color="C1", markersize=3, label="RNN (Euler, 1)")
        for rate, color in ((tr["max_real"], "C0"), (tr["log_euler_radius"], "C1")):
            ax.semilogy(t, DELTA0 * np.exp(rate * t), "--", color=color, alpha=0.6)
        ax.set_ylim(1e-12, 1e2)
        ax.set_title(f"{name}: p={tr['p']:.2f}, q={tr['q']:.2f}", fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|h_t - h*|")
    return fig
