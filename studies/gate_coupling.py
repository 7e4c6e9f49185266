"""Gate coupling: deep LSTMs on pixel-by-pixel digits with and without the gate-coupling penalty.

The penalty (``rnnode.training.gate_coupling_penalty``) asks that a lower layer's output gate and
the upper layer's input gate are not nearly shut at the same step, so that information and
gradient can pass between the layers. Two pairings of lower and upper units:

- ``"uniform"`` (the package's default): unit h below with unit h above,
  w * mean(relu(1 - o_h^(l) - i_h^(l+1))^2);
- ``"input_weight"``: every lower unit j with every upper unit i, weighted by how strongly the
  upper input gate reads j, |W_ih^(l+1)[i, j]| normalised to sum 1 (the weights held constant).

The experiment. Deep LSTM stacks (``depths``: 4 layers, hidden 32) read scikit-learn's 8x8
digits pixel by pixel (T = 64 steps of one pixel, 10 classes, chance 0.1). For every depth and
seed the same initial weights and the same batches (``rnnode.training.Trainer``, Adam, gradient
clipped at norm 1) are trained without the penalty (``"none"``, the control) and with each
pairing at each of three penalty weights ``gate_weights`` = 0.1, 1 and 10 (7 trainings per seed;
an effect could appear only at one strength). Every ``eval_every`` steps (and at step 0) it
records the test accuracy (the learning curve) and the gradient of the task loss alone on a
fixed batch of ``grad_batch`` training images, log10(||grad of layer 1's weights|| / ||grad of
the top layer's weights||), how much of the error signal reaches the bottom of the stack. Each
seed draws its own train/test split, so seeds are independent replications (Student-t over
seeds).

The training budget (hidden 32, 300 Adam steps at lr 1e-2, batch 64) was chosen before the
penalty runs so that the control learns: a pilot of the no-penalty baseline alone (seed 0, 300
validation images from the training split) reached validation accuracy 0.79 (4 layers) and 0.73
(6 layers). This release's design (issue 19: 10 seeds, three weights) would cost about 13 hours
of one core with both depths; the 6-layer arm is dropped to fit (decided on cost and on the
control's pilot alone, before any run of this design): 70 trainings, estimated at 4.6
core-minutes each (the full run measured about 1.5: about 105 core-minutes in all).

Rules, written before any run of this design (per depth L and weight w; every value the mean
over seeds of a per-seed number, Student-t interval and test):

- ``baseline_learns_L``: final test accuracy without the penalty > ``LEARNED`` (0.3; control:
  chance 0.1): a negative below is only worth something if the models learned;
- ``penalty_raises_accuracy_L_wW`` (uniform) and ``weighted_penalty_raises_accuracy_L_wW``
  (input-weighted): per-seed final accuracy, penalty - none, > 0;
- ``..._trains_faster_L_wW``: per-seed area under the test-accuracy learning curve (trapezoid
  over the evaluation steps / steps: the mean accuracy during training), penalty - none, > 0;
- ``..._raises_lower_gradient_L_wW``: per-seed difference of the log10 gradient ratio, averaged
  over the evaluation steps after step 0, penalty - none, > 0;
- ``input_weight_beats_uniform_L_wW``: per-seed final accuracy, input-weighted - uniform, > 0.

Smallest effects that matter (``effect=``, decided before any run): ``EFFECT_ACCURACY`` = 0.05
for accuracies and areas (five points of test accuracy, 2.5 binomial standard errors of one
seed's 450-image test split at 0.8: a regulariser with its own weight to tune that moves
accuracy by less is not worth recommending), ``EFFECT_DECADES`` = 0.3 for the log10 gradient
ratio (a factor 2 more gradient at layer 1). An inconclusive finding then reads "no effect
larger than MDE" where 10 seeds resolve that effect, else "underpowered".

Verifications (what the penalties optimise): on the test images each penalty's own value is lower
after training with it than after training without any penalty, for every seed
(``uniform_penalty_lowered_L_wW``, ``weighted_penalty_lowered_L_wW``), and all runs of a seed
start from the same gradient ratio (``same_start_L``).

Earlier release (0.1, hidden 32, 300 steps, 5 seeds, weight 1, 4 and 6 layers; percentile
bootstrap intervals): every accuracy and area difference inconclusive. Full run of this design
(10 seeds): no accuracy effect found, 19 of 22 findings inconclusive, most with an MDE under the
0.05 that matters; the numbers are in studies/README.md.

Figures: ``learning_curves`` (test accuracy against step: mean over seeds with its 95% Student-t
band, one panel per weight), ``lower_gradient`` (the log10 gradient ratio, likewise) and
``accuracy`` (final accuracy per seed, mean and Student-t interval per arm).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import rnnode
from rnnode.training import SequenceModel, Trainer, gate_coupling_penalty, task_loss

from ._run import Context, settings_for
from ._stats import t_interval

#: Test accuracy that counts as having learned the digits (chance 0.1).
LEARNED = 0.3
#: Chance accuracy on 10 classes.
CHANCE = 0.1
#: The pairings; every seed is trained without a penalty ("none") and with each pairing at each
#: weight.
VARIANTS = ("none", "uniform", "input_weight")
PAIRINGS = VARIANTS[1:]
#: Smallest effects that matter (see the module docstring).
EFFECT_ACCURACY = 0.05
EFFECT_DECADES = 0.3

#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "hidden_size": 32,
    "depths": [4],
    "steps": 300,
    "eval_every": 50,
    "batch_size": 64,
    "grad_batch": 64,
    "lr": 1e-2,
    "clip_grad": 1.0,
    "gate_weights": [0.1, 1.0, 10.0],
    "test_size": None,  # None: the whole test split (450 images)
    "seeds": 10,
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
        assert solution.gates is not None
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
        grads = []
        for d in range(rnn.num_directions):
            for p in rnn.field(layer, d).parameters():
                assert p.grad is not None  # every parameter of the stack reaches the loss
                grads.append(p.grad.flatten())
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
    """One training: ``p["variant"]`` (``VARIANTS``) with penalty weight ``p["weight"]`` (0 for
    ``"none"``) at depth ``p["depth"]`` and seed ``p["seed"]``; learning curve, gradient ratios
    and the penalties on the test set."""
    cfg, seed, depth, variant = p["settings"], p["seed"], p["depth"], p["variant"]
    task = rnnode.training.digits_task("pixels", seed=seed)
    n_test = cfg["test_size"] or task.x_test.shape[0]
    task.x_test, task.y_test = task.x_test[:n_test], task.y_test[:n_test]
    torch.manual_seed(seed)  # the same initial weights for every variant
    rnn = rnnode.ODERNN(task.input_size, cfg["hidden_size"], depth, cell="lstm")
    if variant == "none":
        model = SequenceModel.for_task(rnn, task)
    else:
        model = _Coupled(rnn, task, p["weight"], variant)
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
    assert gates is not None
    return {
        **curve,
        "final_accuracy": curve["accuracy"][-1],
        "area": learning_area(curve["step"], curve["accuracy"]),
        "trained_ratio": float(np.mean(curve["log10_ratio"][1:])),
        "penalties": penalties(rnn, gates),
        "task_loss": trainer.history["task"],
    }


def weight_tag(weight: float) -> str:
    """A penalty weight in a claim's name: 0.1 -> "w0p1", 10.0 -> "w10"."""
    return "w" + f"{weight:g}".replace(".", "p")


