"""Vanishing gradients: error-signal norms through depth and time across the initialisation's
critical point, and whether the lowest layers of a trained stack stay untrained.

Stacks are tanh ``ODERNN``s (the discrete RNN: Euler, step 1) at torch's default initialisation
(every weight and bias U(-1/sqrt(H), 1/sqrt(H))) with the **inter-layer weights alone** (every
layer's ``weight_ih``, which holds the skip weights too) multiplied by a ``gain`` (1: the
default); the recurrent weights ``weight_hh`` and the biases stay at their initialisation, so the
dynamics in time stay contractive (spectral radius about 1/sqrt(3)) at every gain and depth is
tested without chaos in time. Read out by an ``rnnode.training.SequenceModel`` head at the last
sample. Variants: ``plain`` (skips (1,)), ``skips`` (1, 2) and ``auxiliary`` (a readout head
with weight ``AUX_WEIGHT`` on every lower layer, ``SequenceModel(aux_weights=...)``).

**Part 1: norms at initialisation.** ||dLoss/dh_t^l|| (MSE against fixed random targets, one
backward pass, ``rnnode.analysis.gradients.gradient_norms``). The per-layer factor of a seed is
exp(slope of log ||dLoss/dh^1_T|| against depth) over stacks of the listed depths. Mean-field
theory (``rnnode.analysis.meanfield``; Poole et al. 2016, Schoenholz et al. 2017) predicts it:
q* = (((m - 1) g^2 + 1) / 3) E[tanh^2(sqrt(q*) z)] + 2 / (3H) with m = 2 weight matrices feeding
a unit (3 with skips; the recurrent one unscaled), chi = (g^2 / 3) E[sech^4(sqrt(q*) z)],
factor sqrt(chi) (plain) or sqrt(mu) with mu^2 = chi mu + chi (skips: two paths, see
``signal_propagation``). At the default gain, H = 16,
that is 0.534 (plain) and 0.809 (skips): **the decay the study measures at torch's default
initialisation is the one mean field predicts for that initialisation**, and a different init
gives a different answer. The critical gain g_c (predicted factor 1) on the inter-layer weights
is ``critical_gain(H)``: 2.59 (plain) and 1.83 (skips) at H = 16 (``critical_gain`` in the
metrics). ``signal_propagation`` checks the theory's accuracy (Gaussian weights, sigma_w
sweep, tolerance 0.05); here the same question is asked of the init researchers use, scaled.

The default-init decay itself (factor < 1, plain and skips) is recorded once, as a verification
in ``skip_paths`` (``plain_vanishes``, ``skips_still_decay``: mean field predicts it); its numbers
stay in this study's metrics (``per_layer_factor``, ``per_layer_factor_per_seed``).

Findings (rules fixed before any run; per seed, Student-t over seeds against the bound):

- ``skips_slow_the_decay``: skips minus plain factor > 0 (control: the plain factor).
- ``vanishes_through_time``: log10 of the top layer's norm at t_0 over the last sample < 0.
- ``vanishes_below_critical_{plain,skips}``: mean over the swept gains g < ``BELOW`` g_c of ln
  factor < 0; ``grows_above_critical_{plain,skips}``: mean over g > ``ABOVE`` g_c of ln factor
  > 0 (control: mean field's value of the same mean); ``crosses_near_critical_{plain,skips}``:
  |g_x / g_c - 1| < ``CROSSING_TOL`` where g_x is the gain at which the seed's ln factor
  crosses 0 (linear interpolation; the grid's end if it never crosses; control: g_c).

Verification: ``auxiliary_keeps_gradient`` (layer 1's own head gives it an error signal that
does not cross the stack, so its norm stays above ``AUX_FLOOR`` times its one-layer value: by
construction, not a finding).

**Part 2: is layer 1 untrained?** ``train_depth``-layer tanh stacks (plain and skips) trained on
digits read row by row (T = 8; the input enters only through layer 1, so the task needs it), with
SGD (lr ``LR["sgd"]``) and with Adam (lr ``LR["adam"]``), gradient norm clipped to ``CLIP`` (a
global rescaling: the same for every layer), at the initialisations listed in ``inits``:
``"default"``, and ``"critical"`` (each variant's g_c); ``steps`` = 150 (about 15 s of one core per
model). Per layer: the relative weight change ||theta_after - theta_before|| / ||theta_before||
over the layer's weights and biases, and a frozen linear probe's test accuracy
(``rnnode.analysis.linear_probe_accuracy``: ridge least squares from the standardised final state to
one-hot labels, trained on the training split with the network frozen) on the trained network and on
the same network before training (the control).

Predictions, written before the data: with SGD the update of a layer is its gradient, which
shrinks by the per-layer factor on the way down (0.53 per layer at the default init), so layer 1
changes least: log10(change of layer 1 / change of the top layer) < 0. Adam divides each
parameter's update by its own gradient's running RMS, so the size of the gradient drops out and
layer 1 changes about as much as the top: the same rule is predicted *not* to hold with Adam
(ratio near 1), and Adam's log ratio above SGD's. At the critical gain the factor is about 1,
so SGD's ratio is predicted near 1 too. The probe on layer 1 is predicted to gain over the
untrained layer 1 with Adam, and much less (if at all) with SGD at the default init.

Findings (per seed, Student-t over seeds; suffix ``_skips`` for the skip stack and
``_critical`` for the critical gain):

- ``lowest_layer_changes_least_{sgd,adam}[_skips][_critical]``: log10(relative change of layer 1
  over that of the top layer) < 0 (control: 0, every layer moving alike).
- ``adam_moves_lowest_layer_more[_skips][_critical]``: Adam's log ratio minus SGD's > 0 (control:
  SGD's mean log ratio).
- ``layer1_probe_above_untrained_{sgd,adam}[_skips][_critical]``: probe accuracy on trained
  layer 1 minus on the untrained layer 1 > 0 (control: the untrained layer 1's accuracy); every
  seed is scored on the same test split, so the samples are per (seed, test item) differences of
  correctness and the interval treats seeds and items as crossed random factors.

Seeds: 20 in the full run (5.2 core-minutes in all; results in studies/README.md; earlier
numbers scaled the recurrent weights too and are withdrawn).

Figures: ``depth`` (layer-1 norm against depth, three variants, every seed), ``heatmaps``
(``rnnode.analysis.plots.plot_gradient_norms`` of the deepest stack of each variant, first seed),
``gain_sweep`` (per-layer factor against gain, every seed and the mean, mean-field curves and
g_c), ``layer_training`` (per-layer relative weight change and probe accuracy, SGD and Adam,
trained and untrained, default and critical gain).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq

import rnnode
from rnnode.analysis.gradients import gradient_norms
from rnnode.analysis.meanfield import gradient_factor, stable_variance
from rnnode.analysis.probes import linear_probe_correct

from ._run import Context, settings_for
from ._vanishing_figures import figures

VARIANTS = ("plain", "skips", "auxiliary")
AUX_WEIGHT = 0.5
AUX_FLOOR = 0.1
#: Swept gains count as below / above the critical gain g_c under BELOW g_c / over ABOVE g_c.
BELOW, ABOVE = 0.8, 1.2
CROSSING_TOL = 0.15
#: Optimisers of part 2 and their learning rates; the gradient norm is clipped to CLIP.
OPTIMIZERS = ("sgd", "adam")
LR = {"sgd": 0.1, "adam": 3e-3}
CLIP = 1.0
#: Ridge penalty of the linear probe, relative to the number of training examples.
PROBE_RIDGE = 1e-3


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "depths": [1, 2, 4, 8, 16, 32, 64],
    "seeds": 20,
    "hidden_size": 16,
    "length": 16,
    "batch": 8,
    "gains": [0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0],
    "gain_depths": [1, 2, 4, 8, 16],
    "train_depth": 8,
    "train_hidden": 16,
    "steps": 150,
    "batch_size": 32,
    "inits": ["default", "critical"],
    "train_variants": ["plain", "skips"],
}
QUICK = {
    "depths": [1, 2, 4, 8],
    "seeds": 2,
    "hidden_size": 8,
    "length": 8,
    "batch": 4,
    "gains": [1.0, 4.0, 8.0],
    "gain_depths": [1, 2, 4],
    "train_depth": 3,
    "train_hidden": 8,
    "steps": 10,
    "batch_size": 16,
    "inits": ["default"],
    "train_variants": ["plain"],
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


# -- mean-field theory ------------------------------------------------------------------------


def predicted_factor(gain: float, hidden: int, skips: bool = False) -> float:
    """Mean-field per-layer factor of a tanh stack at torch's default init with its inter-layer
    weights times ``gain``.

    Inter-layer weights are U(-g/sqrt(H), g/sqrt(H)) (sigma_w^2 = g^2 / 3 per matrix), the
    recurrent one and the biases U(-1/sqrt(H), 1/sqrt(H)) (1/3 and 1/(3H)). A unit is fed by
    m - 1 = 1 inter-layer matrix (2 with skips (1, 2)), the recurrent matrix and 2 biases,
    q* = ``stable_variance(((m - 1) g^2 + 1) / 3, 2 / (3H))``; the error signal at the last
    sample passes the inter-layer weights only, chi = (g^2 / 3)
    E[sech^4(sqrt(q*) z)] (``gradient_factor`` squared). Plain: sqrt(chi); skips: the error
    signal's mean square obeys s_l = chi (s_{l+1} + s_{l+2}), growing per layer by mu with
    mu^2 = chi mu + chi, so the factor is sqrt(mu).

    Arguments:
        gain: g > 0.
        hidden: H, units per layer.
        skips: skips (1, 2) instead of the plain stack.

    Returns:
        The factor per layer (0.534 plain, 0.809 skips at g = 1, H = 16: the same as scaling
        every parameter, since g = 1 scales nothing).
    """
    g2 = float(gain) ** 2
    q = stable_variance(((2 if skips else 1) * g2 + 1) / 3, 2 / (3 * hidden))
    chi = float(gradient_factor(g2 / 3, q)) ** 2
    if not skips:
        return chi**0.5
    return ((chi + (chi**2 + 4 * chi) ** 0.5) / 2) ** 0.5


def critical_gain(hidden: int, skips: bool = False) -> float:
    """The gain g_c at which ``predicted_factor`` is 1 (root on [0.5, 50], 1e-12)."""
    return float(brentq(lambda g: predicted_factor(g, hidden, skips) - 1.0, 0.5, 50.0, xtol=1e-12))


def crossing_gain(gains: Sequence[float], log_factors: Sequence[float]) -> float:
    """The gain at which ln(factor) first crosses 0 going up, by linear interpolation.

    When it never crosses: the largest gain if every value is below 0, the smallest if none is.
    """
    g, f = np.asarray(gains, dtype=float), np.asarray(log_factors, dtype=float)
    for k in range(len(g) - 1):
        if f[k] < 0 <= f[k + 1]:
            return float(g[k] + (g[k + 1] - g[k]) * (-f[k]) / (f[k + 1] - f[k]))
    return float(g[-1] if (f < 0).all() else g[0])


# -- part 1: norms at initialisation ------------------------------------------------------------


def scale_parameters(module: torch.nn.Module, gain: float) -> None:
    """Multiply every inter-layer weight (each layer's ``weight_ih``, skips included) of
    ``module`` by ``gain`` in place; recurrent weights and biases are left as they are."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight_ih"):
                p.mul_(gain)


