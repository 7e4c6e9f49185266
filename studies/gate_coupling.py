"""Gate coupling: deep LSTMs on pixel-by-pixel digits with and without the gate-coupling penalty.

The penalty (``rnnode.training.gate_coupling_penalty``) asks that a lower layer's output gate and
the upper layer's input gate are not nearly shut at the same step, so that information and
gradient can pass between the layers. Two pairings of lower and upper units:

- ``"uniform"`` (the package's default): unit h below with unit h above,
  w * mean(relu(1 - o_h^(l) - i_h^(l+1))^2);
- ``"input_weight"``: every lower unit j with every upper unit i, weighted by how strongly the
  upper input gate reads j, |W_ih^(l+1)[i, j]| normalised to sum 1 (the weights held constant).

The experiment. Deep LSTM stacks (``depths``: 4 and 6 layers, hidden 32) read scikit-learn's 8x8
digits pixel by pixel (T = 64 steps of one pixel, 10 classes, chance 0.1). For every depth and
seed the same initial weights and the same batches (``rnnode.training.Trainer``, Adam, gradient
clipped at norm 1) are trained three times: without the penalty (``"none"``, the control), with
the uniform penalty and with the input-weighted one (weight ``gate_weight``). Every
``eval_every`` steps (and at step 0) it records:

- the test accuracy (the learning curve);
- the gradient of the task loss alone (cross-entropy, no penalty) on a fixed batch of
  ``grad_batch`` training images, per layer: log10(||grad of layer 1's weights|| / ||grad of the
  top layer's weights||), how much of the error signal reaches the bottom of the stack.

The training budget (hidden 32, 300 Adam steps at lr 1e-2, batch 64) was chosen before the
penalty runs so that the control learns the task: a pilot of the no-penalty baseline alone (seed
0, 300 validation images carved from the training split, the test split unused) reached
validation accuracy 0.79 (4 layers) and 0.73 (6 layers) after 300 steps. An earlier full run
with hidden 16 and 60 steps left the baselines at test accuracy 0.35 and 0.25, too weak a
control to carry a negative result; its rules were kept unchanged.

Rules, written before any run (per depth L; every value a mean over seeds of a per-seed number,
95% bootstrap interval over seeds, sign test; "penalty" stands for the uniform variant, and the
``weighted_`` claims repeat each rule for the input-weighted one):

- ``baseline_learns_L``: final test accuracy without the penalty > ``LEARNED`` (0.3; control:
  chance 0.1): a negative below is only worth something if the models learned;
- ``penalty_raises_accuracy_L``: per-seed final accuracy, penalty - none, > 0 (control: mean
  accuracy without the penalty);
- ``penalty_trains_faster_L``: per-seed area under the test-accuracy learning curve (trapezoid
  over the evaluation steps, divided by the steps: the mean accuracy during training),
  penalty - none, > 0 (control: the no-penalty area);
- ``penalty_raises_lower_gradient_L``: per-seed difference of the log10 gradient ratio above,
  averaged over the evaluation steps after step 0 (at step 0 the runs share their weights),
  penalty - none, > 0 (control: the no-penalty mean log10 ratio);
- ``input_weight_beats_uniform_L``: per-seed final accuracy, input-weighted - uniform, > 0
  (control: the uniform variant's accuracy): which pairing helps more.

Verifications (what the penalties optimise, so they check the training, not the network): on the
test images each penalty's own value is lower after training with it than after training without
any penalty, for every seed (``uniform_penalty_lowered_L``, ``weighted_penalty_lowered_L``), and
all three runs of a seed start from the same gradient ratio (``same_start_L``).

Full run (hidden 32, 300 steps, 5 seeds; 86 min wall with 2 workers on the shared 2-core
machine). Verifications hold (each penalty lower after training with it; same starts). 4 layers:
baseline test accuracy 0.812 [0.789, 0.841] (supported, chance 0.1); uniform penalty minus none:
accuracy +0.002 [-0.045, 0.038], area -0.018 [-0.074, 0.035], log10 gradient ratio +0.04
[-0.19, 0.27], all inconclusive; |W_ih|-weighted: accuracy -0.020 [-0.048, 0.005] and area
-0.022 [-0.069, 0.024] inconclusive, gradient ratio +0.10 [0.01, 0.19] supported; weighted minus
uniform -0.022 [-0.071, 0.026] inconclusive. 6 layers: baseline 0.688 [0.638, 0.748] (supported);
uniform: accuracy -0.132 [-0.339, 0.009], area -0.104 [-0.259, 0.005], gradient -0.99 [-3.19,
0.22], all inconclusive (wide: the seeds disagree); weighted: accuracy -0.002
[-0.068, 0.054] inconclusive, area -0.036 [-0.058, -0.015] **not supported** (slower), gradient
+0.06 [-0.10, 0.24] inconclusive; weighted minus uniform +0.130 [-0.044, 0.379] inconclusive.
With controls that learn the task, neither pairing raises accuracy or speeds training at 4 or 6
layers; the weighted pairing passes more gradient to layer 1 at 4 layers without any gain in
accuracy.

Figures: ``learning_curves`` (test accuracy against step, mean and range over seeds, per depth
and variant), ``lower_gradient`` (log10 gradient ratio against step) and ``accuracy`` (final
accuracy per seed, mean and bootstrap interval per variant and depth).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.training import SequenceModel, Trainer, gate_coupling_penalty, task_loss

from ._run import Context, settings_for
from ._stats import bootstrap_interval

#: Test accuracy that counts as having learned the digits (chance 0.1).
LEARNED = 0.3
#: Chance accuracy on 10 classes.
CHANCE = 0.1
#: The trainings per depth and seed: no penalty (the control) and the two pairings.
VARIANTS = ("none", "uniform", "input_weight")

#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "hidden_size": 32,
    "depths": [4, 6],
    "steps": 300,
    "eval_every": 50,
    "batch_size": 64,
    "grad_batch": 64,
    "lr": 1e-2,
    "clip_grad": 1.0,
    "gate_weight": 1.0,
    "test_size": None,  # None: the whole test split (450 images)
    "seeds": 5,
}
QUICK = {
    "hidden_size": 3,
    "depths": [2],
    "steps": 2,
    "eval_every": 1,
    "batch_size": 8,
    "grad_batch": 8,
    "test_size": 24,
    "seeds": 2,
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def input_gate_rows(rnn: rnnode.ODERNN) -> list[torch.Tensor]:
    """The input-gate rows of ``weight_ih`` of layers 2..L, detached: the ``input_weights`` of
    ``gate_coupling_penalty(..., weighting="input_weight")``, each (D, hidden, D * hidden)."""
    h, directions = rnn.hidden_size, rnn.num_directions
    return [
        torch.stack([rnn.field(layer, d).weight_ih[:h].detach() for d in range(directions)])
        for layer in range(1, rnn.num_layers)
    ]


def penalties(rnn: rnnode.ODERNN, gates: dict[str, torch.Tensor]) -> dict[str, float]:
    """Both penalties (weight 1) of a stack's gates: ``{"uniform": .., "input_weight": ..}``."""
    return {
        "uniform": float(gate_coupling_penalty(gates)),
        "input_weight": float(
            gate_coupling_penalty(
                gates, weighting="input_weight", input_weights=input_gate_rows(rnn)
            )
        ),
    }