def arms(weights: list[float]) -> list[str]:
    """The trainings of a seed: "none" and "<pairing>_<weight tag>" for every pairing and
    weight."""
    return ["none"] + [f"{v}_{weight_tag(w)}" for v in PAIRINGS for w in weights]


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    weights = cfg["gate_weights"]
    points = [
        {"settings": cfg, "variant": v, "weight": w, "depth": depth, "seed": s}
        for depth in cfg["depths"]
        for s in seeds
        for v, w in [("none", 0.0), *((v, w) for v in PAIRINGS for w in weights)]
    ]
    done = iter(ctx.sweep(point, points, name="trainings"))
    results: dict[str, dict[str, list]] = {}  # results[str(depth)][arm][seed index]
    for depth in cfg["depths"]:
        per = results.setdefault(str(depth), {a: [] for a in arms(weights)})
        for _ in seeds:
            for a in arms(weights):
                per[a].append(next(done))

    def table(depth: int, arm: str, key: str) -> np.ndarray:
        return np.array([r[key] for r in results[str(depth)][arm]], dtype=np.float64)

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
            effect=EFFECT_ACCURACY,
        )
        for w in weights:
            tag = weight_tag(w)
            for variant, prefix in (("uniform", "penalty"), ("input_weight", "weighted_penalty")):
                label = "uniform" if variant == "uniform" else "input-weighted"
                arm = f"{variant}_{tag}"
                for rule, key, words, effect in (
                    (
                        "raises_accuracy",
                        "final_accuracy",
                        "raises the final test accuracy",
                        EFFECT_ACCURACY,
                    ),
                    (
                        "trains_faster",
                        "area",
                        "speeds up training (area under the test-accuracy "
                        "curve, the mean accuracy over the evaluation steps)",
                        EFFECT_ACCURACY,
                    ),
                    (
                        "raises_lower_gradient",
                        "trained_ratio",
                        "raises the task-loss gradient "
                        "reaching layer 1 relative to the top layer (log10(||g_1|| / ||g_top||), "
                        "averaged over training)",
                        EFFECT_DECADES,
                    ),
                ):
                    ctx.finding_over_seeds(
                        f"{prefix}_{rule}_{depth}_{tag}",
                        f"the {label} penalty at weight {w:g} {words} of {depth}-layer LSTMs "
                        "(per-seed difference with - without > 0)",
                        table(depth, arm, key) - table(depth, "none", key),
                        comparison=">",
                        bound=0.0,
                        control=float(table(depth, "none", key).mean()),
                        control_label=f"mean {key.replace('_', ' ')} without the penalty",
                        effect=effect,
                    )
            uniform = table(depth, f"uniform_{tag}", "final_accuracy")
            ctx.finding_over_seeds(
                f"input_weight_beats_uniform_{depth}_{tag}",
                f"at weight {w:g}, pairing by |W_ih| helps {depth}-layer LSTMs more than pairing "
                "unit with unit: per-seed final accuracy, input-weighted - uniform > 0",
                table(depth, f"input_weight_{tag}", "final_accuracy") - uniform,
                comparison=">",
                bound=0.0,
                control=float(uniform.mean()),
                control_label="mean final accuracy with the uniform penalty",
                effect=EFFECT_ACCURACY,
            )
            for variant, name in (("uniform", "uniform"), ("input_weight", "weighted")):
                own = np.array(
                    [r["penalties"][variant] for r in results[str(depth)][f"{variant}_{tag}"]]
                )
                plain = np.array([r["penalties"][variant] for r in results[str(depth)]["none"]])
                worst = float((own - plain).max())
                ctx.verify(
                    f"{name}_penalty_lowered_{depth}_{tag}",
                    worst < 0,
                    f"training with the {variant} penalty at weight {w:g} lowers that penalty on "
                    "the test images below its value after training without any penalty, for "
                    "every seed (what the penalty optimises; not a finding); value: the largest "
                    "difference",
                    value=worst,
                    bound=0.0,
                )
        starts = np.array(
            [[r["log10_ratio"][0] for r in results[str(depth)][a]] for a in arms(weights)]
        )
        spread = float(np.abs(starts - starts[0]).max())
        ctx.verify(
            f"same_start_{depth}",
            spread == 0.0,
            "all runs of a seed start from the same weights: equal gradient ratios at "
            "step 0; value: the largest difference",
            value=spread,
            bound=0.0,
        )
        summary[str(depth)] = {
            a: {
                "mean_final_accuracy": float(table(depth, a, "final_accuracy").mean()),
                "mean_area": float(table(depth, a, "area").mean()),
                "mean_log10_ratio_at_init": float(
                    np.mean([r["log10_ratio"][0] for r in results[str(depth)][a]])
                ),
                "mean_log10_ratio_trained": float(table(depth, a, "trained_ratio").mean()),
            }
            for a in arms(weights)
        }

    depths = cfg["depths"]
    ctx.figure(
        "learning_curves",
        _curves_figure(results, depths, weights, "accuracy", "test accuracy", chance=CHANCE),
        caption="Test accuracy against training step, one panel per depth and penalty weight: "
        "mean over seeds (line) with its 95% Student-t interval (band), without the penalty and "
        "with each pairing; dotted: chance (0.1).",
        numbers={f"L{d}": {a: s["mean_area"] for a, s in summary[str(d)].items()} for d in depths},
    )
    ctx.figure(
        "lower_gradient",
        _curves_figure(results, depths, weights, "log10_ratio", "log10 of ||g_1|| / ||g_top||"),
        caption="Task-loss gradient reaching layer 1 relative to the top layer (log10 of the "
        "ratio of weight-gradient norms on a fixed training batch) against training step: mean "
        "over seeds with its 95% Student-t interval (band), one panel per depth and weight.",
        numbers={
            f"L{d}": {a: s["mean_log10_ratio_trained"] for a, s in summary[str(d)].items()}
            for d in depths
        },
    )
    ctx.figure(
        "accuracy",
        _accuracy_figure(results, depths, weights),
        caption="Final test accuracy per seed (dots), mean over seeds and its 95% Student-t "
        "interval (black square and bar), without the penalty and per pairing and weight; "
        "dotted: chance (0.1).",
        numbers={
            f"L{d}": {a: s["mean_final_accuracy"] for a, s in summary[str(d)].items()}
            for d in depths
        },
    )
    return {
        "settings": cfg,
        "seeds": seeds,
        "variants": list(VARIANTS),
        "arms": arms(weights),
        "results": results,
        "summary": summary,
    }