def build(
    variant: str, depth: int, hidden: int, gain: float = 1.0, input_size: int = 1, outputs: int = 1
) -> rnnode.training.SequenceModel:
    """The variant's model: a tanh stack (parameters times ``gain``) with a last-sample readout
    (and auxiliary heads); regression with ``outputs`` targets."""
    rnn = rnnode.ODERNN(
        input_size, hidden, depth, cell="rnn", skips=(1, 2) if variant == "skips" else (1,)
    )
    scale_parameters(rnn, gain)
    aux = {layer: AUX_WEIGHT for layer in range(depth - 1)} if variant == "auxiliary" else None
    return rnnode.training.SequenceModel(rnn, outputs, kind="regression", aux_weights=aux)


def readout_loss(
    model: rnnode.training.SequenceModel, y: torch.Tensor
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss_fn(output, h_n)`` for ``gradient_norms``: the model's loss from the solve's outputs.

    The top head reads ``output[-1]`` and head l reads ``h_n[l]`` (layer l's state at the last
    sample), which is what ``SequenceModel.loss`` reads for a last-sample readout.
    """

    def loss_fn(output: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
        total = rnnode.training.task_loss(model.head(output[-1]), y, model.kind)
        for layer, weight in model.aux_weights.items():
            head = model.aux_heads[str(layer)]
            total = total + weight * rnnode.training.task_loss(head(h_n[layer]), y, model.kind)
        return total

    return loss_fn


def gradient_point(point: dict[str, Any]) -> dict[str, Any]:
    """||dLoss/dh_t^l|| of one (variant, depth, gain, seed): (depth, T + 1) norms.

    Arguments:
        point: ``{"variant", "depth", "gain", "seed", "quick"}``.
    """
    cfg = settings(point["quick"])
    torch.manual_seed(point["seed"])
    model = build(point["variant"], point["depth"], cfg["hidden_size"], point["gain"])
    x = torch.randn(cfg["length"], cfg["batch"], 1)
    y = torch.randn(cfg["batch"], 1)
    norms = gradient_norms(model.rnn, x, readout_loss(model, y))
    return {"norms": norms}


def per_layer_factor(depths, norms) -> float:
    """exp of the slope of log(norm) against depth: the mean factor the signal gets per layer."""
    return float(np.exp(np.polyfit(depths, np.log(norms), 1)[0]))


# -- part 2: training ---------------------------------------------------------------------------


def relative_change(before: Sequence[torch.Tensor], after: Sequence[torch.Tensor]) -> float:
    """||theta_after - theta_before|| / ||theta_before||, the norms over all the tensors together
    (Frobenius: the square root of the sum of every entry's square)."""
    diff = sum(float(((a - b) ** 2).sum()) for a, b in zip(after, before, strict=True))
    base = sum(float((b**2).sum()) for b in before)
    return (diff / base) ** 0.5


def _layer_states(rnn: rnnode.ODERNN, x: torch.Tensor) -> torch.Tensor:
    """Every layer's state at the last sample, (layers, batch, H), for x (batch, T, in)."""
    with torch.no_grad():
        h_n = rnn.solve(x.transpose(0, 1)).h_n
    assert isinstance(h_n, torch.Tensor)  # one-part cells
    return h_n.detach()


def _layer_probes(rnn: rnnode.ODERNN, task: rnnode.training.Task) -> list[np.ndarray]:
    """Per layer, which test items a probe on that layer's last state gets right, (items,)."""
    train, test = _layer_states(rnn, task.x_train), _layer_states(rnn, task.x_test)
    return [
        linear_probe_correct(
            train[l], task.y_train, test[l], task.y_test, task.output_size, ridge=PROBE_RIDGE
        ).numpy()
        for l in range(rnn.num_layers)
    ]


@functools.lru_cache(maxsize=1)
def _digits() -> rnnode.training.Task:
    """Digits read row by row, the fixed split of seed 0 (loaded once per process)."""
    return rnnode.training.digits_task("rows", seed=0)


def train_point(point: dict[str, Any]) -> dict[str, Any]:
    """Train one stack on digits rows; per layer its relative weight change and probe accuracy.

    Arguments:
        point: ``{"variant": "plain" | "skips", "optimizer": "sgd" | "adam",
            "init": "default" | "critical", "seed", "steps", "quick"}``.

    Returns:
        ``{"gain", "relative_change": [per layer], "probe_trained": [...],
        "probe_untrained": [...], "test_accuracy", "final_loss"}``.
    """
    cfg = settings(point["quick"])
    task = _digits()
    skips = point["variant"] == "skips"
    gain = 1.0 if point["init"] == "default" else critical_gain(cfg["train_hidden"], skips)
    torch.manual_seed(point["seed"])
    rnn = rnnode.ODERNN(
        task.input_size,
        cfg["train_hidden"],
        cfg["train_depth"],
        cell="rnn",
        skips=(1, 2) if skips else (1,),
    )
    scale_parameters(rnn, gain)
    model = rnnode.training.SequenceModel.for_task(rnn, task)
    before = [[p.detach().clone() for p in layer.parameters()] for layer in rnn.layers]
    untrained = _layer_probes(rnn, task)
    result = rnnode.training.train(
        model,
        task,
        steps=point["steps"],
        lr=LR[point["optimizer"]],
        batch_size=cfg["batch_size"],
        seed=point["seed"],
        optimizer=point["optimizer"],
        clip_grad=CLIP,
        progress=False,
    )
    trained = _layer_probes(rnn, task)
    changes = [
        relative_change(b, [p.detach() for p in layer.parameters()])
        for b, layer in zip(before, rnn.layers, strict=True)
    ]
    return {
        "gain": gain,
        "relative_change": changes,
        "probe_trained": [float(c.mean()) for c in trained],
        "probe_untrained": [float(c.mean()) for c in untrained],
        # layer 1, per test item: probe correct after minus before training (-1, 0, 1)
        "probe_layer1_items": trained[0].astype(int) - untrained[0].astype(int),
        "test_accuracy": result["test"]["accuracy"],
        "final_loss": result["history"]["loss"][-1],
    }


def _suffix(variant: str, init: str) -> str:
    return ("_skips" if variant == "skips" else "") + ("_critical" if init == "critical" else "")


def _default_init(ctx: Context, cfg: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Part 1 at torch's default initialisation: the gradient norms of every variant and depth,
    their per-layer factors and the findings on them."""
    depths = cfg["depths"]
    # -- part 1: default initialisation ---------------------------------------------------------
    points = [
        {"variant": v, "depth": d, "gain": 1.0, "seed": s, "quick": ctx.quick}
        for v in VARIANTS
        for d in depths
        for s in seeds
    ]
    results = ctx.sweep(gradient_point, points, name="gradients")
    norms = {
        (p["variant"], p["depth"], p["seed"]): np.array(r["norms"])
        for p, r in zip(points, results, strict=True)
    }
    # Layer 1 at the last sample: the signal after crossing the whole depth. (depths, seeds)
    layer1 = {
        v: np.array([[norms[v, d, s][0, -1] for s in seeds] for d in depths]) for v in VARIANTS
    }
    factors = {v: per_layer_factor(depths, np.median(layer1[v], axis=1)) for v in VARIANTS}
    # Top layer at t_0 over the last sample: the signal after crossing all of time.
    through_time = np.array(
        [
            [norms["plain", d, s][-1, 0] / norms["plain", d, s][-1, -1] for s in seeds]
            for d in depths
        ]
    )
    seed_factors = {
        v: [per_layer_factor(depths, layer1[v][:, k]) for k in range(len(seeds))] for v in VARIANTS
    }
    log_time_ratio = np.log10(through_time).mean(axis=0)
    ctx.finding_over_seeds(
        "skips_slow_the_decay",
        "skips (1, 2) raise the fitted per-layer factor over the plain stack (per-seed "
        "difference > 0)",
        np.subtract(seed_factors["skips"], seed_factors["plain"]),
        comparison=">",
        bound=0.0,
        control=float(np.mean(seed_factors["plain"])),
        control_label="plain stack's mean factor",
    )
    worst_aux = float((layer1["auxiliary"] / layer1["auxiliary"][0]).min())
    ctx.verify(
        "auxiliary_keeps_gradient",
        worst_aux > AUX_FLOOR,
        f"auxiliary losses (weight {AUX_WEIGHT} on every lower layer): the layer-1 norm stays "
        f"above {AUX_FLOOR} times its one-layer value at every depth and seed (by construction: "
        "layer 1 has its own head, so its gradient does not cross the stack)",
        value=worst_aux,
        bound=AUX_FLOOR,
    )
    ctx.finding_over_seeds(
        "vanishes_through_time",
        "through time: the top layer's error signal at t_0 is below its value at the last "
        "sample, log10(ratio) < 0 (per seed, mean over depths)",
        log_time_ratio,
        comparison="<",
        bound=0.0,
        control=0.0,
        control_label="no decay (ratio 1)",
    )
    return {
        "norms": norms,
        "layer1": layer1,
        "factors": factors,
        "through_time": through_time,
        "seed_factors": seed_factors,
    }


def _gain_sweep(
    ctx: Context, cfg: dict[str, Any], seeds: list[int], critical: dict[str, float]
) -> dict[str, Any]:
    """Part 1 across the critical point: the per-layer factor against the gain, with the
    findings below, above and at the critical gain."""
    hidden = cfg["hidden_size"]
    # -- part 1: the gain across the critical point ---------------------------------------------
    gains, gain_depths = cfg["gains"], cfg["gain_depths"]
    gain_points = [
        {"variant": v, "depth": d, "gain": g, "seed": s, "quick": ctx.quick}
        for v in ("plain", "skips")
        for g in gains
        for d in gain_depths
        for s in seeds
    ]
    gain_results = ctx.sweep(gradient_point, gain_points, name="gains")
    gain_layer1 = {
        (p["variant"], p["gain"], p["depth"], p["seed"]): float(np.array(r["norms"])[0, -1])
        for p, r in zip(gain_points, gain_results, strict=True)
    }
    gain_factors: dict[str, np.ndarray] = {}  # (gains, seeds)
    theory: dict[str, list[float]] = {}
    for v in ("plain", "skips"):
        gain_factors[v] = np.array(
            [
                [
                    per_layer_factor(gain_depths, [gain_layer1[v, g, d, s] for d in gain_depths])
                    for s in seeds
                ]
                for g in gains
            ]
        )
        theory[v] = [predicted_factor(g, hidden, v == "skips") for g in gains]
        gc = critical[v]
        below = [i for i, g in enumerate(gains) if g < BELOW * gc]
        above = [i for i, g in enumerate(gains) if g > ABOVE * gc]
        if not below or not above:
            raise ValueError(
                f"gains: expected gains below {BELOW} g_c and above {ABOVE} g_c = {gc:.3g} "
                f"({v}), got {gains}"
            )
        log_f = np.log(gain_factors[v])
        log_theory = np.log(theory[v])
        label = "mean-field value of the same mean"
        ctx.finding_over_seeds(
            f"vanishes_below_critical_{v}",
            f"{v}: at gains below {BELOW} g_c (g_c = {gc:.3g}, mean field) the error signal "
            "vanishes with depth: per seed, the mean ln(per-layer factor) over those gains < 0",
            log_f[below].mean(axis=0),
            comparison="<",
            bound=0.0,
            control=float(log_theory[below].mean()),
            control_label=label,
        )
        ctx.finding_over_seeds(
            f"grows_above_critical_{v}",
            f"{v}: at gains above {ABOVE} g_c the error signal grows with depth: per seed, the "
            "mean ln(per-layer factor) over those gains > 0",
            log_f[above].mean(axis=0),
            comparison=">",
            bound=0.0,
            control=float(log_theory[above].mean()),
            control_label=label,
        )
        ctx.finding_over_seeds(
            f"crosses_near_critical_{v}",
            f"{v}: the gain at which the measured factor crosses 1 is within {CROSSING_TOL:.0%} "
            "of mean field's critical gain: per seed |g_x / g_c - 1| below the bound",
            [abs(crossing_gain(gains, log_f[:, k]) / gc - 1) for k in range(len(seeds))],
            comparison="<",
            bound=CROSSING_TOL,
            control=gc,
            control_label="mean-field critical gain g_c",
        )
    return {"gain_layer1": gain_layer1, "gain_factors": gain_factors, "theory": theory}


def _training(ctx: Context, cfg: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Part 2: which layers training moves, and what a probe reads from them, per
    initialisation, variant and optimiser, with the findings on them."""
    # -- part 2: training -----------------------------------------------------------------------
    train_points = [
        {
            "variant": v,
            "optimizer": o,
            "init": i,
            "seed": s,
            "steps": cfg["steps"],
            "quick": ctx.quick,
        }
        for i in cfg["inits"]
        for v in cfg["train_variants"]
        for o in OPTIMIZERS
        for s in seeds
    ]
    train_results = ctx.sweep(train_point, train_points, name="training")
    by_point = {
        (p["init"], p["variant"], p["optimizer"], p["seed"]): r
        for p, r in zip(train_points, train_results, strict=True)
    }
    keys = (
        "relative_change",
        "probe_trained",
        "probe_untrained",
        "probe_layer1_items",
        "test_accuracy",
    )
    training: dict[str, Any] = {}
    for i in cfg["inits"]:
        training[i] = {}
        for v in cfg["train_variants"]:
            training[i][v] = {"gain": by_point[i, v, OPTIMIZERS[0], seeds[0]]["gain"]}
            for o in OPTIMIZERS:
                # (seeds, layers) per quantity; test_accuracy (seeds,)
                training[i][v][o] = {
                    k: np.array([by_point[i, v, o, s][k] for s in seeds]) for k in keys
                }
    log_ratio: dict[tuple[str, str, str], np.ndarray] = {}
    for i in cfg["inits"]:
        for v in cfg["train_variants"]:
            suffix = _suffix(v, i)
            where = f"{v} {cfg['train_depth']}-layer stack at gain {training[i][v]['gain']:.3g}"
            for o in OPTIMIZERS:
                t = training[i][v][o]
                change = t["relative_change"]
                log_ratio[i, v, o] = np.log10(change[:, 0] / change[:, -1])
                ctx.finding_over_seeds(
                    f"lowest_layer_changes_least_{o}{suffix}",
                    f"{where}, {o}: layer 1's relative weight change is below the top layer's, "
                    "log10(ratio) < 0 per seed",
                    log_ratio[i, v, o],
                    comparison="<",
                    bound=0.0,
                    control=0.0,
                    control_label="every layer changing alike (log ratio 0)",
                )
                ctx.finding_over_seeds(
                    f"layer1_probe_above_untrained_{o}{suffix}",
                    f"{where}, {o}: a frozen linear probe reads the digit from trained layer 1 "
                    "better than from the same layer before training (difference > 0; seeds x "
                    "test items crossed: every seed is scored on the same test split)",
                    t["probe_layer1_items"],
                    comparison=">",
                    bound=0.0,
                    control=float(t["probe_untrained"][:, 0].mean()),
                    control_label="probe accuracy on the untrained layer 1",
                )
            ctx.finding_over_seeds(
                f"adam_moves_lowest_layer_more{suffix}",
                f"{where}: Adam's log10(layer-1 / top relative change) exceeds SGD's (per seed)",
                log_ratio[i, v, "adam"] - log_ratio[i, v, "sgd"],
                comparison=">",
                bound=0.0,
                control=float(log_ratio[i, v, "sgd"].mean()),
                control_label="SGD's mean log ratio",
            )
    return training


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    depths, seeds = cfg["depths"], list(range(ctx.seed, ctx.seed + cfg["seeds"]))
    hidden = cfg["hidden_size"]
    gains, gain_depths = cfg["gains"], cfg["gain_depths"]
    predicted = {v: predicted_factor(1.0, hidden, v == "skips") for v in ("plain", "skips")}
    critical = {v: critical_gain(hidden, v == "skips") for v in ("plain", "skips")}
    parts = {
        **_default_init(ctx, cfg, seeds),
        **_gain_sweep(ctx, cfg, seeds, critical),
        "training": _training(ctx, cfg, seeds),
    }
    figures(ctx, cfg, seeds, parts, predicted, critical)
    layer1, gain_layer1 = parts["layer1"], parts["gain_layer1"]
    return {
        "settings": cfg,
        "depths": depths,
        "seeds": seeds,
        "layer1_gradient": layer1,
        "per_layer_factor": parts["factors"],
        "per_layer_factor_per_seed": parts["seed_factors"],
        "mean_field_factor": predicted,
        "time_ratio_plain": parts["through_time"],
        "critical_gain": critical,
        "gain_factor": parts["gain_factors"],
        "gain_layer1_gradient": {
            v: np.array(
                [[[gain_layer1[v, g, d, s] for s in seeds] for d in gain_depths] for g in gains]
            )
            for v in ("plain", "skips")
        },
        "gain_mean_field": parts["theory"],
        "training": parts["training"],
    }
