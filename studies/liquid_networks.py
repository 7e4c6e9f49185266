"""Liquid time-constant networks trained by ncps: what the fused step costs, and what the ODE is.

An LTC layer (Hasani et al., AAAI 2021) is the ODE cm dv/dt = -gleak (v - vleak) - sum w s(.)
(v - erev); ncps integrates it with ``ode_unfolds`` = 6 fused semi-implicit Euler steps per
sample. Here ``ncps.torch.LTC`` networks with an ``AutoNCP(units, 1)`` wiring are trained with
ncps's own step (Adam, ``steps`` steps, MSE over every sample), then moved to rnnode
(``rnnode.from_ncps``) and asked three questions.

Task (ncps's sine example made a distribution of sequences; fixed before any run): sequence i
has a frequency omega_i uniform in [0.5, 1.5] x 3 pi / ``length`` and a phase phi_i uniform in
[0, 2 pi); at samples k = 1..``length`` (elapsed time 1 each, ncps's default) the input is
(sin theta_k, cos theta_k) with theta_k = omega_i k + phi_i and the target sin(2 theta_k)
(frequency doubling). ``train`` and ``test`` sequences per seed, drawn from ``numpy``'s
generator seeded with the seed; the network's initial weights and wiring from the same seed.

Claims (rules fixed before any run; one number per seed, Student-t over seeds):

- verification ``bridge_is_ncps``: ``rnnode.from_ncps`` of each trained network reproduces ncps's
  test outputs (max difference < 1e-10 in float64).
- (a) the fused step against the ODE. The reference is the same weights solved with dopri5
  (rtol ``ode_rtol``, atol ``ode_atol``), the input held over each sample as ncps holds it. For
  every unfold count n in ``unfolds`` the largest state error over the test sequences is kept.
  ``fused_step_first_order``: |fitted order - 1| < 0.2, the order being the slope of log(error)
  against log(1/n) over n >= 6 (control: theory, 0). ``default_unfolds_differ``: at n = 6 the
  test readout differs from the ODE's by more than 1% of the ODE readout's RMS (control: the
  same ratio at ``control_unfolds``).
- (b) does accuracy survive moving the trained weights to the ODE solve?
  ``network_learns``: test MSE at n = 6 below 0.1 x the target's variance 1/2 (control: the
  untrained network of the same seed). ``accuracy_survives_ode``: test MSE of the ODE solve over
  test MSE at n = 6, minus 1, below 0.25 (control: the same network at ``control_unfolds``
  unfolds, closer to the ODE by the order above).
- (c) timescales and stability of the trained network. At ``inputs`` inputs on the unit circle
  (the task's inputs held), fixed points are found by ``rnnode.analysis.find_fixed_points``
  from states on the test trajectories and the state reached with the input held for ``HOLD``
  time units (where none converges, the slowest points found stand in);
  ``fixed_points_stable``: the largest real part of the Jacobian's eigenvalues over all of them
  below 0 (control: the untrained network).
  ``training_slows_the_slowest_mode``: log10 of the slowest timescale -1 / Re(lambda) at those
  points, trained over untrained, above 0 (control: 0). The liquid time constant of each
  neuron, cm / (gleak + sum of its synaptic conductances), is averaged along the test
  trajectories per neuron type (inter, command, motor) and reported (no claim).

Figures: ``fused_error`` (state error against unfolds per seed, with slope 1), ``accuracy``
(test MSE per seed: fused at 6 and ``control_unfolds`` unfolds, ODE, untrained) and
``timescales`` (liquid time constants per neuron type; eigenvalues at the fixed points of the
first seed).

Needs ncps: ``pip install 'rnnode[ncps]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode._extras import require
from rnnode.analysis import find_fixed_points

from ._run import Context, settings_for

#: ncps's default unfold count: the step the networks are trained with.
DEFAULT_UNFOLDS = 6
NEURON_TYPES = ("inter", "command", "motor")
#: Time the input is held (fused steps over samples of 4 time units) to reach a resting state,
#: one more start for the fixed-point search.
HOLD = 200

#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "units": 12,
    "length": 48,
    "train": 64,
    "test": 64,
    "steps": 400,
    "lr": 0.02,
    "batch_size": 16,
    "unfolds": [1, 2, 3, 6, 12, 24, 48, 96],
    "control_unfolds": 48,
    "ode_rtol": 1e-8,
    "ode_atol": 1e-10,
    "inputs": 8,
    "starts": 64,
    "seeds": 20,  # issue 19: one seed costs 33 s of CPU (under two core-minutes)
}
QUICK = {
    "units": 6,
    "length": 10,
    "train": 8,
    "test": 4,
    "steps": 3,
    "unfolds": [2, 6, 12, 24],
    "control_unfolds": 12,
    "ode_rtol": 1e-6,
    "ode_atol": 1e-8,
    "inputs": 2,
    "starts": 6,
    "seeds": 2,
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training, unfold counts and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def _ncps():
    return require("ncps.torch", "ncps", "ncps", "the liquid_networks study")


def sine_task(count: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sequences of the task: x (count, length, 2) = (sin, cos) of theta_k, y (count,
    length, 1) = sin(2 theta_k), theta_k = omega k + phi (see the module docstring)."""
    omega = rng.uniform(0.5, 1.5, size=(count, 1)) * 3 * np.pi / length
    phi = rng.uniform(0.0, 2 * np.pi, size=(count, 1))
    theta = omega * np.arange(1, length + 1)[None, :] + phi
    x = np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    return x, np.sin(2 * theta)[..., None]


