"""Stable-by-design cells, one atlas: AntisymmetricRNN and coRNN against tanh, GRU and LSTM at
equal parameter count: Jacobian spectra, hidden-state bounds and gradients over T = 1000, and
accuracy on permuted digit pixels (T = 64).

Cells (one ``rnnode.ODERNN`` layer each, hidden sizes chosen so every layer has about
``PARAMETERS`` parameters): ``"rnn"`` (tanh), ``"gru"``, ``"lstm"`` (Euler step 1 = torch's
cells), ``"antisymmetric"`` (Chang, Chen, Haber & Chi 2019: dh/dt = tanh((W - W^T - gamma I) h +
V x + b), gamma = 0.01, Euler step epsilon = 0.1 through tau = 10) and ``"cornn"`` (Rusch &
Mishra 2021: y'' = tanh(W y + W' y' + V x + b) - gamma y - eps y', gamma = 2.7, eps = 4.7, their
sequential-MNIST values, step dt = 0.042 through tau = 1 / 0.042).

Measured, per seed, at initialisation: the eigenvalues of the Jacobian of the step map at rest
(``rnnode.analysis.eigenvalues`` of the continuous field, mapped by Euler: 1 + dt
lambda); max |h_t| over T = ``LONG`` steps of white-noise input; ||dLoss/dh_t|| for a loss on the
last state (``rnnode.analysis.gradients.gradient_norms``), summarised by its decay rate: minus
the slope of log10 ||dLoss/dh_t|| against T - t, in decades per 100 steps, fitted over the
nonzero norms (a tanh RNN's signal underflows float64 within T = 1000). After training (Adam,
``steps`` steps): test accuracy on ``digits_task("pixels")`` with the 64 pixels in one fixed
random order.

Published (cited, not claimed: they need MNIST and a GPU): sequential / permuted MNIST accuracy
98.0% / 95.8% for AntisymmetricRNN, 99.3% / 96.6% for coRNN.

Claims (rules fixed before any run):
- ``antisymmetric_spectrum`` (verification): at rest with zero bias the antisymmetric cell's
  Jacobian eigenvalues have real part exactly -gamma (to 1e-12): purely imaginary up to damping.
- ``cornn_gradient_survives``, ``antisymmetric_gradient_survives`` (findings): over T = 1000 the
  gradient's decay rate of the cell is below the tanh RNN's (paired over seeds, mean of tanh's
  rate minus the cell's > 0).
- ``cornn_beats_tanh_accuracy`` (finding): permuted-pixel test accuracy of coRNN minus tanh RNN,
  paired over seeds, > 0.

Figures ``spectra`` (step-map eigenvalues with the unit circle, one panel per cell),
``long_sequences`` (||dLoss/dh_t|| and |h_t| over T = 1000) and ``accuracy``.

Full run: 26 min wall on the 2 shared cores (load average about 15).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.analysis import eigenvalues
from rnnode.analysis.gradients import gradient_norms

from ._run import Context, one_thread, settings_for, train_with

CELLS = ("rnn", "gru", "lstm", "antisymmetric", "cornn")
OPTIONS = {
    "antisymmetric": ({"gamma": 0.01}, 10.0),
    "cornn": ({"gamma": 2.7, "epsilon": 4.7}, 1 / 0.042),
}
PUBLISHED = {
    "antisymmetric": {"sequential MNIST": 98.0, "permuted MNIST": 95.8},
    "cornn": {"sequential MNIST": 99.3, "permuted MNIST": 96.6},
}
LONG = 1000
SPECTRUM_TOL = 1e-12


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "parameters": 2200,
    "seeds": 3,
    "long": LONG,
    "long_batch": 4,
    "steps": 150,
    "lr": 1e-2,
    "batch_size": 32,
}
QUICK = {
    "parameters": 300,
    "seeds": 2,
    "long": 50,
    "long_batch": 2,
    "steps": 3,
    "batch_size": 16,
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def build(cell: str, hidden: int, input_size: int = 1) -> rnnode.ODERNN:
    """One layer of ``cell`` with the study's options (gamma, epsilon, tau)."""
    options, tau = OPTIONS.get(cell, ({}, 1.0))
    return rnnode.ODERNN(input_size, hidden, 1, cell=cell, tau=tau, cell_options=options or None)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def hidden_for(cell: str, parameters: int) -> int:
    """The hidden size whose layer has the parameter count closest to ``parameters``."""
    best, h = 1, 1
    while True:  # the count grows with h: stop at the first size past the target
        n = count(build(cell, h))
        if abs(n - parameters) < abs(count(build(cell, best)) - parameters):
            best = h
        if n >= parameters:
            return best
        h += 1


