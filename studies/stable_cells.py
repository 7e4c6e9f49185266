"""Stable-by-design cells, one atlas: AntisymmetricRNN and coRNN against an orthogonally
initialised tanh RNN (the control), GRU and LSTM at equal parameter count: Jacobian spectra,
hidden-state bounds and gradients over T = 1000, and the adding problem at T = 500, a
long-dependency task on which a plain tanh RNN is known to fail.

Cells (hidden sizes chosen so every layer has about ``PARAMETERS`` parameters):

- ``"tanh"``: the Elman cell (``rnnode.ODERNN``, Euler step 1 = ``torch.nn.RNN``) with its
  recurrent matrix orthogonal (``torch.nn.init.orthogonal_``; Henaff, Szlam & LeCun 2016): at
  rest every step-map eigenvalue has modulus 1 times tanh' (not the contractive torch default,
  radius about 0.58): the control that could win.
- ``"gru"``, ``"lstm"``: torch's cells (Euler step 1), reported beside the others, no claim.
- ``"antisymmetric"`` (Chang, Chen, Haber & Chi 2019): dh/dt = tanh((W - W^T - gamma I) h + V x
  + b), gamma = 0.01, Euler step epsilon = 0.1 through tau = 10 (their scheme).
- ``"cornn"`` (Rusch & Mishra 2021), ``CoRNN``: y'' = tanh(W y + W' y' + V x + b) - gamma y -
  eps y', stepped with the paper's IMEX scheme (their eq. 3: the damping implicit)
  z_n = (z_{n-1} + dt (tanh(W y_{n-1} + W' z_{n-1} + V x_n + b) - gamma y_{n-1})) / (1 + dt eps),
  y_n = y_{n-1} + dt z_n, with the authors' adding-problem settings (``CORNN``: dt = 0.06,
  gamma = 66, eps = 15; the defaults of ``adding/adding_task.py`` in github.com/tk-rusch/coRNN,
  whose code uses the explicit-damping variant). The parameters are those of
  ``rnnode.CoupledOscillatorField`` (tau = 1); only the step differs from its Euler map.

Measured, per seed, at initialisation: the eigenvalues of the step map's Jacobian at rest
(h = 0, x = 0; ``rnnode.analysis.eigenvalues`` through Euler for the ODERNN cells, autograd of
the IMEX step for coRNN); max |h_t| over T = ``LONG`` steps of white-noise input;
||dLoss/dh_t|| for a loss on the last state, summarised by its decay rate: minus the slope of
log10 ||dLoss/dh_t|| against T - t, in decades per 100 steps, fitted over the nonzero norms.
After training: test MSE on the adding problem (``rnnode.training.adding_task``, T =
``adding_length`` = 500; predicting the mean scores 1/6), Adam, ``steps`` steps of batch
``batch_size``, gradient norm clipped to ``CLIP``, every cell the same budget.

**Budget** (model size, steps, seeds): fixed in the code before any run from the cost of a
training step (CPU per Adam step at T = 500: 0.06 s for the tanh control), never tuned on results:
``parameters`` = 2200 (a coRNN of 32 units), 400 Adam steps of 32 sequences at lr 2e-3 (``LR``),
10 seeds (one seed costs about 6 core-minutes). The published runs train coRNN with 128 units
for up to 60,000 steps; a negative here is a statement about this budget, and the metrics keep
every cell's learning curve so the reader can see whether training had stalled.

Published (cited, not claimed: they need MNIST and a GPU): sequential / permuted MNIST accuracy
98.0% / 95.8% for AntisymmetricRNN, 99.3% / 96.6% for coRNN.

Claims (rules fixed before any run):

- ``antisymmetric_spectrum`` (verification): at rest with zero bias the antisymmetric cell's
  Jacobian eigenvalues have real part exactly -gamma (to 1e-12).
- ``cornn_gradient_survives``, ``antisymmetric_gradient_survives`` (findings): over T = 1000 the
  gradient's decay rate of the cell is below the orthogonal tanh RNN's (paired over seeds, mean
  of tanh's rate minus the cell's > 0; smallest effect that matters 0.5 decade per 100 steps).
- ``cornn_beats_tanh_adding``, ``antisymmetric_beats_tanh_adding`` (findings): on the adding
  problem at T = 500 the cell's test MSE is below the orthogonal tanh RNN's (paired over seeds,
  tanh's MSE minus the cell's > 0; smallest effect that matters 1/60, a tenth of the mean
  predictor's MSE).

Figures ``spectra`` (step-map eigenvalues with the unit circle, one panel per cell),
``long_sequences`` (||dLoss/dh_t|| and |h_t| over T = 1000) and ``adding`` (test MSE of every
seed, mean, and the mean predictor's 1/6).

Full run: 35.6 core-minutes (10 seeds, one worker); results in studies/README.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

import rnnode
from rnnode.analysis import eigenvalues
from rnnode.analysis.gradients import gradient_norms

from ._run import Context, one_thread, settings_for
from ._stats import t_interval

CELLS = ("tanh", "gru", "lstm", "antisymmetric", "cornn")
LABELS = {
    "tanh": "tanh RNN, orthogonal init (control)",
    "gru": "GRU",
    "lstm": "LSTM",
    "antisymmetric": "AntisymmetricRNN",
    "cornn": "coRNN (IMEX)",
}
OPTIONS = {"antisymmetric": ({"gamma": 0.01}, 10.0)}
#: coRNN's adding-problem settings (tk-rusch/coRNN, adding/adding_task.py defaults).
CORNN = {"dt": 0.06, "gamma": 66.0, "epsilon": 15.0}
PUBLISHED = {
    "antisymmetric": {"sequential MNIST": 98.0, "permuted MNIST": 95.8},
    "cornn": {"sequential MNIST": 99.3, "permuted MNIST": 96.6},
}
LONG = 1000
SPECTRUM_TOL = 1e-12
LR = 2e-3
CLIP = 1.0
MEAN_PREDICTOR_MSE = 1 / 6
#: Smallest effects that matter (the rules' margins).
RATE_EFFECT = 0.5
MSE_EFFECT = MEAN_PREDICTOR_MSE / 10


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "parameters": 2200,
    "seeds": 10,
    "long": LONG,
    "long_batch": 4,
    "adding_length": 500,
    "num_train": 2048,
    "num_test": 512,
    "steps": 400,
    "batch_size": 32,
}
QUICK = {
    "parameters": 300,
    "seeds": 2,
    "long": 50,
    "long_batch": 2,
    "adding_length": 20,
    "num_train": 64,
    "num_test": 32,
    "steps": 3,
    "batch_size": 16,
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


class CoRNN(nn.Module):
    """coRNN stepped with Rusch & Mishra's IMEX scheme, on a ``CoupledOscillatorField``'s
    parameters (V = ``weight_ih``, W = ``weight_hh``, W' = ``weight_hz``, b = the two biases):

        z_n = (z_{n-1} + dt (tanh(W y_{n-1} + W' z_{n-1} + V x_n + b) - gamma y_{n-1}))
              / (1 + dt eps),
        y_n = y_{n-1} + dt z_n,   y_0 = z_0 = 0.

    Arguments:
        input_size, hidden_size: sizes of x and y.
        dt, gamma, epsilon: the scheme's step and the oscillators' stiffness and damping.

    ``forward(x)``: x (T, batch, input) -> (y, z), each (T, batch, hidden), the states after
    every step.
    """

    def __init__(self, input_size: int, hidden_size: int, dt: float, gamma: float, epsilon: float):
        super().__init__()
        if not dt > 0:
            raise ValueError(f"dt: expected a positive step, got {dt!r}")
        self.field = rnnode.CoupledOscillatorField(
            input_size, hidden_size, gamma=gamma, epsilon=epsilon
        )
        self.hidden_size, self.dt = hidden_size, float(dt)

    def step(self, y: torch.Tensor, z: torch.Tensor, u: torch.Tensor):
        """One IMEX step from (y, z) with the input projection u = V x + b_ih; returns (y, z)."""
        f = self.field
        drive = torch.tanh(u + F.linear(y, f.weight_hh, f.bias_hh) + F.linear(z, f.weight_hz))
        z = (z + self.dt * (drive - f.gamma * y)) / (1 + self.dt * f.epsilon)
        return y + self.dt * z, z

    def forward(self, x: torch.Tensor, keep: list | None = None):
        u = F.linear(x, self.field.weight_ih, self.field.bias_ih)
        y = x.new_zeros(x.shape[1], self.hidden_size)
        z = torch.zeros_like(y)
        ys, zs = [], []
        for k in range(x.shape[0]):
            y, z = self.step(y, z, u[k])
            if keep is not None:
                y.retain_grad()
                keep.append(y)
            ys.append(y)
            zs.append(z)
        return torch.stack(ys), torch.stack(zs)


class Regressor(nn.Module):
    """A recurrent layer (``ODERNN`` or ``CoRNN``) with a linear readout of its last hidden
    state; ``forward(x)``: x (batch, T, input) -> (batch, outputs); ``loss`` as
    ``rnnode.training.SequenceModel``'s (mean squared error, ``{"task": value}``)."""

    def __init__(self, rnn: nn.Module, hidden: int, outputs: int):
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x.transpose(0, 1))[0][-1])

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        value = F.mse_loss(self(x), y)
        return value, {"task": float(value.detach())}


def build(cell: str, hidden: int, input_size: int = 1) -> rnnode.ODERNN | CoRNN:
    """One layer of ``cell`` with the study's options: an ``rnnode.ODERNN`` (the tanh cell with
    an orthogonal recurrent matrix) or, for ``"cornn"``, a ``CoRNN``."""
    if cell == "cornn":
        return CoRNN(input_size, hidden, **CORNN)
    options, tau = OPTIONS.get(cell, ({}, 1.0))
    cell_name = "rnn" if cell == "tanh" else cell
    model = rnnode.ODERNN(
        input_size, hidden, 1, cell=cell_name, tau=tau, cell_options=options or None
    )
    if cell == "tanh":
        with torch.no_grad():
            nn.init.orthogonal_(model.layers[0].weight_hh)
    return model


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


def step_spectrum(model: rnnode.ODERNN | CoRNN) -> np.ndarray:
    """Eigenvalues of the step map's Jacobian at rest (h = 0, x = 0): 1 + J for the ODERNN cells
    (Euler step 1; the field already carries 1 / tau), autograd of the IMEX step for ``CoRNN``
    (state (y, z))."""
    if isinstance(model, CoRNN):
        h = model.hidden_size
        assert model.field.bias_ih is not None  # the study's coRNN has biases
        u = model.field.bias_ih.detach()

        def step(state: torch.Tensor) -> torch.Tensor:
            return torch.cat(model.step(state[:h], state[h:], u))

        jac = torch.autograd.functional.jacobian(step, torch.zeros(2 * h))
        return np.linalg.eigvals(jac.detach().numpy())
    state = model.state_parts * model.hidden_size
    rest = torch.zeros(1, state, dtype=torch.float64)
    lam = eigenvalues(model, rest, torch.zeros(1, dtype=torch.float64))
    return (1 + lam).detach().numpy()


def _grad(y: torch.Tensor) -> torch.Tensor:
    """The gradient that ``backward`` left on ``y``."""
    assert y.grad is not None  # every kept state reaches the loss
    return y.grad


def long_run(model: rnnode.ODERNN | CoRNN, length: int, batch: int, seed: int) -> dict[str, Any]:
    """max |h_t| and ||dLoss/dh_t|| (loss: a random linear readout of the last hidden state;
    for coRNN h = y, the gradient taken with z_t held, as ``gradient_norms`` does for the ODERNN
    cells' hidden part)."""
    generator = torch.Generator().manual_seed(seed + 5)
    x = torch.randn(length, batch, 1, generator=generator, dtype=torch.float64)
    v = torch.randn(batch, model.hidden_size, generator=generator, dtype=torch.float64)
    if isinstance(model, CoRNN):
        keep: list[torch.Tensor] = []
        ys, _ = model(x, keep)
        (ys[-1] * v).sum().backward()
        # column 0 (the initial state, fixed at 0) is left out, as gradient_norms's first column
        norms = np.array([float(_grad(y).norm()) for y in keep])
        output = ys.detach()
    else:

        def loss_fn(output: torch.Tensor, h_n: Any) -> torch.Tensor:
            return (output[-1] * v).sum()

        norms = gradient_norms(model, x, loss_fn)[0, 1:].detach().numpy()
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


def adding(cell: str, hidden: int, cfg: dict, seed: int) -> dict[str, Any]:
    """Train ``cell`` on the adding problem (T = ``adding_length``); its test MSE and losses."""
    task = rnnode.training.adding_task(
        cfg["num_train"], cfg["num_test"], cfg["adding_length"], seed=seed
    )
    torch.manual_seed(seed)
    model = Regressor(build(cell, hidden, input_size=2), hidden, 1)
    result = rnnode.training.train(
        model,
        task,
        steps=cfg["steps"],
        lr=LR,
        batch_size=cfg["batch_size"],
        seed=seed,
        clip_grad=CLIP,
        progress=False,
    )
    return {"test_mse": float(result["test"]["loss"]), "loss": result["history"]["loss"]}


def cell_point(point: dict[str, Any]) -> dict[str, Any]:
    """One (cell, seed): the step map's spectrum at rest, the long run at initialisation and
    the adding problem after training. ``point``: ``{"cell", "seed", "quick"}``."""
    cfg = settings(point["quick"])
    cell, seed = point["cell"], point["seed"]
    hidden = hidden_for(cell, cfg["parameters"])
    with one_thread():
        torch.manual_seed(seed)
        model = build(cell, hidden)
        spectrum = step_spectrum(model)
        long = long_run(model, cfg["long"], cfg["long_batch"], seed)
        trained = adding(cell, hidden, cfg, seed)
    return {
        "spectrum": {"real": spectrum.real, "imag": spectrum.imag},
        **long,
        **trained,
    }


def _paired(ctx: Context, name: str, statement: str, diff, label: str, control, effect):
    ctx.finding_over_seeds(
        name,
        statement,
        diff,
        comparison=">",
        bound=0.0,
        control=control,
        control_label=label,
        effect=effect,
    )


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    hidden = {c: hidden_for(c, cfg["parameters"]) for c in CELLS}
    params = {c: count(build(c, hidden[c])) for c in CELLS}

    # Verification: antisymmetric Jacobian at rest, zero bias: (W - W^T - gamma I) / tau.
    torch.manual_seed(ctx.seed)
    anti = build("antisymmetric", hidden["antisymmetric"])
    assert isinstance(anti, rnnode.ODERNN)
    field = anti.layers[0]
    assert field.bias_ih is not None and field.bias_hh is not None
    with torch.no_grad():
        field.bias_ih.zero_()
        field.bias_hh.zero_()
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

    points = [{"cell": c, "seed": s, "quick": ctx.quick} for s in seeds for c in CELLS]
    results = ctx.sweep(cell_point, points, name="cells-quick" if ctx.quick else "cells")
    by = {(p["cell"], p["seed"]): r for p, r in zip(points, results, strict=True)}
    rates = {c: np.array([by[c, s]["decay_rate"] for s in seeds]) for c in CELLS}
    mse = {c: np.array([by[c, s]["test_mse"] for s in seeds]) for c in CELLS}
    for c in ("cornn", "antisymmetric"):
        _paired(
            ctx,
            f"{c}_gradient_survives",
            f"over T = {cfg['long']} steps the {LABELS[c]} cell's error signal decays more "
            "slowly than the orthogonally initialised tanh RNN's (decades per 100 steps, tanh's "
            "minus the cell's, paired over seeds)",
            rates["tanh"] - rates[c],
            "orthogonal tanh RNN's decay rate, decades per 100 steps (mean)",
            float(rates["tanh"].mean()),
            RATE_EFFECT,
        )
        _paired(
            ctx,
            f"{c}_beats_tanh_adding",
            f"on the adding problem at T = {cfg['adding_length']} the {LABELS[c]} cell's test "
            "MSE is below the orthogonally initialised tanh RNN's at equal parameter count and "
            f"budget ({cfg['steps']} Adam steps; tanh's MSE minus the cell's, paired over seeds)",
            mse["tanh"] - mse[c],
            "orthogonal tanh RNN's test MSE (mean; predicting the mean scores 1/6)",
            float(mse["tanh"].mean()),
            MSE_EFFECT,
        )

    first = seeds[0]
    spectra = {
        c: np.asarray(by[c, first]["spectrum"]["real"])
        + 1j * np.asarray(by[c, first]["spectrum"]["imag"])
        for c in CELLS
    }
    ctx.figure(
        "spectra",
        _spectra_figure(spectra),
        caption="Eigenvalues of each cell's step map's Jacobian at rest (h = 0, x = 0), at "
        "initialisation (first seed), with the unit circle (grey).",
        numbers={c: float(np.abs(spectra[c]).max()) for c in CELLS},
    )
    ctx.figure(
        "long_sequences",
        _long_figure({c: by[c, first] for c in CELLS}),
        caption=f"Over T = {cfg['long']} steps of white-noise input, at initialisation (first "
        "seed): ||dLoss/dh_t|| for a loss on the last state (left) and max |h_t| (right).",
        numbers={c: float(rates[c].mean()) for c in CELLS},
    )
    ctx.figure(
        "adding",
        _adding_figure(mse, params, cfg),
        caption=f"Test MSE on the adding problem (T = {cfg['adding_length']}) after "
        f"{cfg['steps']} Adam steps, every seed (dots) and the mean with its 95% Student-t "
        "interval (black); dashed: the mean predictor's 1/6.",
        numbers={c: float(mse[c].mean()) for c in CELLS},
    )
    return {
        "settings": cfg,
        "seeds": seeds,
        "hidden": hidden,
        "parameters": params,
        "cornn": CORNN,
        "published": PUBLISHED,
        "spectral_radius_at_rest": {c: float(np.abs(spectra[c]).max()) for c in CELLS},
        "gradient_decay_rate": rates,
        "max_abs_h": {c: [float(np.max(by[c, s]["max_abs_h"])) for s in seeds] for c in CELLS},
        "gradient_norms_first_seed": {c: by[c, first]["gradient"] for c in CELLS},
        "test_mse": mse,
        "loss_curves": {c: [by[c, s]["loss"] for s in seeds] for c in CELLS},
    }


def _spectra_figure(spectra) -> Figure:
    fig = Figure(figsize=(3 * len(spectra), 3.4), layout="constrained")
    axes = fig.subplots(1, len(spectra))
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    for ax, (c, lam) in zip(axes, spectra.items(), strict=True):
        ax.plot(circle.real, circle.imag, "-", color="0.6", lw=0.8)
        ax.plot(lam.real, lam.imag, ".", ms=4)
        ax.set_aspect("equal")
        ax.set_title(LABELS[c], fontsize=9)
        ax.set_xlabel("Re (step-map eigenvalue)")
    axes[0].set_ylabel("Im (step-map eigenvalue)")
    fig.suptitle("Step-map eigenvalues at rest, at initialisation (grey: unit circle)", fontsize=10)
    return fig


def _long_figure(first) -> Figure:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, (c, r) in enumerate(first.items()):
        gradient = np.asarray(r["gradient"], dtype=float)
        steps = np.arange(1, len(gradient) + 1)
        shown = np.where(gradient > 0, gradient, np.nan)
        left.semilogy(steps, shown, color=f"C{i}", label=LABELS[c])
        right.plot(steps, r["max_abs_h"], color=f"C{i}", label=LABELS[c])
    left.set_xlabel("time step t (loss on the last state)")
    left.set_ylabel("||dLoss/dh_t||")
    left.set_title("Error signal going back in time (underflow to 0 not drawn)", fontsize=9)
    right.set_xlabel("time step t")
    right.set_ylabel("max |h_t| over units and sequences")
    right.set_title("Hidden-state bound under white-noise input", fontsize=9)
    left.legend(fontsize=7)
    return fig


def _adding_figure(mse, params, cfg) -> Figure:
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for i, values in enumerate(mse.values()):
        ax.plot(np.full(len(values), i) - 0.1, values, "o", color=f"C{i}", alpha=0.6)
        lo, hi = t_interval(values)
        bar = [[values.mean() - lo], [hi - values.mean()]] if np.isfinite(lo) else None
        ax.errorbar(i + 0.1, values.mean(), yerr=bar, fmt="s", color="k", capsize=3)
    ax.axhline(MEAN_PREDICTOR_MSE, color="0.4", ls="--", label="predicting the mean (1/6)")
    ax.errorbar([], [], yerr=[], fmt="s", color="k", capsize=3, label="mean, 95% t-interval")
    ax.plot([], [], "o", color="0.5", label="seeds")
    ax.set_xticks(range(len(mse)))
    ax.set_xticklabels([f"{LABELS[c]}\n({params[c]} params)" for c in mse], fontsize=7)
    ax.set_ylabel("test MSE")
    ax.set_title(
        f"Adding problem, T = {cfg['adding_length']}, {cfg['steps']} Adam steps", fontsize=10
    )
    ax.legend(fontsize=7)
    return fig
