"""Gate coupling: LSTM stacks trained with and without the gate-coupling penalty; gates, accuracy.

The penalty (``rnnode.training.gate_coupling_penalty``) is w * mean(relu(1 - o^(l) - i^(l+1))^2)
over
adjacent layers: it asks that a lower layer's output gate and the upper layer's input gate are not
nearly shut at the same step, so that information and gradient can pass between the layers. The
study trains the same LSTM stack (identical initial weights, identical batches,
``rnnode.training.train``)
on scikit-learn's 8x8 digits read row by row (T = 8, 10 classes), once with gate weight 0 and
once with gate weight w, for several seeds, and measures on the test images, for every adjacent
pair of layers:

- the coupling c = o^(l) + i^(l+1) at every step, sequence and unit: its mean and the fraction of
  violations c < 1 (where the penalty is non-zero);
- the test accuracy.

Verifications (what the penalty asks for, so they check the training, not the network):
with the penalty the fraction of violations falls and the mean coupling rises, for every seed and
adjacent pair. Findings (bootstrap over seeds, sign test): ``penalty_raises_accuracy``, the
benefit (per-seed accuracy difference > 0, control: accuracy without the penalty);
``accuracy_kept``, the cost (difference > -``accuracy_band``, a band fixed in the settings before
the full run: 0.05; quick 0.1); ``both_learn`` (accuracy without the penalty above ``LEARNED``,
control: chance 0.1).

Figures: ``coupling_histogram`` (distribution of c on the test set, first seed, both trainings)
and ``violations_accuracy`` (violation fraction and accuracy per seed, both trainings).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode

from ._run import Context, settings_for, train_with

#: Test accuracy that counts as having learned the digits (chance 0.1).
LEARNED = 0.3
#: Bins of the coupling histogram: c = o + i lies in (0, 2).
BINS = np.linspace(0.0, 2.0, 41)


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "hidden_size": 16,
    "num_layers": 3,
    "steps": 300,
    "batch_size": 32,
    "lr": 1e-2,
    "gate_weight": 1.0,
    "accuracy_band": 0.05,
    "seeds": 5,
}
QUICK = {
    "hidden_size": 8,
    "num_layers": 2,
    "steps": 40,
    "lr": 2e-2,
    "accuracy_band": 0.1,
    "seeds": 2,
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def coupling_stats(gates: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Mean of c = o^(l) + i^(l+1) and the fraction of c < 1, per adjacent pair of layers.

    Arguments:
        gates: ``Solution.gates`` of an LSTM stack, ``"i"`` and ``"o"`` of shape
            (num_layers, D, T, batch, hidden).

    Returns:
        ``{"mean": [num_layers - 1 floats], "violations": [num_layers - 1 floats],
        "histogram": [len(BINS) - 1 counts over all pairs]}``.
    """
    c = (gates["o"][:-1] + gates["i"][1:]).detach()  # (num_layers - 1, D, T, batch, hidden)
    pairs = c.reshape(c.shape[0], -1)
    return {
        "mean": pairs.mean(dim=1).tolist(),
        "violations": (pairs < 1).double().mean(dim=1).tolist(),
        "histogram": np.histogram(pairs.numpy(), bins=BINS)[0].tolist(),
    }


def _trained(
    task: rnnode.training.Task, cfg: dict, seed: int, gate_weight: float
) -> dict[str, Any]:
    torch.manual_seed(seed)
    rnn = rnnode.ODERNN(task.input_size, cfg["hidden_size"], cfg["num_layers"], cell="lstm")
    model = rnnode.training.SequenceModel.for_task(rnn, task, gate_weight=gate_weight)
    metrics = train_with(model, task, cfg, seed)
    with torch.no_grad():
        gates = rnn.solve(task.x_test.transpose(0, 1), return_gates=True).gates
    return {
        "accuracy": metrics["test"]["accuracy"],
        "task_loss": metrics["history"]["task"],
        **coupling_stats(gates),
    }