def step_spectrum(model: rnnode.ODERNN) -> np.ndarray:
    """Eigenvalues of the Euler step map's Jacobian at rest (h = 0, x = 0): 1 + J / tau * dt."""
    state = model.state_parts * model.hidden_size
    h = torch.zeros(1, state, dtype=torch.float64)
    lam = eigenvalues(model, h, torch.zeros(1, dtype=torch.float64))
    return (1 + lam).detach().numpy()  # Euler, step 1 (the field already carries 1 / tau)


def long_run(model: rnnode.ODERNN, length: int, batch: int, seed: int) -> dict[str, Any]:
    """max |h_t| and ||dLoss/dh_t|| (loss: a random linear readout of the last state)."""
    generator = torch.Generator().manual_seed(seed + 5)
    x = torch.randn(length, batch, 1, generator=generator, dtype=torch.float64)
    v = torch.randn(batch, model.hidden_size, generator=generator, dtype=torch.float64)

    def loss_fn(output: torch.Tensor, h_n: Any) -> torch.Tensor:
        return (output[-1] * v).sum()

    norms = gradient_norms(model, x, loss_fn)[0].detach().numpy()
    with torch.no_grad():
        output = model(x)[0]
    return {
        "gradient": norms,
        "decay_rate": decay_rate(norms),
        "max_abs_h": output.abs().amax(dim=(1, 2)).numpy(),
    }


def decay_rate(norms: np.ndarray) -> float:
    """Decades per 100 steps by which ||dLoss/dh_t|| falls going back from t = T: minus the
    least-squares slope of log10 norm against T - t over the nonzero norms."""
    lag = np.arange(len(norms))[::-1].astype(float)
    keep = norms > 0
    if keep.sum() < 2:
        raise ValueError("norms: expected at least two nonzero gradient norms")
    return float(-100 * np.polyfit(lag[keep], np.log10(norms[keep]), 1)[0])


def accuracy(cell: str, hidden: int, cfg: dict, seed: int) -> float:
    """Test accuracy on digits pixel by pixel (T = 64) in a fixed random pixel order."""
    task = rnnode.training.digits_task("pixels", seed=seed)
    order = torch.as_tensor(np.random.default_rng(12345).permutation(64))
    task = dataclasses.replace(task, x_train=task.x_train[:, order], x_test=task.x_test[:, order])
    torch.manual_seed(seed)
    model = rnnode.training.SequenceModel.for_task(build(cell, hidden), task)
    result = train_with(model, task, cfg, seed)
    return float(result["test"]["accuracy"])


