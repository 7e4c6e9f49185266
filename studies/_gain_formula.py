"""The timescales study's verifications: sine probes on scalar linear stacks against the sympy
gain formula (discrete low- and high-pass, a small-amplitude tanh stack, the continuously coupled
stack), with their figure ``theory``."""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.analysis import measure_gain, stack_gain

from ._context import Context
from ._figures import log_axes

LOW_PASS = (0.2, 0.6, 0.9)
HIGH_PASS = (-0.3, -0.6, -0.9)
TAUS = (1.0, 3.0, 9.0)
LINEAR_TOL = 1e-8  # transient 0.9^300 ~ 2e-14; the gains are rounded to 1e-10 (DIGITS)
TANH_AMPLITUDE = 1e-5
TANH_TOL = 1e-6  # tanh(z) = z - z^3 / 3: relative deviation ~ (gain * A)^2 / 4, gain <= 32
CONTINUOUS_TOL = 2e-3  # cubic spline of a sine sampled at omega dt <= 0.5
CONTINUOUS_DT = 0.25
TITLES = {
    "low_pass": "discrete layers, low-pass (a > 0)",
    "high_pass": "discrete layers, high-pass (a < 0)",
    "continuous": "continuously coupled layers",
}
DIGITS = 10  # significant digits kept of measured gains (bytes equal across processes)


def _probe(model: rnnode.ODERNN, omegas, amplitude: float, **kwargs) -> np.ndarray:
    """``measure_gain`` rounded to ``DIGITS`` significant digits (the lowest frequencies' fits
    are ill-conditioned and their last digits vary with memory alignment between processes)."""
    gains = measure_gain(model, omegas, amplitude, **kwargs)
    return np.array([float(f"{g:.{DIGITS}g}") for g in gains.ravel()]).reshape(gains.shape)


def _formula(kind: str, **weights) -> list:
    """numpy functions of omega, one per layer, from ``stack_gain`` with the weights as exact
    rationals (sympy simplifies them faster than floats, and exactly)."""
    omega = sp.Symbol("omega", real=True)
    exact: dict[str, Any] = {k: [sp.Rational(str(v)) for v in vs] for k, vs in weights.items()}
    return [sp.lambdify(omega, g, "numpy") for g in stack_gain(kind=kind, **exact)]


def linear_stack(cell: str, recurrent=LOW_PASS) -> rnnode.ODERNN:
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