def point(p: dict) -> dict[str, Any]:
    """One seed: the same stack trained without (``"plain"``) and with (``"penalty"``) the
    penalty, and the coupling of the untrained stack (``"initial"``)."""
    cfg, seed = p["settings"], p["seed"]
    task = rnnode.training.digits_task("rows", seed=seed)
    torch.manual_seed(seed)
    rnn = rnnode.ODERNN(task.input_size, cfg["hidden_size"], cfg["num_layers"], cell="lstm")
    with torch.no_grad():
        initial = coupling_stats(rnn.solve(task.x_test.transpose(0, 1), return_gates=True).gates)
    return {
        "initial": initial,
        "plain": _trained(task, cfg, seed, 0.0),
        "penalty": _trained(task, cfg, seed, cfg["gate_weight"]),
    }


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    results = ctx.sweep(point, [{"settings": cfg, "seed": s} for s in seeds], name="seeds")

    def table(run: str, key: str) -> np.ndarray:
        return np.array([r[run][key] for r in results])  # (seeds, pairs) or (seeds,)

    violations = {run: table(run, "violations") for run in ("initial", "plain", "penalty")}
    coupling = {run: table(run, "mean") for run in ("initial", "plain", "penalty")}
    accuracy = {run: table(run, "accuracy") for run in ("plain", "penalty")}
    summary = {
        "mean_violations": {k: float(v.mean()) for k, v in violations.items()},
        "mean_coupling": {k: float(v.mean()) for k, v in coupling.items()},
        "mean_accuracy": {k: float(v.mean()) for k, v in accuracy.items()},
    }

    worst_violations = float((violations["penalty"] - violations["plain"]).max())
    ctx.verify(
        "fewer_violations",
        worst_violations < 0,
        "with the penalty, the fraction of steps and units where o^(l) + i^(l+1) < 1 on the test "
        "set is lower than without it, for every seed and adjacent pair (the penalty is that "
        "fraction's hinge: a check that the training minimised it, not a finding); value: the "
        "largest difference",
        value=worst_violations,
        bound=0.0,
    )
    weakest = float((coupling["penalty"] - coupling["plain"]).min())
    ctx.verify(
        "stronger_coupling",
        weakest > 0,
        "with the penalty, the mean of o^(l) + i^(l+1) on the test set is higher than without "
        "it, for every seed and adjacent pair (what the penalty asks for); value: the smallest "
        "difference",
        value=weakest,
        bound=0.0,
    )
    ctx.finding_over_seeds(
        "penalty_raises_accuracy",
        "the penalty raises test accuracy (per-seed difference with - without > 0)",
        accuracy["penalty"] - accuracy["plain"],
        comparison=">",
        bound=0.0,
        control=summary["mean_accuracy"]["plain"],
        control_label="mean accuracy without the penalty",
    )
    band = cfg["accuracy_band"]
    ctx.finding_over_seeds(
        "accuracy_kept",
        f"the penalty costs at most {band} of test accuracy (per-seed difference with - without "
        f"> -{band})",
        accuracy["penalty"] - accuracy["plain"],
        comparison=">",
        bound=-band,
        control=summary["mean_accuracy"]["plain"],
        control_label="mean accuracy without the penalty",
    )
    ctx.finding_over_seeds(
        "both_learn",
        f"training without the penalty learns the task: test accuracy above {LEARNED}",
        accuracy["plain"],
        comparison=">",
        bound=LEARNED,
        control=0.1,
        control_label="chance",
    )

    ctx.figure(
        "coupling_histogram",
        _histogram_figure(results[0]),
        caption=f"Distribution of o^(l) + i^(l+1) over test steps, sequences, units and adjacent "
        f"pairs (seed {seeds[0]}); left of the dashed line the penalty is non-zero.",
        numbers={
            "violations_without": results[0]["plain"]["violations"],
            "violations_with": results[0]["penalty"]["violations"],
        },
    )
    ctx.figure(
        "violations_accuracy",
        _seeds_figure(seeds, violations, accuracy),
        caption="Per seed: fraction of violations o^(l) + i^(l+1) < 1 (mean over pairs) and test "
        "accuracy, trained without and with the gate-coupling penalty.",
        numbers=summary,
    )
    return {
        "settings": cfg,
        "seeds": seeds,
        "violations": violations,
        "coupling": coupling,
        "accuracy": accuracy,
        **summary,
    }


_LABELS = {"initial": "untrained", "plain": "no penalty", "penalty": "with penalty"}


def _histogram_figure(result: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    centres = (BINS[:-1] + BINS[1:]) / 2
    for run in ("initial", "plain", "penalty"):
        counts = np.asarray(result[run]["histogram"], dtype=np.float64)
        ax.step(centres, counts / counts.sum(), where="mid", label=_LABELS[run])
    ax.axvline(1.0, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("o^(l) + i^(l+1)")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8)
    return fig


def _seeds_figure(seeds: list[int], violations: dict, accuracy: dict) -> Figure:
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for run, marker in (("plain", "o"), ("penalty", "s")):
        left.plot(seeds, violations[run].mean(axis=1), marker, label=_LABELS[run])
        right.plot(seeds, accuracy[run], marker, label=_LABELS[run])
    left.set_title("violations o + i < 1 (test)")
    right.set_title("test accuracy")
    for ax in (left, right):
        ax.set_xlabel("seed")
        ax.set_xticks(seeds)
        ax.legend(fontsize=8)
    return fig