class _Coupled(SequenceModel):
    """A ``SequenceModel`` whose loss adds the gate-coupling penalty with a chosen pairing."""

    def __init__(self, rnn: rnnode.ODERNN, task: rnnode.training.Task, gate_weight: float, pairing):
        super().__init__(
            rnn, task.output_size, kind=task.kind, per_step=task.per_step, gate_weight=gate_weight
        )
        self.pairing = pairing

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        prediction, _, solution = self.run(x)  # gates come with gate_weight > 0
        main = task_loss(prediction, y, self.kind)
        weights = input_gate_rows(self.rnn) if self.pairing == "input_weight" else None
        penalty = gate_coupling_penalty(
            solution.gates, self.gate_weight, weighting=self.pairing, input_weights=weights
        )
        parts = {"task": float(main.detach()), "gate_penalty": float(penalty.detach())}
        return main + penalty, parts


def gradient_ratio(model: SequenceModel, x: torch.Tensor, y: torch.Tensor) -> float:
    """log10(||d task loss / d layer 1's weights|| / ||d task loss / d top layer's weights||).

    The task loss alone (no penalty) on the batch ``x``, ``y``; "weights" are all of a layer's
    parameters (weight_ih, weight_hh and both biases, every direction). Leaves no gradient
    behind.
    """
    rnn = model.rnn
    model.zero_grad()
    prediction = model.run(x)[0]
    task_loss(prediction, y, model.kind).backward()

    def norm(layer: int) -> float:
        grads = [
            p.grad.flatten()
            for d in range(rnn.num_directions)
            for p in rnn.field(layer, d).parameters()
        ]
        return float(torch.cat(grads).norm())

    ratio = norm(0) / norm(rnn.num_layers - 1)
    model.zero_grad()
    return float(np.log10(ratio))


