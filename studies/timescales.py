"""Timescales: layer gains against the gain formula; trained layers' preferred frequencies.

Sine probes give every layer's gain, compared with the formula; stacks trained on slow + fast
sines and on Mauna Loa CO2 report the preferred frequency of every layer.

Part 1, theory (``rnnode.analysis.gain``). Sines x_k = A sin(omega t_k) drive a stack and each
layer's
steady-state amplitude is fitted (``measure_gain``); the gain formula comes from sympy
(``stack_gain``, the z- or Laplace transform of the stack):

- discrete: scalar linear layers h^l_k = a_l h^l_{k-1} + h^{l-1}_k with recurrent weights
  a = ``RECURRENT`` (Euler, step 1). Measured = formula to ``LINEAR_TOL`` (relative);
- small amplitude: the same weights in a tanh stack with no bias, driven at A = 1e-5, is linear
  to O(A^2): measured = linear formula to ``TANH_TOL``;
- continuous: dh^l/dt = (h^{l-1} - h^l) / tau_l with time constants tau = ``TAUS``
  (coupling="continuous", RK4, cubic interpolation of samples 0.25 apart): measured = formula
  |prod_l 1 / (1 + i omega tau_l)| to ``CONTINUOUS_TOL`` (the cubic spline's error on the sines).

Each layer adds a low-pass stage, so the half-power frequency (where a layer's gain falls to
1 / sqrt 2 of its low-frequency gain) falls with the layer index, in theory and measured.

Part 2, training (``rnnode.training.train``). A 3-layer tanh ``ODERNN`` with learnable time
constants
(tau = 1 at the start for every layer, so no ordering is put in by hand) is trained with a
``SequenceModel`` readout on the top layer on ``sines_task`` (targets: the slow and the fast
component at every step) and on ``co2_task`` (next month's CO2), several seeds. Sine probes at
small amplitude (1e-2) then give every layer's gain curve; reported per layer: the preferred
frequency ``rnnode.analysis.gain.preferred_frequencies`` (argmax of the gain) and the gain-weighted
mean frequency exp(sum_f g^2 log omega / sum_f g^2) (a centroid, less sensitive to a flat
top). The claim checked is the hierarchy: the median centroid over seeds falls with the layer
index. It is reported as measured, holds or not.

Figures: ``theory_discrete``, ``theory_continuous`` (measured markers on the formula),
``sines_gains``, ``co2_gains`` (trained stacks, first seed), ``preferred_frequencies`` (the
centroid of every layer for every seed and task).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp
import torch
from matplotlib.figure import Figure
from scipy.optimize import brentq

import rnnode
from rnnode.analysis.gain import measure_gain, preferred_frequencies, stack_gain
from rnnode.analysis.plots import plot_gain

from ._run import Context, one_thread

RECURRENT = (0.2, 0.6, 0.9)
TAUS = (1.0, 3.0, 9.0)
LINEAR_TOL = 1e-8  # transient 0.9^300 ~ 2e-14; the gains are rounded to 1e-10 (DIGITS)
TANH_AMPLITUDE = 1e-5
TANH_TOL = 1e-6  # tanh(z) = z - z^3 / 3: relative deviation ~ (gain * A)^2 / 4, gain <= 32
CONTINUOUS_TOL = 2e-3  # cubic spline of a sine sampled at omega dt <= 0.5
CONTINUOUS_DT = 0.25
DIGITS = 10  # significant digits of the measured gains (see _probe)
TASKS = ("sines", "co2")


def settings(quick: bool) -> dict[str, Any]:
    """Probe grids and training sizes of the quick and the full setting."""
    if quick:
        return {
            "omegas": np.geomspace(0.02, 3.0, 12).tolist(),
            "continuous_omegas": np.geomspace(0.02, 2.0, 8).tolist(),
            "probe_steps": 600,
            "continuous_steps": 800,
            "hidden_size": 6,
            "num_layers": 3,
            "train_steps": 15,
            "seeds": 1,
            "trained_omegas": np.geomspace(0.03, 3.0, 16).tolist(),
            "trained_probe_steps": 128,
        }
    return {
        "omegas": np.geomspace(0.02, 3.0, 40).tolist(),
        "continuous_omegas": np.geomspace(0.02, 2.0, 24).tolist(),
        "probe_steps": 600,
        "continuous_steps": 800,
        "hidden_size": 8,
        "num_layers": 3,
        "train_steps": 400,
        "seeds": 3,
        "trained_omegas": np.geomspace(0.03, 3.0, 32).tolist(),
        "trained_probe_steps": 256,
    }


def _probe(model: rnnode.ODERNN, omegas, amplitude: float, **kwargs) -> np.ndarray:
    """``measure_gain`` rounded to ``DIGITS`` significant digits.

    At the lowest frequencies the fit window spans about one period, so the least-squares fit
    is ill-conditioned and its last digits follow the rounding of vectorised sums, which
    varies with memory alignment between processes. Rounding far below every tolerance keeps
    metrics.json the same bytes in every run of a seed.
    """
    gains = measure_gain(model, omegas, amplitude, **kwargs)
    return np.array([float(f"{g:.{DIGITS}g}") for g in gains.ravel()]).reshape(gains.shape)


# -- part 1: the gain formula -------------------------------------------------------------------


def _formula(kind: str, **weights) -> list:
    """numpy functions of omega, one per layer, from ``stack_gain``."""
    omega = sp.Symbol("omega", real=True)
    return [sp.lambdify(omega, g, "numpy") for g in stack_gain(kind=kind, **weights)]


def linear_stack(cell: str, recurrent=RECURRENT) -> rnnode.ODERNN:
    """Scalar layers with W_hh = a_l, W_ih = 1, no bias (``cell`` "linear" or "rnn")."""
    model = rnnode.ODERNN(1, 1, len(recurrent), cell=cell, bias=False)
    with torch.no_grad():
        for field, a in zip(model.layers, recurrent, strict=True):
            field.weight_ih.fill_(1.0)
            field.weight_hh.fill_(a)
    return model


def continuous_stack(taus=TAUS) -> rnnode.ODERNN:
    """Scalar linear layers dh^l/dt = (h^{l-1} - h^l) / tau_l (W_hh = 0, W_ih = 1)."""
    model = rnnode.ODERNN(
        1, 1, len(taus), cell="linear", bias=False, tau=list(taus), coupling="continuous"
    )
    with torch.no_grad():
        for field in model.layers:
            field.weight_ih.fill_(1.0)
            field.weight_hh.zero_()
    return model


def half_power(omegas, gains) -> np.ndarray:
    """Per layer, the frequency where the gain falls to 1/sqrt(2) of its value at omegas[0]
    (log-linear interpolation on the grid; NaN where it never does)."""
    out = []
    for g in np.asarray(gains):
        level = g[0] / np.sqrt(2)
        below = np.nonzero(g < level)[0]
        if not below.size or below[0] == 0:
            out.append(float("nan"))
            continue
        k = below[0]
        w = np.log(omegas[k - 1 : k + 1])
        out.append(float(np.exp(np.interp(level, g[k - 1 : k + 1][::-1], w[::-1]))))
    return np.array(out)


def _exact_half_power(fns, low: float, high: float) -> np.ndarray:
    """The same frequency from the formula: the root of g(omega) = g(low) / sqrt 2 (brentq)."""
    return np.array(
        [brentq(lambda w, f=f: float(f(w)) - float(f(low)) / np.sqrt(2), low, high) for f in fns]
    )


def theory_part(cfg: dict[str, Any]) -> dict[str, Any]:
    """Measured gains against the formula: discrete linear, small-amplitude tanh, continuous."""
    omegas = np.array(cfg["omegas"])
    transient = cfg["probe_steps"] // 2
    discrete = _formula("discrete", weight_hh=list(RECURRENT))
    theory = np.array([f(omegas) for f in discrete])
    linear = _probe(
        linear_stack("linear"), omegas, 1.0, num_steps=cfg["probe_steps"], transient=transient
    )
    tanh = _probe(
        linear_stack("rnn"),
        omegas,
        TANH_AMPLITUDE,
        num_steps=cfg["probe_steps"],
        transient=transient,
    )
    c_omegas = np.array(cfg["continuous_omegas"])
    continuous_fns = _formula("continuous", weight_hh=[0] * len(TAUS), tau=list(TAUS))
    c_theory = np.array([f(c_omegas) for f in continuous_fns])
    c_measured = _probe(
        continuous_stack(),
        c_omegas,
        1.0,
        num_steps=cfg["continuous_steps"],
        dt=CONTINUOUS_DT,
        method="rk4",
        interpolation="cubic",
    )
    return {
        "omegas": omegas,
        "discrete_theory": theory,
        "linear_measured": linear,
        "tanh_measured": tanh,
        "linear_rel_error": float(np.abs(linear / theory - 1).max()),
        "tanh_rel_error": float(np.abs(tanh / theory - 1).max()),
        "continuous_omegas": c_omegas,
        "continuous_theory": c_theory,
        "continuous_measured": c_measured,
        "continuous_rel_error": float(np.abs(c_measured / c_theory - 1).max()),
        "half_power_discrete_theory": _exact_half_power(discrete, omegas[0], np.pi),
        "half_power_discrete_measured": half_power(omegas, linear),
        "half_power_continuous_theory": _exact_half_power(continuous_fns, c_omegas[0], 10.0),
        "half_power_continuous_measured": half_power(c_omegas, c_measured),
    }


# -- part 2: trained stacks ---------------------------------------------------------------------


def centroid(omegas, gains) -> np.ndarray:
    """Gain-weighted mean frequency per layer: exp(sum g^2 log omega / sum g^2).

    The sums are ``math.fsum`` (correctly rounded): numpy's vectorised sums may round
    differently with the array's memory alignment, and metrics must be the same bytes in every
    run.
    """
    log_omega = np.log(np.asarray(omegas, dtype=np.float64))
    g2 = np.atleast_2d(np.asarray(gains, dtype=np.float64)) ** 2
    return np.array([math.exp(math.fsum(g * log_omega) / math.fsum(g)) for g in g2])


def _task(name: str, quick: bool, seed: int) -> rnnode.training.Task:
    if name == "sines":
        return rnnode.training.sines_task(
            num_train=64 if quick else 128, num_test=32, length=32 if quick else 64, seed=seed
        )
    return rnnode.training.co2_task(window=24 if quick else 48)


def train_point(point: dict[str, Any]) -> dict[str, Any]:
    """Train one stack on one task and probe every layer with sines.

    Arguments:
        point: ``{"task": "sines" | "co2", "seed", "quick"}``.

    Returns:
        ``{"gains": (layers, F), "preferred", "centroid", "tau", "test", "final_loss"}``.
    """
    cfg = settings(point["quick"])
    task = _task(point["task"], point["quick"], point["seed"])
    torch.manual_seed(point["seed"])
    rnn = rnnode.ODERNN(
        task.input_size, cfg["hidden_size"], cfg["num_layers"], cell="rnn", learn_tau=True
    )
    model = rnnode.training.SequenceModel.for_task(rnn, task)
    omegas = np.array(cfg["trained_omegas"])
    with one_thread():
        trained = rnnode.training.train(
            model,
            task,
            steps=cfg["train_steps"],
            lr=1e-2,
            batch_size=32,
            seed=point["seed"],
            progress=False,
        )
        gains = _probe(rnn, omegas, 1e-2, num_steps=cfg["trained_probe_steps"])
    return {
        "gains": gains,
        "preferred": preferred_frequencies(omegas, gains),
        "centroid": centroid(omegas, gains),
        "tau": [float(rnn.field(l).tau.detach()) for l in range(rnn.num_layers)],
        "test": trained["test"],
        "final_loss": trained["history"]["loss"][-1],
    }


def falls(values) -> bool:
    """Whether the values fall strictly from each layer to the next."""
    return bool(np.all(np.diff(np.asarray(values)) < 0))


# -- the study ----------------------------------------------------------------------------------


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    theory = theory_part(cfg)
    ctx.claim(
        "discrete_gain_formula",
        theory["linear_rel_error"] < LINEAR_TOL,
        f"sine probes on a discrete linear stack (a = {RECURRENT}) give the sympy gain formula "
        f"to a relative {LINEAR_TOL:g}",
    )
    ctx.claim(
        "small_amplitude_tanh",
        theory["tanh_rel_error"] < TANH_TOL,
        f"a tanh stack with the same weights at amplitude {TANH_AMPLITUDE:g} gives the linear "
        f"formula to a relative {TANH_TOL:g}",
    )
    ctx.claim(
        "continuous_gain_formula",
        theory["continuous_rel_error"] < CONTINUOUS_TOL,
        f"the continuously coupled stack with tau = {TAUS} gives |prod 1 / (1 + i omega tau)| "
        f"to a relative {CONTINUOUS_TOL:g} (RK4, cubic input path)",
    )
    hp_ok = all(
        falls(theory[f"half_power_{kind}_{src}"])
        for kind in ("discrete", "continuous")
        for src in ("theory", "measured")
    )
    ctx.claim(
        "bandwidth_falls_with_layer",
        hp_ok,
        "each layer adds a low-pass stage: the half-power frequency falls with the layer index, "
        "in the formula and in the measurement, discrete and continuous",
    )

    seeds = list(range(ctx.seed, ctx.seed + cfg["seeds"]))
    points = [{"task": t, "seed": s, "quick": ctx.quick} for t in TASKS for s in seeds]
    results = ctx.sweep(train_point, points, name="trained")
    trained: dict[str, dict[str, Any]] = {}
    for name in TASKS:
        runs = [r for p, r in zip(points, results, strict=True) if p["task"] == name]
        cent = np.array([r["centroid"] for r in runs])  # (seeds, layers)
        median = np.median(cent, axis=0)
        trained[name] = {
            "preferred_frequency": [r["preferred"] for r in runs],
            "centroid": cent,
            "median_centroid": median,
            "seeds_falling": int(sum(falls(c) for c in cent)),
            "tau": [r["tau"] for r in runs],
            "test": [r["test"] for r in runs],
            "final_loss": [r["final_loss"] for r in runs],
            "gains": runs[0]["gains"],
        }
        ctx.claim(
            f"{name}_lower_layers_faster",
            falls(median),
            f"{name}: the median (over {len(seeds)} seeds) gain-weighted mean frequency falls "
            f"with the layer index (lower layers tuned faster, higher layers slower)",
        )

    omegas = np.array(cfg["omegas"])
    fig = plot_gain(
        omegas,
        theory["linear_measured"],
        theory["discrete_theory"],
        labels=[f"layer {l + 1} (a={a})" for l, a in enumerate(RECURRENT)],
    )
    fig.subplots_adjust(left=0.14, bottom=0.13)  # plot_gain leaves no room for the labels
    ax = fig.axes[0]
    for row in theory["tanh_measured"]:
        ax.plot(omegas, row, "x", color="k", markersize=4)
    ax.plot([], [], "x", color="k", label=f"tanh stack, A={TANH_AMPLITUDE:g}")
    ax.set_xscale("log")
    ax.legend(fontsize="small")
    ctx.figure(
        "theory_discrete",
        fig,
        caption="Gain of each layer of a discrete scalar stack h^l_k = a_l h^l_{k-1} + h^{l-1}_k "
        "(markers: sine probes on the linear stack; crosses: the tanh stack at amplitude 1e-5; "
        "dashed: the sympy formula).",
        numbers={
            k: theory[k]
            for k in (
                "linear_rel_error",
                "tanh_rel_error",
                "half_power_discrete_theory",
                "half_power_discrete_measured",
            )
        },
    )
    fig = plot_gain(
        theory["continuous_omegas"],
        theory["continuous_measured"],
        theory["continuous_theory"],
        labels=[f"layer {l + 1} (tau={t:g})" for l, t in enumerate(TAUS)],
    )
    fig.axes[0].set_xscale("log")
    fig.subplots_adjust(left=0.14, bottom=0.13)
    ctx.figure(
        "theory_continuous",
        fig,
        caption="Gain of each layer of the continuously coupled low-pass stack (markers: sine "
        "probes, RK4; dashed: |prod 1/(1 + i omega tau)|).",
        numbers={
            k: theory[k]
            for k in (
                "continuous_rel_error",
                "half_power_continuous_theory",
                "half_power_continuous_measured",
            )
        },
    )
    t_omegas = np.array(cfg["trained_omegas"])
    for name in TASKS:
        fig = plot_gain(t_omegas, trained[name]["gains"])
        fig.subplots_adjust(left=0.14, bottom=0.13)
        ax = fig.axes[0]
        ax.set_xscale("log")
        for l, w in enumerate(trained[name]["centroid"][0]):
            ax.axvline(w, color=f"C{l}", linestyle=":", alpha=0.8)
        ax.set_title(f"{name}: trained stack (seed {seeds[0]}); dotted: centroids", fontsize=9)
        ctx.figure(
            f"{name}_gains",
            fig,
            caption=f"Sine-probe gains of every layer of the stack trained on {name} (first "
            "seed), with each layer's gain-weighted mean frequency (dotted).",
            numbers={
                "preferred_frequency": trained[name]["preferred_frequency"][0],
                "centroid": trained[name]["centroid"][0],
                "tau": trained[name]["tau"][0],
            },
        )
    ctx.figure(
        "preferred_frequencies",
        _preferred_figure(trained),
        caption="Gain-weighted mean frequency of every layer after training (one line per seed, "
        "thick: median; green bands: the data's frequencies). The hierarchy claim is that it "
        "falls with the layer index.",
        numbers={f"{n}_median_centroid": trained[n]["median_centroid"] for n in TASKS},
    )
    return {"settings": cfg, "theory": theory, "trained": trained, "seeds": seeds}


#: Frequency bands of the data (rad / sample): the sines task's slow and fast periods (32 to 64
#: and 3 to 6 samples) and CO2's yearly cycle (12 months).
BANDS = {
    "sines": ((2 * np.pi / 64, 2 * np.pi / 32), (2 * np.pi / 6, 2 * np.pi / 3)),
    "co2": ((2 * np.pi / 12.5, 2 * np.pi / 11.5),),
}


def _preferred_figure(trained: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(4 * len(trained), 3.4))
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.15, top=0.9, wspace=0.3)
    axes = fig.subplots(1, len(trained), squeeze=False)[0]
    for ax, (name, t) in zip(axes, trained.items(), strict=True):
        for low, high in BANDS.get(name, ()):
            ax.axhspan(low, high, color="C2", alpha=0.2, linewidth=0)
        layers = np.arange(1, t["centroid"].shape[1] + 1)
        for row in t["centroid"]:
            ax.plot(layers, row, "o-", color="C0", alpha=0.35)
        ax.plot(layers, t["median_centroid"], "s-", color="k", linewidth=2, label="median")
        ax.set_yscale("log")
        ax.set_xticks(layers)
        ax.set_xlabel("layer")
        ax.set_title(name)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("gain-weighted mean omega")
    return fig