def _paired(ctx: Context, name: str, statement: str, diff: np.ndarray, label: str, control):
    ctx.finding_over_seeds(
        name,
        statement,
        diff,
        comparison=">",
        bound=0.0,
        control=control,
        control_label=label,
    )


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    hidden = {c: hidden_for(c, cfg["parameters"]) for c in CELLS}
    params = {c: count(build(c, hidden[c])) for c in CELLS}

    # Verification: antisymmetric Jacobian at rest, zero bias: (W - W^T - gamma I) / tau.
    torch.manual_seed(ctx.seed)
    anti = build("antisymmetric", hidden["antisymmetric"])
    with torch.no_grad():
        anti.layers[0].bias_ih.zero_()
        anti.layers[0].bias_hh.zero_()
    gamma, tau = OPTIONS["antisymmetric"][0]["gamma"], OPTIONS["antisymmetric"][1]
    lam = (
        eigenvalues(anti, torch.zeros(1, hidden["antisymmetric"]), torch.zeros(1)).detach().numpy()
    )
    error = float(np.abs(lam.real * tau + gamma).max())
    ctx.verify(
        "antisymmetric_spectrum",
        error < SPECTRUM_TOL,
        "the antisymmetric cell's Jacobian at rest has eigenvalues with real part -gamma / tau "
        f"(purely imaginary up to the damping; to {SPECTRUM_TOL:g})",
        value=error,
        bound=SPECTRUM_TOL,
    )

    spectra, long, acc = {}, {c: [] for c in CELLS}, {c: [] for c in CELLS}
    with one_thread():
        for seed in ctx.progress(seeds, "seeds"):
            for c in CELLS:
                torch.manual_seed(seed)
                model = build(c, hidden[c])
                if seed == seeds[0]:
                    spectra[c] = step_spectrum(model)
                long[c].append(long_run(model, cfg["long"], cfg["long_batch"], seed))
                acc[c].append(accuracy(c, hidden[c], cfg, seed))

    rates = {c: np.array([r["decay_rate"] for r in long[c]]) for c in CELLS}
    for c in ("cornn", "antisymmetric"):
        _paired(
            ctx,
            f"{c}_gradient_survives",
            f"over T = {cfg['long']} steps the {c} cell's error signal decays more slowly than "
            "the tanh RNN's (decades per 100 steps, tanh's minus the cell's, paired over seeds)",
            rates["rnn"] - rates[c],
            "tanh RNN's decay rate, decades per 100 steps (mean)",
            float(rates["rnn"].mean()),
        )
    accuracy_arr = {c: np.array(acc[c]) for c in CELLS}
    _paired(
        ctx,
        "cornn_beats_tanh_accuracy",
        "on permuted digit pixels (T = 64) coRNN's test accuracy exceeds the tanh RNN's at equal "
        "parameter count, paired over seeds",
        accuracy_arr["cornn"] - accuracy_arr["rnn"],
        "tanh RNN's test accuracy (mean)",
        float(accuracy_arr["rnn"].mean()),
    )

    ctx.figure(
        "spectra",
        _spectra_figure(spectra),
        caption="Eigenvalues of the Euler step map's Jacobian at rest, at initialisation (first "
        "seed), with the unit circle.",
        numbers={c: float(np.abs(spectra[c]).max()) for c in CELLS},
    )
    ctx.figure(
        "long_sequences",
        _long_figure(long),
        caption=f"Over T = {cfg['long']} steps of white-noise input, at initialisation (first "
        "seed): ||dLoss/dh_t|| for a loss on the last state (left) and max |h_t| (right).",
        numbers={c: float(rates[c].mean()) for c in CELLS},
    )
    ctx.figure(
        "accuracy",
        _accuracy_figure(accuracy_arr, params),
        caption="Test accuracy on permuted digit pixels (T = 64), every seed; published "
        "permuted-MNIST accuracies (cited, not reproduced): AntisymmetricRNN 95.8%, coRNN 96.6%.",
        numbers={c: float(accuracy_arr[c].mean()) for c in CELLS},
    )
    return {
        "settings": cfg,
        "hidden": hidden,
        "parameters": params,
        "published": PUBLISHED,
        "spectral_radius_at_rest": {c: float(np.abs(spectra[c]).max()) for c in CELLS},
        "gradient_decay_rate": rates,
        "max_abs_h": {c: [float(r["max_abs_h"].max()) for r in long[c]] for c in CELLS},
        "gradient_norms_first_seed": {c: long[c][0]["gradient"] for c in CELLS},
        "accuracy": accuracy_arr,
    }


def _spectra_figure(spectra) -> Figure:
    fig = Figure(figsize=(3 * len(spectra), 3.2))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.15, top=0.88, wspace=0.3)
    axes = fig.subplots(1, len(spectra))
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    for ax, (c, lam) in zip(axes, spectra.items(), strict=True):
        ax.plot(circle.real, circle.imag, "-", color="0.6", lw=0.8)
        ax.plot(lam.real, lam.imag, ".", ms=4)
        ax.set_aspect("equal")
        ax.set_title(c, fontsize=10)
        ax.set_xlabel("Re")
    axes[0].set_ylabel("Im")
    return fig


def _long_figure(long) -> Figure:
    fig = Figure(figsize=(10, 3.6))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.92, wspace=0.25)
    left, right = fig.subplots(1, 2)
    for i, (c, runs) in enumerate(long.items()):
        left.semilogy(runs[0]["gradient"], color=f"C{i}", label=c)
        right.plot(runs[0]["max_abs_h"], color=f"C{i}", label=c)
    left.set_xlabel("t")
    left.set_ylabel("||dLoss/dh_t||")
    right.set_xlabel("t")
    right.set_ylabel("max |h_t|")
    left.legend(fontsize=7)
    return fig


def _accuracy_figure(accuracy_arr, params) -> Figure:
    fig = Figure(figsize=(6, 3.6))
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.18, top=0.95)
    ax = fig.add_subplot()
    for i, values in enumerate(accuracy_arr.values()):
        ax.plot(np.full(len(values), i), values, "o", color=f"C{i}", alpha=0.7)
        ax.plot([i - 0.2, i + 0.2], [values.mean()] * 2, "-", color="k")
    ax.set_xticks(range(len(accuracy_arr)))
    ax.set_xticklabels([f"{c}\n({params[c]} params)" for c in accuracy_arr], fontsize=8)
    ax.set_ylabel("test accuracy")
    return fig