_LABELS = {"none": "no penalty", "uniform": "uniform pairing", "input_weight": "|W_ih| pairing"}


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column (seeds, steps) the 95% Student-t interval of the mean (the mean itself where
    the seeds agree exactly or there is one seed)."""
    mean = values.mean(axis=0)
    ends = np.array([t_interval(values[:, j]) for j in range(values.shape[1])])
    ends = np.where(np.isfinite(ends), ends, mean[:, None])
    return ends[:, 0], ends[:, 1]


def _curves_figure(
    results: dict,
    depths: list[int],
    weights: list[float],
    key: str,
    ylabel: str,
    chance: float | None = None,
) -> Figure:
    fig = Figure(figsize=(3.6 * len(weights), 3.2 * len(depths) + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(depths), len(weights), sharey=True, squeeze=False))
    for row, depth in zip(axes, depths, strict=True):
        for ax, w in zip(row, weights, strict=True):
            for k, arm in enumerate(["none", *(f"{v}_{weight_tag(w)}" for v in PAIRINGS)]):
                runs = results[str(depth)][arm]
                steps = runs[0]["step"]
                values = np.array([r[key] for r in runs])
                ax.plot(steps, values.mean(axis=0), color=f"C{k}")
                lo, hi = _band(values)
                ax.fill_between(steps, lo, hi, color=f"C{k}", alpha=0.2, linewidth=0)
            if chance is not None:
                ax.axhline(chance, color="k", linestyle=":", linewidth=1)
            ax.set_title(f"{depth} layers, penalty weight {w:g}", fontsize="medium")
            ax.set_xlabel("training step")
        row[0].set_ylabel(ylabel)
    handles = [Line2D([], [], color=f"C{k}", label=_LABELS[v]) for k, v in enumerate(VARIANTS)] + [
        Patch(color="0.5", alpha=0.3, label="95% t interval of the mean over seeds")
    ]
    if chance is not None:
        handles.append(Line2D([], [], color="k", linestyle=":", label="chance"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    return fig


def _accuracy_figure(results: dict, depths: list[int], weights: list[float]) -> Figure:
    names = arms(weights)
    fig = Figure(figsize=(1.1 * len(names) + 1.5, 3.8 * len(depths)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(depths), 1, sharey=True, squeeze=False)[:, 0])
    for ax, depth in zip(axes, depths, strict=True):
        for k, arm in enumerate(names):
            acc = np.array([r["final_accuracy"] for r in results[str(depth)][arm]])
            lo, hi = t_interval(acc)
            lo, hi = (lo, hi) if np.isfinite(lo) else (acc.mean(), acc.mean())
            color = f"C{VARIANTS.index(arm.rsplit('_w', 1)[0])}"
            ax.plot(np.full(acc.size, k), acc, "o", alpha=0.5, color=color)
            ax.errorbar(
                k + 0.2,
                acc.mean(),
                yerr=[[acc.mean() - lo], [hi - acc.mean()]],
                fmt="s",
                color="k",
                capsize=3,
            )
        ax.axhline(CHANCE, color="k", linestyle=":", linewidth=1)
        labels = [
            "no penalty"
            if a == "none"
            else f"{_LABELS[a.rsplit('_w', 1)[0]]}\nweight {a.rsplit('_w', 1)[1].replace('p', '.')}"
            for a in names
        ]
        ax.set_xticks(range(len(names)), labels, fontsize=7)
        ax.set_title(f"{depth}-layer LSTMs: final test accuracy", fontsize="medium")
        ax.set_ylabel("final test accuracy")
    return fig
