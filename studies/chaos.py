"""Chaos in random networks: measured largest Lyapunov exponents of h <- tanh(g W h) against the
mean-field curve (Molgedey, Schuster & Ritter 1992), and the continuous field's exponent on a gain
grid from 0.8 to 3 with its measured zero crossing against the mean-field transition at g = 1
(Sompolinsky, Crisanti & Sommers 1988).

Networks: one tanh ``rnnode.ODERNN`` layer without bias and without input (W_ih = 0, x = 0),
W_hh = g W with W_ij ~ N(0, 1 / N), a fresh W per seed (the same W at every gain of a seed). The
discrete map is the layer solved by Euler with step 1 (h_{t+1} = tanh(g W h_t)); the continuous
field is dh/dt = -h + tanh(g W h) (RK4, step 0.5), which has the same exponents as
dx/dt = -x + g W tanh(x) (x = g W h is a linear change of coordinates). Exponents come from
``rnnode.analysis.lyapunov_exponents`` (QR method, leading exponent only), averaged over
``trajectories`` random starts of the same network.

Theory: discrete map, ``rnnode.analysis.meanfield.lyapunov_exponent``, lambda = 1/2 ln(g^2
E[sech^4(sqrt(q) z)]) with q = g^2 E[tanh^2(sqrt(q) z)]; ln g below g = 1. Published values: 0.065
at g = 1.5, 0.155 at g = 2, 0.312 at g = 3 (our quadrature gives 0.0652, 0.1547, 0.3102).
Continuous field, N -> infinity: the origin is the attractor below g = 1 with exponent g - 1, and
the field is chaotic above g = 1. At finite N the origin of a given W loses stability at
g_0 = 1 / max Re eig(W) (exponent -1 + g max Re eig(W) below it: ``origin_exponent``), and above
it a finite network can settle on a stable fixed point or limit cycle (exponent <= 0) instead of
chaos, the more often the smaller N and the closer g is to 1; the exponent of a finite-time
average over ``continuous_duration`` time units (after ``continuous_transient``) carries an error of
order 1 / duration, and near g = 1 relaxation times grow (critical slowing), so a weakly negative
exponent and a weakly chaotic one are hard to tell apart there.

Measured crossing: for a curve of exponents on the gain grid, ``crossing`` is the gain above which
the curve stays >= 0 (linear interpolation at its last sign change from negative to non-negative;
the grid's first gain when it is never negative, its last when it ends negative). The crossing of
the mean curve over networks, with a BCa bootstrap interval over networks.

Claims (rules fixed before any run):
- ``mean_field_published``: our quadrature reproduces the published values to 0.005 (verification).
- ``agree_g1_5``, ``agree_g2``, ``agree_g3`` (findings, discrete map, g = 1.5, 2, 3): at the
  largest N the mean over networks of |lambda_measured - lambda_mean-field| is below ``TOLERANCE``
  = 0.02.
- ``finite_n_departs`` (finding, discrete map): at the smallest N the measurement falls below the
  mean-field value by more than at the largest N (mean over g in the chaotic range of the gap
  difference > 0).
- ``continuous_stable_below_1`` / ``continuous_chaotic_above_1`` (findings, continuous field at
  N = ``continuous_size``): the largest exponent is negative at g = ``G_BELOW`` and positive at
  g = ``G_ABOVE``.
- ``crossing_near_1`` (finding): the measured crossing of the continuous field's mean exponent
  curve at N = ``continuous_size`` is below 1 + ``CROSSING_MARGIN`` = 1.2.
- ``crossing_falls_with_n`` (finding): the crossing at the smaller size ``continuous_small_size``
  minus the crossing at ``continuous_size`` is > 0 (finite size moves the apparent transition up).

Figure ``chaos``: left, the discrete map's exponent against g for each N; right, the continuous
field's, with the origin's exponent of the same networks, the N -> infinity limit and the crossing
with its interval; means over networks with Student-t 95% intervals.

Cost: about 80 s of one core per seed (continuous field at N = 200 most of it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.analysis import lyapunov_exponents
from rnnode.analysis.meanfield import lyapunov_exponent

from ._figures import interval_line
from ._run import Context, one_thread, settings_for
from ._stats import t_interval

TOLERANCE = 0.02
PUBLISHED = {1.5: 0.065, 2.0: 0.155, 3.0: 0.312}
PUBLISHED_TOL = 0.005  # the published values are given to 3 decimals
G_BELOW = 0.8
G_ABOVE = 2.0
CROSSING_MARGIN = 0.2


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "sizes": [50, 100, 200, 500],
    "gains": [0.5, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0],
    "seeds": 20,
    "trajectories": 2,
    "duration": 200,
    "transient": 50,
    "continuous_size": 200,
    "continuous_small_size": 100,
    "continuous_gains": [G_BELOW, 0.9, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, G_ABOVE, 2.5, 3.0],
    "continuous_trajectories": 1,
    "continuous_duration": 400,
    "continuous_transient": 200,
}
QUICK = {
    "sizes": [10, 20],
    "gains": [1.5, 2.0, 3.0],
    "seeds": 2,
    "duration": 20,
    "transient": 5,
    "continuous_size": 12,
    "continuous_small_size": 8,
    "continuous_gains": [G_BELOW, 1.2, G_ABOVE],
    "continuous_duration": 6,
    "continuous_transient": 2,
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def network(size: int, gain: float, seed: int) -> rnnode.ODERNN:
    """One tanh layer, no bias, no input weights, W_hh = g W with W_ij ~ N(0, 1 / size)."""
    generator = torch.Generator().manual_seed(seed)
    model = rnnode.ODERNN(1, size, 1, cell="rnn", bias=False)
    with torch.no_grad():
        field = model.layers[0]
        field.weight_ih.zero_()
        weight = torch.randn(size, size, generator=generator, dtype=field.weight_hh.dtype)
        field.weight_hh.copy_(gain * weight / size**0.5)
    return model


def origin_exponent(model: rnnode.ODERNN) -> float:
    """The continuous field's exponent at its origin, -1 + max Re eig(W_hh) (the largest real
    part of the Jacobian -I + W_hh at h = 0): the largest exponent while the origin is stable."""
    w = model.layers[0].weight_hh.detach().numpy()
    return float(-1 + np.linalg.eigvals(w).real.max())


def crossing(gains: list[float] | np.ndarray, curve: list[float] | np.ndarray) -> float:
    """The gain above which ``curve`` (exponents on increasing ``gains``) stays >= 0: linear
    interpolation at its last sign change from negative to non-negative; ``gains[0]`` when it is
    never negative, ``gains[-1]`` when it ends negative."""
    g = np.asarray(gains, dtype=float)
    c = np.asarray(curve, dtype=float)
    if g.shape != c.shape or g.ndim != 1 or g.size < 2 or np.any(np.diff(g) <= 0):
        raise ValueError(
            f"gains, curve: expected equal-length 1-d arrays on increasing gains, got {g}, {c}"
        )
    negative = np.flatnonzero(c < 0)
    if negative.size == 0:
        return float(g[0])
    i = int(negative[-1])
    if i == g.size - 1:
        return float(g[-1])
    return float(g[i] + (g[i + 1] - g[i]) * (-c[i]) / (c[i + 1] - c[i]))


def largest_exponent(
    model: rnnode.ODERNN,
    trajectories: int,
    duration: float,
    transient: float,
    seed: int,
    *,
    continuous: bool = False,
) -> float:
    """Mean over ``trajectories`` random starts of the leading Lyapunov exponent (per unit time):
    the discrete map (Euler, step 1) or the continuous field (RK4, step 0.5, QR every 2)."""
    generator = torch.Generator().manual_seed(seed + 7919)
    size = model.hidden_size
    h0 = torch.randn(trajectories, 1, size, generator=generator, dtype=torch.float64)
    options: dict[str, Any] = (
        {"method": "rk4", "step_size": 0.5, "interval": 2.0}
        if continuous
        else {"method": "euler", "step_size": 1.0, "interval": 1.0}
    )
    exponents = lyapunov_exponents(
        model,
        h0,
        torch.zeros(1, dtype=torch.float64),
        duration=float(duration),
        transient=float(transient),
        num_exponents=1,
        **options,
    )
    return float(exponents.mean())


def _summary(samples: np.ndarray) -> dict[str, Any]:
    lo, hi = t_interval(samples)
    return {"mean": float(np.mean(samples)), "interval": [lo, hi], "samples": samples.tolist()}


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    gains = np.asarray(cfg["gains"], dtype=float)
    theory = lyapunov_exponent(gains)
    published = {g: float(lyapunov_exponent(g)) for g in PUBLISHED}
    ctx.verify(
        "mean_field_published",
        all(abs(published[g] - v) < PUBLISHED_TOL for g, v in PUBLISHED.items()),
        "the mean-field exponent by quadrature reproduces the published 0.065 (g = 1.5), "
        f"0.155 (g = 2) and 0.312 (g = 3) to {PUBLISHED_TOL}",
        value=max(abs(published[g] - v) for g, v in PUBLISHED.items()),
        bound=PUBLISHED_TOL,
    )

    discrete: dict[str, Any] = {}
    with one_thread():
        points = [(n, g) for n in cfg["sizes"] for g in gains]
        for n, g in ctx.progress(points, "discrete map"):
            samples = np.array(
                [
                    largest_exponent(
                        network(n, g, ctx.seed + 1000 * s + n),
                        cfg["trajectories"],
                        cfg["duration"],
                        cfg["transient"],
                        ctx.seed + s,
                    )
                    for s in range(cfg["seeds"])
                ]
            )
            discrete.setdefault(str(n), {})[f"{g:g}"] = _summary(samples)
        continuous: dict[str, Any] = {}
        sizes = [cfg["continuous_small_size"], cfg["continuous_size"]]
        points = [(n, g) for n in sizes for g in cfg["continuous_gains"]]
        for n, g in ctx.progress(points, "continuous field"):
            samples = np.array(
                [
                    largest_exponent(
                        network(n, g, ctx.seed + 1000 * s + n),
                        cfg["continuous_trajectories"],
                        cfg["continuous_duration"],
                        cfg["continuous_transient"],
                        ctx.seed + s,
                        continuous=True,
                    )
                    for s in range(cfg["seeds"])
                ]
            )
            continuous.setdefault(str(n), {})[f"{g:g}"] = _summary(samples)
    # the origin's exponent of the same networks (W is the seed's; g scales it)
    origin = {
        str(n): {
            f"{g:g}": _summary(
                np.array(
                    [
                        origin_exponent(network(n, g, ctx.seed + 1000 * s + n))
                        for s in range(cfg["seeds"])
                    ]
                )
            )
            for g in cfg["continuous_gains"]
        }
        for n in sizes
    }

    largest, smallest = str(max(cfg["sizes"])), str(min(cfg["sizes"]))
    agreement = {}
    for g in PUBLISHED:
        samples = np.abs(np.array(discrete[largest][f"{g:g}"]["samples"]) - published[g])
        agreement[f"{g:g}"] = float(samples.mean())
        ctx.finding_over_seeds(
            "agree_g" + f"{g:g}".replace(".", "_"),
            f"at N = {largest} the measured largest exponent of h <- tanh(g W h) at g = {g:g} "
            f"is within {TOLERANCE} per step of the mean-field value",
            samples,
            comparison="<",
            bound=TOLERANCE,
            control=published[g],
            control_label="mean-field theory (Molgedey et al. 1992)",
        )
    chaotic = [f"{g:g}" for g in gains if g > 1]
    gaps = np.array(
        [
            np.mean(
                [
                    (discrete[smallest][g]["samples"][s] - discrete[largest][g]["samples"][s])
                    for g in chaotic
                ]
            )
            for s in range(cfg["seeds"])
        ]
    )
    # gap difference: (theory - small N) - (theory - large N) = large N - small N measurement
    departure = -gaps
    ctx.finding_over_seeds(
        "finite_n_departs",
        f"finite size lowers the exponent: averaged over g > 1, N = {largest} measures a larger "
        f"exponent than N = {smallest} (so N = {smallest} departs further below mean-field)",
        departure,
        comparison=">",
        bound=0.0,
        control=0.0,
        control_label="no size effect",
    )
    n, small = str(cfg["continuous_size"]), str(cfg["continuous_small_size"])
    for name, g, comparison, words in (
        ("continuous_stable_below_1", G_BELOW, "<", "negative"),
        ("continuous_chaotic_above_1", G_ABOVE, ">", "positive"),
    ):
        ctx.finding_over_seeds(
            name,
            f"the continuous field dh/dt = -h + g W tanh(h) (N = {n}) has a {words} largest "
            f"Lyapunov exponent at g = {g:g} (chaos sets in at g = 1, Sompolinsky et al. 1988)",
            continuous[n][f"{g:g}"]["samples"],
            comparison=comparison,
            bound=0.0,
            control=0.0,
            control_label="transition to chaos at g = 1 (Sompolinsky, Crisanti & Sommers 1988)",
        )
    cgains = list(cfg["continuous_gains"])
    curves = {
        size: np.array([continuous[size][f"{g:g}"]["samples"] for g in cgains]).T
        for size in (small, n)
    }  # (seeds, gains)
    index = np.arange(cfg["seeds"], dtype=float)

    def crossing_of(size: str) -> Any:
        return lambda idx: crossing(cgains, curves[size][idx.astype(int)].mean(axis=0))

    measured = {size: crossing_of(size)(index) for size in (small, n)}
    verdict = ctx.finding_bootstrap(
        "crossing_near_1",
        f"the continuous field's mean largest exponent over networks (N = {n}, averaged over "
        f"{cfg['continuous_duration']:g} time units) stays >= 0 above a gain below "
        f"1 + {CROSSING_MARGIN:g} (the crossing; mean field: 1)",
        index,
        crossing_of(n),
        comparison="<",
        bound=1 + CROSSING_MARGIN,
        control=1.0,
        control_label="mean-field transition g = 1 (Sompolinsky, Crisanti & Sommers 1988)",
    )
    crossing_interval = ctx.claims["crossing_near_1"]["interval"]
    ctx.finding_bootstrap(
        "crossing_falls_with_n",
        f"finite size moves the apparent transition up: the crossing at N = {small} minus the "
        f"crossing at N = {n} is > 0",
        index,
        lambda idx: crossing_of(small)(idx) - crossing_of(n)(idx),
        comparison=">",
        bound=0.0,
        control=0.0,
        control_label="no size effect",
    )
    ctx.figure(
        "chaos",
        _figure(gains, discrete, continuous, origin, measured[n], crossing_interval, n),
        caption="Largest Lyapunov exponent of random tanh networks, W_ij ~ N(0, 1/N), against "
        f"the gain g; markers: mean over {cfg['seeds']} networks, error bars Student-t 95% "
        "intervals over networks. Left: the discrete map h <- tanh(g W h), per step, for each "
        "N; dashed: mean-field theory (Molgedey et al. 1992). Right: the continuous field "
        "dh/dt = -h + tanh(g W h), per unit time, averaged over "
        f"{cfg['continuous_duration']:g} time units after a transient of "
        f"{cfg['continuous_transient']:g}; dotted: the exponent at the origin of the same "
        "networks, -1 + max Re eig(g W) (the attractor while it is stable); dashed grey: "
        "N -> infinity, g - 1 below the transition at g = 1; shaded: the measured crossing "
        f"at N = {n} with its BCa 95% interval over networks ({verdict}). A finite network can "
        "settle on a fixed point or limit cycle above g = 1 (exponent <= 0), which moves the "
        "apparent transition up at small N.",
        numbers={
            "published": {f"{g:g}": v for g, v in PUBLISHED.items()},
            "mean_field": {f"{g:g}": v for g, v in published.items()},
            "mean_abs_error": agreement,
            "crossing": measured,
            "crossing_interval": crossing_interval,
        },
    )
    return {
        "settings": cfg,
        "mean_field": {f"{g:g}": float(v) for g, v in zip(gains, theory, strict=True)},
        "published": {f"{g:g}": v for g, v in PUBLISHED.items()},
        "discrete": discrete,
        "continuous": continuous,
        "origin_exponent": origin,
        "crossing": measured,
        "chaotic_fraction": {
            size: {f"{g:g}": float(np.mean(curves[size][:, j] > 0)) for j, g in enumerate(cgains)}
            for size in (small, n)
        },
    }


def _figure(gains, discrete, continuous, origin, measured, interval, size) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, (n, by_g) in enumerate(discrete.items()):
        g = [float(k) for k in by_g]
        interval_line(left, g, list(by_g.values()), color=f"C{i}", label=f"N = {n}", zorder=2)
    fine = np.linspace(min(gains), max(gains), 200)
    left.plot(fine, lyapunov_exponent(fine), "k--", lw=1.5, label="mean field", zorder=5)
    left.axhline(0, color="0.6", lw=0.8)
    left.set_xlabel("gain g")
    left.set_ylabel("largest Lyapunov exponent (per step)")
    left.set_title("Discrete map h <- tanh(g W h)", fontsize=10)
    left.legend(fontsize=8, title="mean, 95% interval", title_fontsize=8)
    lo, hi = (float(v) for v in interval)
    span = [float(k) for k in continuous[size]]
    right.axvspan(
        max(lo, min(span)),
        min(hi, max(span)),
        color="0.5",
        alpha=0.15,
        label=f"crossing at N = {size}: {measured:.2f} [{lo:.2f}, {hi:.2f}]",
    )
    for i, (n, by_g) in enumerate(continuous.items()):
        g = [float(k) for k in by_g]
        color = f"C{i + 2}"
        interval_line(right, g, list(by_g.values()), color=color, label=f"measured, N = {n}")
        at_origin = np.array([origin[n][k]["mean"] for k in by_g])
        right.plot(
            g,
            np.where(at_origin <= 0, at_origin, np.nan),  # only where the origin is stable
            ":",
            color=color,
            lw=1.2,
            label=f"at the origin, N = {n}",
        )
    below = np.linspace(min(float(k) for k in continuous[size]), 1.0, 50)
    right.plot(below, below - 1, "--", color="0.4", lw=1, label="N -> infinity (g < 1)")
    right.axvline(1.0, color="k", ls="--", lw=0.8, label="mean-field transition g = 1")
    right.axhline(0, color="0.6", lw=0.8)
    right.set_xlabel("gain g")
    right.set_ylabel("largest Lyapunov exponent (per unit time)")
    right.set_title("Continuous field dh/dt = -h + tanh(g W h)", fontsize=10)
    right.legend(fontsize=7, title="mean, 95% interval", title_fontsize=7)
    return fig