def build(units: int, seed: int):
    """An ncps LTC with an AutoNCP(units, 1) wiring, batch first, initialised from ``seed``."""
    ncps_torch = _ncps()
    from ncps import wirings

    torch.manual_seed(seed)
    wiring = wirings.AutoNCP(units, 1, seed=seed)
    return ncps_torch.LTC(2, wiring, batch_first=True).to(torch.get_default_dtype())


def train(module, x: torch.Tensor, y: torch.Tensor, cfg: dict, seed: int) -> list[float]:
    """Adam on the MSE over every sample, ncps's own forward (its fused step); the loss curve."""
    optimizer = torch.optim.Adam(module.parameters(), lr=cfg["lr"])
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(cfg["steps"]):
        batch = torch.randperm(len(x), generator=generator)[: cfg["batch_size"]]
        out, _ = module(x[batch])
        loss = torch.mean((out - y[batch]) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def fitted_order(unfolds: list[int], errors: list[float]) -> float:
    """Slope of log(error) against log(1 / n) over the unfold counts n >= 6."""
    n = np.asarray(unfolds, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    keep = n >= DEFAULT_UNFOLDS
    return float(np.polyfit(np.log(1.0 / n[keep]), np.log(e[keep]), 1)[0])


def liquid_time_constants(model: rnnode.LTC, states: torch.Tensor, x: torch.Tensor):
    """cm / (gleak + synaptic conductances) of every neuron along trajectories: states (B, T, H)
    before each sample, x (B, T, 2) -> (B, T, H)."""
    field = model.ltc_field(0)
    cm, _, denominator = field.conductances(None, states, field.project(x))
    return cm / denominator


def _evaluate(model: rnnode.LTC, x, y, h0, cfg: dict) -> dict[str, Any]:
    """Readouts and states of the fused step per unfold count and of the ODE solve."""
    with torch.no_grad():
        ode = model.solve(x, h0, method="dopri5", rtol=cfg["ode_rtol"], atol=cfg["ode_atol"])
        ode_out = model.readout(ode.output)
        errors, readout_gap = [], {}
        mse = {"ode": float(torch.mean((ode_out - y) ** 2))}
        for n in sorted(set(cfg["unfolds"]) | {DEFAULT_UNFOLDS, cfg["control_unfolds"]}):
            sol = model.solve(x, h0, options={"unfolds": n})
            out = model.readout(sol.output)
            if n in cfg["unfolds"]:
                errors.append(float((sol.states - ode.states).abs().max()))
            rms = float(ode_out.pow(2).mean().sqrt())
            readout_gap[n] = float((out - ode_out).abs().max()) / rms
            mse[n] = float(torch.mean((out - y) ** 2))
    return {"errors": errors, "readout_gap": readout_gap, "mse": mse, "ode": ode}


def _stability(model: rnnode.LTC, ode, cfg: dict) -> dict[str, Any]:
    """Fixed points at ``inputs`` inputs on the unit circle, from states on the trajectories
    and from the state the network reaches with the input held for ``HOLD`` time units."""
    states = ode.states[0, 0].reshape(-1, model.hidden_size)  # (T + 1) * B states
    pick = torch.linspace(0, len(states) - 1, cfg["starts"]).round().long()
    max_real, slowest, eigen = -np.inf, 0.0, []
    for angle in np.linspace(0, 2 * np.pi, cfg["inputs"], endpoint=False):
        x = torch.tensor([np.sin(angle), np.cos(angle)])
        with torch.no_grad():
            held = model.solve(x.expand(1, HOLD // 4, 2), t=torch.arange(0.0, HOLD + 1, 4.0))
        starts = torch.cat([states[pick], held.states[0, 0, -1]]).unsqueeze(1)
        found = find_fixed_points(model, x, starts)
        # The fixed points; where none converged, the slowest points found instead.
        keep = found.is_fixed if bool(found.is_fixed.any()) else torch.ones_like(found.is_fixed)
        for values, kept in zip(found.eigenvalues, keep, strict=True):
            if not bool(kept):
                continue
            real = values.real
            max_real = max(max_real, float(real.max()))
            slowest = max(slowest, float((-1.0 / real[real < 0]).max()) if (real < 0).any() else 0)
            eigen.append(values.numpy())
    return {"max_real": max_real, "slowest": slowest, "eigenvalues": eigen}


def point(p: dict) -> dict[str, Any]:
    """One seed: train an ncps LTC, then measure it (and its untrained twin) in rnnode."""
    cfg, seed = p["settings"], p["seed"]
    rng = np.random.default_rng(seed)
    dtype = torch.get_default_dtype()
    x_train, y_train = (
        torch.as_tensor(a, dtype=dtype) for a in sine_task(cfg["train"], cfg["length"], rng)
    )
    x_test, y_test = (
        torch.as_tensor(a, dtype=dtype) for a in sine_task(cfg["test"], cfg["length"], rng)
    )
    module = build(cfg["units"], seed)
    untrained = rnnode.from_ncps(module)
    losses = train(module, x_train, y_train, cfg, seed)
    model = rnnode.from_ncps(module)
    h0 = torch.zeros(1, cfg["test"], model.hidden_size, dtype=dtype)
    with torch.no_grad():
        bridge = float((model(x_test)[0] - module(x_test, h0[0])[0]).abs().max())
    trained = _evaluate(model, x_test, y_test, h0, cfg)
    control = _evaluate(untrained, x_test, y_test, h0, cfg)
    stable = _stability(model, trained["ode"], cfg)
    stable_control = _stability(untrained, control["ode"], cfg)
    wiring = module.rnn_cell._wiring
    kinds = [wiring.get_type_of_neuron(i) for i in range(model.hidden_size)]
    with torch.no_grad():
        before = trained["ode"].states[0, 0, :-1].transpose(0, 1)  # (B, T, H)
        tau = liquid_time_constants(model, before, x_test).mean(dim=(0, 1)).numpy()
    return {
        "bridge_error": bridge,
        "loss": losses,
        "errors": trained["errors"],
        "order": fitted_order(cfg["unfolds"], trained["errors"]),
        "readout_gap": {str(k): v for k, v in trained["readout_gap"].items()},
        "mse": {str(k): v for k, v in trained["mse"].items()},
        "mse_untrained": {str(k): v for k, v in control["mse"].items()},
        "max_real": stable["max_real"],
        "max_real_untrained": stable_control["max_real"],
        "slowest": stable["slowest"],
        "slowest_untrained": stable_control["slowest"],
        "eigenvalues_real": [e.real.tolist() for e in stable["eigenvalues"]],
        "eigenvalues_imag": [e.imag.tolist() for e in stable["eigenvalues"]],
        "liquid_tau": {
            kind: float(np.mean([t for t, k in zip(tau, kinds, strict=True) if k == kind]))
            for kind in NEURON_TYPES
            if kind in kinds
        },
    }


def run(ctx: Context) -> dict[str, Any]:
    _ncps()
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    results = ctx.sweep(point, [{"settings": cfg, "seed": s} for s in seeds], name="seeds")
    per = {k: [r[k] for r in results] for k in results[0]}
    bridge = max(per["bridge_error"])
    ctx.verify(
        "bridge_is_ncps",
        bridge < 1e-10,
        "rnnode.from_ncps of every trained network reproduces ncps's test outputs (max "
        "difference, float64)",
        value=bridge,
        bound=1e-10,
    )
    d, c = str(DEFAULT_UNFOLDS), str(cfg["control_unfolds"])
    order = np.asarray(per["order"])
    ctx.finding_over_seeds(
        "fused_step_first_order",
        "the fused step's state error against the ODE falls at first order in the unfold count "
        "(|fitted order - 1| < 0.2, unfolds >= 6)",
        np.abs(order - 1.0),
        comparison="<",
        bound=0.2,
        control=0.0,
        control_label="a first-order step, in theory",
    )
    gap = np.array([r[d] for r in per["readout_gap"]])
    ctx.finding_over_seeds(
        "default_unfolds_differ",
        "at ncps's 6 unfolds the trained network's test readout differs from the ODE's by more "
        "than 1% of the ODE readout's RMS (max |difference| / RMS)",
        gap,
        comparison=">",
        bound=0.01,
        control=float(np.mean([r[c] for r in per["readout_gap"]])),
        control_label=f"the same ratio at {c} unfolds",
    )
    mse6 = np.array([m[d] for m in per["mse"]])
    ctx.finding_over_seeds(
        "network_learns",
        "trained with ncps's fused step, the network's test MSE (at 6 unfolds) is below 0.1 x "
        "the target's variance 1/2",
        mse6 / 0.5,
        comparison="<",
        bound=0.1,
        control=float(np.mean([m[d] for m in per["mse_untrained"]]) / 0.5),
        control_label="the untrained network's MSE / 0.5",
    )
    ode = np.array([m["ode"] for m in per["mse"]])
    more = np.array([m[c] for m in per["mse"]])
    ctx.finding_over_seeds(
        "accuracy_survives_ode",
        "moved to the ODE solve (dopri5), the trained weights keep their accuracy: test MSE "
        "over the MSE at 6 unfolds, minus 1, below 0.25",
        ode / mse6 - 1.0,
        comparison="<",
        bound=0.25,
        control=float(np.mean(more / mse6 - 1.0)),
        control_label=f"the same network at {c} unfolds",
    )
    ctx.finding_over_seeds(
        "fixed_points_stable",
        "every fixed point found at the task's inputs is stable (largest real part of the "
        "Jacobian's eigenvalues < 0)",
        per["max_real"],
        comparison="<",
        bound=0.0,
        control=float(np.mean(per["max_real_untrained"])),
        control_label="the untrained network's largest real part",
    )
    ratio = np.log10(np.asarray(per["slowest"]) / np.asarray(per["slowest_untrained"]))
    ctx.finding_over_seeds(
        "training_slows_the_slowest_mode",
        "training lengthens the slowest timescale -1/Re(lambda) at the fixed points (log10 of "
        "trained over untrained > 0)",
        ratio,
        comparison=">",
        bound=0.0,
        control=0.0,
        control_label="no change",
    )
    ctx.figure(
        "fused_error",
        _error_figure(cfg["unfolds"], per["errors"], seeds),
        caption="Largest state error of the fused step against the ODE (dopri5) on the test "
        "sequences, per unfold count and seed; dashed: slope 1.",
        numbers={"order": order.tolist()},
    )
    ctx.figure(
        "accuracy",
        _accuracy_figure(seeds, mse6, more, ode, per["mse_untrained"], d, c),
        caption=f"Test MSE per seed of the trained network: fused step at {d} (trained) and "
        f"{c} unfolds, ODE solve; and the untrained network at {d} unfolds.",
        numbers={"mse_6": mse6.tolist(), "mse_ode": ode.tolist()},
    )
    ctx.figure(
        "timescales",
        _timescale_figure(per),
        caption="Left: liquid time constant cm / (gleak + conductances) along the test "
        "trajectories, mean per neuron type, per seed. Right: Jacobian eigenvalues at the fixed "
        "points of the first seed.",
        numbers={"liquid_tau": per["liquid_tau"]},
    )
    return {"settings": cfg, "seeds": seeds, **per}


def _error_figure(unfolds: list[int], errors: list[list[float]], seeds: list[int]) -> Figure:
    fig = Figure(figsize=(4.5, 3.4), layout="constrained")
    ax = fig.subplots()
    n = np.asarray(unfolds, dtype=np.float64)
    for seed, e in zip(seeds, errors, strict=True):
        ax.loglog(n, e, "o-", markersize=3, alpha=0.7, label=f"seed {seed}")
    ref = np.asarray(errors).mean(axis=0)
    i = int(np.argmin(np.abs(n - DEFAULT_UNFOLDS)))
    ax.loglog(n, ref[i] * n[i] / n, "k--", label="slope 1")
    ax.set_xlabel("unfolds per sample")
    ax.set_ylabel("max state error vs ODE")
    ax.legend(fontsize=6)
    return fig


def _accuracy_figure(seeds, mse6, more, ode, untrained, d: str, c: str) -> Figure:
    fig = Figure(figsize=(5, 3.4), layout="constrained")
    ax = fig.subplots()
    s = np.asarray(seeds, dtype=np.float64)
    for shift, (label, values) in enumerate(
        (
            (f"fused, {d} unfolds", mse6),
            (f"fused, {c} unfolds", more),
            ("ODE (dopri5)", ode),
            (f"untrained, {d} unfolds", [m[d] for m in untrained]),
        )
    ):
        ax.semilogy(s + 0.1 * (shift - 1.5), values, "osD^"[shift], label=label)
    ax.set_xticks(seeds)
    ax.set_xlabel("seed")
    ax.set_ylabel("test MSE")
    ax.legend(fontsize=6)
    return fig


def _timescale_figure(per: dict) -> Figure:
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, kind in enumerate(NEURON_TYPES):
        values = [t[kind] for t in per["liquid_tau"] if kind in t]
        left.plot(np.full(len(values), i), values, "o", alpha=0.6)
    left.set_xticks(range(len(NEURON_TYPES)), NEURON_TYPES)
    left.set_yscale("log")
    left.set_ylabel("liquid time constant")
    for re, im in zip(per["eigenvalues_real"][0], per["eigenvalues_imag"][0], strict=True):
        right.plot(re, im, "x")
    right.axvline(0.0, color="k", linewidth=0.8)
    right.set_xlabel("Re lambda")
    right.set_ylabel("Im lambda")
    return fig