def theory_part(cfg: dict[str, Any]) -> dict[str, Any]:
    """Sine probes against the formula: discrete low- and high-pass, small-amplitude tanh,
    continuous."""
    omegas = np.array(cfg["omegas"])
    kw = {"num_steps": cfg["probe_steps"], "transient": cfg["probe_steps"] // 2}
    dense = np.geomspace(omegas[0], omegas[-1], 200)
    out: dict[str, Any] = {"omegas": omegas, "dense_omegas": dense}
    for name, weights in (("low_pass", LOW_PASS), ("high_pass", HIGH_PASS)):
        fns = _formula("discrete", weight_hh=list(weights))
        theory = np.array([f(omegas) for f in fns])
        out[f"{name}_dense"] = np.array([f(dense) for f in fns])
        linear = _probe(linear_stack("linear", weights), omegas, 1.0, **kw)
        out[f"{name}_theory"] = theory
        out[f"{name}_measured"] = linear
        out[f"{name}_rel_error"] = float(np.abs(linear / theory - 1).max())
    tanh = _probe(linear_stack("rnn"), omegas, TANH_AMPLITUDE, **kw)
    out["tanh_measured"] = tanh
    out["tanh_rel_error"] = float(np.abs(tanh / out["low_pass_theory"] - 1).max())
    c_omegas = np.array(cfg["continuous_omegas"])
    fns = _formula("continuous", weight_hh=[0] * len(TAUS), tau=list(TAUS))
    c_theory = np.array([f(c_omegas) for f in fns])
    c_measured = _probe(
        continuous_stack(),
        c_omegas,
        1.0,
        num_steps=cfg["continuous_steps"],
        dt=CONTINUOUS_DT,
        method="rk4",
        interpolation="cubic",
    )
    c_dense = np.geomspace(c_omegas[0], c_omegas[-1], 200)
    out.update(
        continuous_dense_omegas=c_dense,
        continuous_dense=np.array([f(c_dense) for f in fns]),
        continuous_omegas=c_omegas,
        continuous_theory=c_theory,
        continuous_measured=c_measured,
        continuous_rel_error=float(np.abs(c_measured / c_theory - 1).max()),
    )
    return out


def verify(ctx: Context, theory: dict[str, Any]) -> None:
    for name, weights in (("low_pass", LOW_PASS), ("high_pass", HIGH_PASS)):
        ctx.verify(
            f"{name}_gain_formula",
            theory[f"{name}_rel_error"] < LINEAR_TOL,
            f"sine probes on a discrete linear stack (a = {weights}) give the sympy gain formula "
            f"to a relative {LINEAR_TOL:g}",
            value=theory[f"{name}_rel_error"],
            bound=LINEAR_TOL,
        )
    ctx.verify(
        "small_amplitude_tanh",
        theory["tanh_rel_error"] < TANH_TOL,
        f"a tanh stack with a = {LOW_PASS} at amplitude {TANH_AMPLITUDE:g} gives the linear "
        f"formula to a relative {TANH_TOL:g}",
        value=theory["tanh_rel_error"],
        bound=TANH_TOL,
    )
    ctx.verify(
        "continuous_gain_formula",
        theory["continuous_rel_error"] < CONTINUOUS_TOL,
        f"the continuously coupled stack with tau = {TAUS} gives |prod 1 / (1 + i omega tau)| "
        f"to a relative {CONTINUOUS_TOL:g} (RK4, cubic input path)",
        value=theory["continuous_rel_error"],
        bound=CONTINUOUS_TOL,
    )


def theory_figure(ctx: Context, theory: dict[str, Any]) -> None:
    """The figure ``theory``: the probes (markers) against the formula (dashed)."""
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        ("low_pass", theory["omegas"], theory["dense_omegas"], LOW_PASS, "a"),
        ("high_pass", theory["omegas"], theory["dense_omegas"], HIGH_PASS, "a"),
        ("continuous", theory["continuous_omegas"], theory["continuous_dense_omegas"], TAUS, "tau"),
    ]
    for ax, (name, w, dense, params, symbol) in zip(axes, panels, strict=True):
        for l, p in enumerate(params):
            ax.plot(
                w,
                theory[f"{name}_measured"][l],
                "o",
                color=f"C{l}",
                markersize=4,
                label=f"layer {l + 1}, {symbol} = {p:g}",
            )
            ax.plot(dense, theory[f"{name}_dense"][l], "--", color="k", linewidth=1, zorder=3)
        ax.plot([], [], "--", color="k", linewidth=1, label="sympy formula (dashed)")
        if name == "low_pass":
            for k, row in enumerate(theory["tanh_measured"]):
                label = "tanh stack, amplitude 1e-5 (x)" if k == 0 else None
                ax.plot(w, row, "x", color="k", markersize=4, label=label)
        log_axes(ax)
        ax.set_xlabel("omega (rad / unit time)")
        ax.set_ylabel("gain from the input")
        ax.set_title(TITLES[name], fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2)
    fig.suptitle(
        "Verification: sine probes (markers; x: tanh at 1e-5) equal the sympy formula (dashed)",
        fontsize=10,
    )
    ctx.figure(
        "theory",
        fig,
        caption="Cumulative gain of scalar linear stacks: discrete low-pass (a > 0), high-pass "
        "(a < 0), continuously coupled low-pass; dashed: the formula.",
        numbers={
            k: theory[k]
            for k in (
                "low_pass_rel_error",
                "high_pass_rel_error",
                "tanh_rel_error",
                "continuous_rel_error",
            )
        },
    )