def learning_area(steps: list[int], accuracy: list[float]) -> float:
    """Area under the learning curve divided by its length: the trapezoid of test accuracy over
    the evaluation steps / (last step - first step), the mean accuracy during training."""
    s, a = np.asarray(steps, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    return float(np.sum((a[1:] + a[:-1]) / 2 * np.diff(s)) / (s[-1] - s[0]))


def point(p: dict) -> dict[str, Any]:
    """One training: ``p["variant"]`` (``VARIANTS``) at depth ``p["depth"]`` and seed
    ``p["seed"]``; learning curve, gradient ratios and the penalties on the test set."""
    cfg, seed, depth, variant = p["settings"], p["seed"], p["depth"], p["variant"]
    task = rnnode.training.digits_task("pixels", seed=seed)
    n_test = cfg["test_size"] or task.x_test.shape[0]
    task.x_test, task.y_test = task.x_test[:n_test], task.y_test[:n_test]
    torch.manual_seed(seed)  # the same initial weights for every variant
    rnn = rnnode.ODERNN(task.input_size, cfg["hidden_size"], depth, cell="lstm")
    if variant == "none":
        model = SequenceModel.for_task(rnn, task)
    else:
        model = _Coupled(rnn, task, cfg["gate_weight"], variant)
    trainer = Trainer(
        model,
        task,
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        seed=seed,
        clip_grad=cfg["clip_grad"],
        progress=False,
    )
    x_grad, y_grad = task.x_train[: cfg["grad_batch"]], task.y_train[: cfg["grad_batch"]]
    curve: dict[str, list] = {"step": [], "accuracy": [], "log10_ratio": []}
    for step in range(0, cfg["steps"] + 1, cfg["eval_every"]):
        trainer.fit(step)
        curve["step"].append(step)
        curve["accuracy"].append(trainer.evaluate("test")["accuracy"])
        curve["log10_ratio"].append(gradient_ratio(model, x_grad, y_grad))
    with torch.no_grad():
        gates = rnn.solve(task.x_test.transpose(0, 1), return_gates=True).gates
    return {
        **curve,
        "final_accuracy": curve["accuracy"][-1],
        "area": learning_area(curve["step"], curve["accuracy"]),
        "trained_ratio": float(np.mean(curve["log10_ratio"][1:])),
        "penalties": penalties(rnn, gates),
        "task_loss": trainer.history["task"],
    }


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    points = [
        {"settings": cfg, "variant": v, "depth": depth, "seed": s}
        for depth in cfg["depths"]
        for s in seeds
        for v in VARIANTS
    ]
    done = iter(ctx.sweep(point, points, name="trainings"))
    results: dict[str, dict[str, list]] = {}  # results[str(depth)][variant][seed index]
    for depth in cfg["depths"]:
        per = results.setdefault(str(depth), {v: [] for v in VARIANTS})
        for _ in seeds:
            for v in VARIANTS:
                per[v].append(next(done))

    def table(depth: int, variant: str, key: str) -> np.ndarray:
        return np.array([r[key] for r in results[str(depth)][variant]], dtype=np.float64)

    summary: dict[str, Any] = {}
    for depth in cfg["depths"]:
        none_acc = table(depth, "none", "final_accuracy")
        ctx.finding_over_seeds(
            f"baseline_learns_{depth}",
            f"{depth}-layer LSTMs without the penalty learn pixel-by-pixel digits: final test "
            f"accuracy above {LEARNED}",
            none_acc,
            comparison=">",
            bound=LEARNED,
            control=CHANCE,
            control_label="chance",
        )
        for variant, prefix in (("uniform", "penalty"), ("input_weight", "weighted_penalty")):
            label = "uniform" if variant == "uniform" else "input-weighted"
            ctx.finding_over_seeds(
                f"{prefix}_raises_accuracy_{depth}",
                f"the {label} penalty raises the final test accuracy of {depth}-layer LSTMs "
                "(per-seed difference with - without > 0)",
                table(depth, variant, "final_accuracy") - none_acc,
                comparison=">",
                bound=0.0,
                control=float(none_acc.mean()),
                control_label="mean final accuracy without the penalty",
            )
            ctx.finding_over_seeds(
                f"{prefix}_trains_faster_{depth}",
                f"the {label} penalty speeds up training of {depth}-layer LSTMs: area under the "
                "test-accuracy curve (mean accuracy over the evaluation steps), per-seed "
                "difference with - without > 0",
                table(depth, variant, "area") - table(depth, "none", "area"),
                comparison=">",
                bound=0.0,
                control=float(table(depth, "none", "area").mean()),
                control_label="mean area without the penalty",
            )
            ctx.finding_over_seeds(
                f"{prefix}_raises_lower_gradient_{depth}",
                f"the {label} penalty raises the task-loss gradient reaching layer 1 of "
                f"{depth}-layer LSTMs relative to the top layer: per-seed difference of "
                "log10(||g_1|| / ||g_top||), averaged over training, with - without > 0",
                table(depth, variant, "trained_ratio") - table(depth, "none", "trained_ratio"),
                comparison=">",
                bound=0.0,
                control=float(table(depth, "none", "trained_ratio").mean()),
                control_label="mean log10 ratio without the penalty",
            )
        ctx.finding_over_seeds(
            f"input_weight_beats_uniform_{depth}",
            f"pairing by |W_ih| helps {depth}-layer LSTMs more than pairing unit with unit: "
            "per-seed final accuracy, input-weighted - uniform > 0",
            table(depth, "input_weight", "final_accuracy")
            - table(depth, "uniform", "final_accuracy"),
            comparison=">",
            bound=0.0,
            control=float(table(depth, "uniform", "final_accuracy").mean()),
            control_label="mean final accuracy with the uniform penalty",
        )
        for variant, name in (("uniform", "uniform"), ("input_weight", "weighted")):
            own = np.array([r["penalties"][variant] for r in results[str(depth)][variant]])
            plain = np.array([r["penalties"][variant] for r in results[str(depth)]["none"]])
            worst = float((own - plain).max())
            ctx.verify(
                f"{name}_penalty_lowered_{depth}",
                worst < 0,
                f"training with the {variant} penalty lowers that penalty on the test images "
                "below its value after training without any penalty, for every seed (what the "
                "penalty optimises; not a finding); value: the largest difference",
                value=worst,
                bound=0.0,
            )
        starts = np.array([[r["log10_ratio"][0] for r in results[str(depth)][v]] for v in VARIANTS])
        spread = float(np.abs(starts - starts[0]).max())
        ctx.verify(
            f"same_start_{depth}",
            spread == 0.0,
            "the three runs of a seed start from the same weights: equal gradient ratios at "
            "step 0; value: the largest difference",
            value=spread,
            bound=0.0,
        )
        summary[str(depth)] = {
            v: {
                "mean_final_accuracy": float(table(depth, v, "final_accuracy").mean()),
                "mean_area": float(table(depth, v, "area").mean()),
                "mean_log10_ratio_at_init": float(
                    np.mean([r["log10_ratio"][0] for r in results[str(depth)][v]])
                ),
                "mean_log10_ratio_trained": float(table(depth, v, "trained_ratio").mean()),
            }
            for v in VARIANTS
        }

    depths = cfg["depths"]
    ctx.figure(
        "learning_curves",
        _curves_figure(results, depths, "accuracy", "test accuracy", chance=CHANCE),
        caption="Test accuracy against training step, mean over seeds (line) and range (band), "
        "without the penalty and with each pairing; dotted: chance.",
        numbers={f"L{d}": {v: s["mean_area"] for v, s in summary[str(d)].items()} for d in depths},
    )
    ctx.figure(
        "lower_gradient",
        _curves_figure(results, depths, "log10_ratio", "log10 ||g_1|| / ||g_top||"),
        caption="Task-loss gradient reaching layer 1 relative to the top layer (log10 of the "
        "ratio of weight-gradient norms on a fixed training batch) against training step.",
        numbers={
            f"L{d}": {v: s["mean_log10_ratio_trained"] for v, s in summary[str(d)].items()}
            for d in depths
        },
    )
    ctx.figure(
        "accuracy",
        _accuracy_figure(results, depths),
        caption="Final test accuracy per seed (dots), mean and 95% bootstrap interval over seeds "
        "(bar), per depth and variant.",
        numbers={
            f"L{d}": {v: s["mean_final_accuracy"] for v, s in summary[str(d)].items()}
            for d in depths
        },
    )
    return {
        "settings": cfg,
        "seeds": seeds,
        "variants": list(VARIANTS),
        "results": results,
        "summary": summary,
    }


_LABELS = {"none": "no penalty", "uniform": "uniform pairing", "input_weight": "|W_ih| pairing"}


def _curves_figure(
    results: dict, depths: list[int], key: str, ylabel: str, chance: float | None = None
) -> Figure:
    fig = Figure(figsize=(4.2 * len(depths), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(depths), sharey=True))
    for ax, depth in zip(axes, depths, strict=True):
        for v in VARIANTS:
            runs = results[str(depth)][v]
            steps = runs[0]["step"]
            values = np.array([r[key] for r in runs])
            (line,) = ax.plot(steps, values.mean(axis=0), label=_LABELS[v])
            ax.fill_between(
                steps, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2
            )
        if chance is not None:
            ax.axhline(chance, color="k", linestyle=":", linewidth=1)
        ax.set_title(f"{depth} layers")
        ax.set_xlabel("step")
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    return fig


def _accuracy_figure(results: dict, depths: list[int]) -> Figure:
    fig = Figure(figsize=(4.2 * len(depths), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(depths), sharey=True))
    for ax, depth in zip(axes, depths, strict=True):
        for k, v in enumerate(VARIANTS):
            acc = np.array([r["final_accuracy"] for r in results[str(depth)][v]])
            lo, hi = bootstrap_interval(acc)
            lo, hi = max(lo, float(acc.min())), min(hi, float(acc.max()))  # finite when < 3 seeds
            ax.plot(np.full(acc.size, k), acc, "o", alpha=0.5)
            ax.errorbar(
                k + 0.15,
                acc.mean(),
                yerr=[[acc.mean() - lo], [hi - acc.mean()]],
                fmt="s",
                color="k",
                capsize=3,
            )
        ax.axhline(CHANCE, color="k", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(VARIANTS)), [_LABELS[v] for v in VARIANTS], fontsize=8)
        ax.set_title(f"{depth} layers")
    axes[0].set_ylabel("final test accuracy")
    return fig
