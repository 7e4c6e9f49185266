"""Continuous limit: torch.nn RNNs are the step-1 Euler map of an ODE; smaller steps converge to it.

Claim 1 (the bridge). With the input held over each sample interval, one explicit Euler step of
size 1 of dh/dt = Phi(h, x) - h is h_k = Phi(h_{k-1}, x_k), the discrete cell. So a torch.nn
module and ``rnnode.from_torch`` of it agree to rounding (float64): the maximum absolute
difference of outputs and final states is reported and must stay below 1e-12.

Claim 2 (the limit). The same weights define an ODE; as the step h shrinks, the fixed-step
solution converges to its exact solution at the observed order of the method: error ~ C h^p with
p = 1 (Euler), 2 (midpoint), 4 (RK4), fitted as the slope of log(error) against log(h). The exact
solution is an independent one: the cell maps written in numpy and integrated with
``scipy.integrate.solve_ivp`` (DOP853, rtol = atol = 1e-13) over each sample interval, for both
couplings of the layers: ``"sampled"`` (layer l driven by the held samples of layer l - 1; the
discrete stack's structure) and ``"continuous"`` (one joint ODE, layer l driven by layer l - 1 at
every instant). The numpy cell maps are checked first: the discrete recurrence with them must
reproduce torch.nn to 1e-12.

Figures: ``convergence`` (error against step, log-log, with reference slopes, per cell and
coupling) and ``trajectory`` (the discrete RNN's outputs on the continuous-time solutions of the
same weights).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from scipy.integrate import solve_ivp
from torch import nn

import rnnode

from ._run import Context, settings_for

#: torch.nn modules of the bridge check: name -> (class, extra arguments).
MODULES: dict[str, tuple[type[nn.RNN] | type[nn.GRU] | type[nn.LSTM], dict[str, str]]] = {
    "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
    "gru": (nn.GRU, {}),
    "lstm": (nn.LSTM, {}),
}
#: Cells of the convergence check (relu's kink at 0 caps the order of high-order methods).
SMOOTH = ("rnn_tanh", "gru", "lstm")
#: Fixed-step methods and their classical orders.
ORDERS = {"euler": 1, "midpoint": 2, "rk4": 4}
#: Accepted band around each classical order for the fitted slope (a few steps per fit).
BANDS = {"euler": 0.1, "midpoint": 0.2, "rk4": 0.4}
BRIDGE_TOL = 1e-12
REFERENCE_TOL = 1e-13  # rtol = atol of solve_ivp; errors fitted are kept far above it


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "input_size": 3,
    "hidden_size": 16,
    "num_layers": 3,
    "length": 30,
    "batch": 4,
    "steps": {
        "euler": [2.0**-k for k in range(2, 10)],
        "midpoint": [2.0**-k for k in range(2, 8)],
        "rk4": [2.0**-k for k in range(2, 6)],
    },
}
QUICK = {
    "input_size": 2,
    "hidden_size": 4,
    "num_layers": 2,
    "length": 6,
    "batch": 2,
    "steps": {
        "euler": [2.0**-k for k in range(2, 6)],
        "midpoint": [2.0**-k for k in range(2, 6)],
        "rk4": [2.0**-k for k in range(2, 5)],
    },
}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes and step lists: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


# -- the independent reference: numpy cell maps, scipy integration ----------------------------


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _cell_map(name: str, weights: dict[str, np.ndarray], hidden: int):
    """Phi(s, x) of torch's cell ``name`` in numpy, s (batch, state) and x (batch, input)."""
    w_ih, w_hh, b_ih, b_hh = (weights[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def rnn(s, x, sigma):
        return sigma(x @ w_ih.T + b_ih + s @ w_hh.T + b_hh)

    def gru(s, x):
        gi, gh = x @ w_ih.T + b_ih, s @ w_hh.T + b_hh
        r = _sigmoid(gi[:, :hidden] + gh[:, :hidden])
        z = _sigmoid(gi[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
        n = np.tanh(gi[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
        return (1 - z) * n + z * s

    def lstm(s, x):
        h, c = s[:, :hidden], s[:, hidden:]
        g = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f = _sigmoid(g[:, :hidden]), _sigmoid(g[:, hidden : 2 * hidden])
        cand, o = np.tanh(g[:, 2 * hidden : 3 * hidden]), _sigmoid(g[:, 3 * hidden :])
        c_next = f * c + i * cand
        return np.concatenate([o * np.tanh(c_next), c_next], axis=1)

    return {
        "rnn_tanh": lambda s, x: rnn(s, x, np.tanh),
        "rnn_relu": lambda s, x: rnn(s, x, lambda a: np.maximum(a, 0.0)),
        "gru": gru,
        "lstm": lstm,
    }[name]


def _layer_weights(module: nn.RNNBase, layer: int) -> dict[str, np.ndarray]:
    return {
        k: getattr(module, f"{k}_l{layer}").detach().numpy().copy()
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }


def discrete_map(name: str, module: nn.RNNBase, x: np.ndarray) -> np.ndarray:
    """The discrete RNN in numpy: s_k = Phi_l(s_{k-1}, u_k) layer by layer, from s_0 = 0.

    Returns:
        (layers, T + 1, batch, state): the states at t_0..t_T (one Euler step of size 1 per
        interval of the ODE below; compared with torch.nn to check the numpy maps).
    """
    hidden, batch = module.hidden_size, x.shape[1]
    drive, layers = x, []
    for layer in range(module.num_layers):
        phi = _cell_map(name, _layer_weights(module, layer), hidden)
        s = [np.zeros((batch, _parts(name) * hidden))]
        for u in drive:
            s.append(phi(s[-1], u))
        layers.append(np.stack(s))
        drive = layers[-1][1:, :, :hidden]
    return np.stack(layers)


def _parts(name: str) -> int:
    return 2 if name == "lstm" else 1


def _solve_interval(rate, k: int, y0: np.ndarray, dense: bool):
    return solve_ivp(
        rate,
        (float(k), float(k + 1)),
        y0.ravel(),
        method="DOP853",
        rtol=REFERENCE_TOL,
        atol=REFERENCE_TOL,
        dense_output=dense,
    )


def reference(
    name: str,
    module: nn.RNNBase,
    x: np.ndarray,
    *,
    coupling: str = "sampled",
    dense: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The exact solution of ``module``'s ODE (held input, t_k = k, from 0), in numpy and scipy.

    Layer l follows ds_l/dt = Phi_l(s_l, u_l) - s_l with x held at x_k on (k - 1, k] and
    u_l = x for l = 0; for l > 0, u_l is the hidden part of s_{l-1} at t_k (``"sampled"``: the
    layer below's sample, held) or at every instant (``"continuous"``: one joint ODE). Each
    interval is integrated by ``solve_ivp`` (DOP853, rtol = atol = 1e-13).

    Arguments:
        name: a key of ``MODULES``.
        module: the torch.nn module (its weights are read, never called).
        x: (T, batch, input) the samples.
        coupling: ``"sampled"`` or ``"continuous"``, as in ``rnnode.ODERNN``.
        dense: points per interval of the dense top-layer curve (0: none).

    Returns:
        ``(states, curve)``: states (layers, T + 1, batch, state) at t_0..t_T; curve
        (T * dense + 1, batch, state) of the top layer on a uniform grid (None when ``dense``
        is 0).
    """
    hidden, batch, num_layers = module.hidden_size, x.shape[1], module.num_layers
    phis = [_cell_map(name, _layer_weights(module, l), hidden) for l in range(num_layers)]
    # The layers solved together: all at once (continuous) or one after another (sampled).
    groups = [phis] if coupling == "continuous" else [[phi] for phi in phis]
    drive, states, pieces = x, [], []
    for group in groups:
        s = np.zeros((len(group), batch, _parts(name) * hidden))
        traj = [s]
        for k, u in enumerate(drive):

            def rate(_t, y, u=u, group=group):
                y = y.reshape(len(group), batch, -1)
                out, below = np.empty_like(y), u
                for i, phi in enumerate(group):
                    out[i] = phi(y[i], below) - y[i]
                    below = y[i][:, :hidden]
                return out.ravel()

            sol = _solve_interval(rate, k, s, bool(dense))
            if dense and group is groups[-1]:
                grid = np.linspace(k, k + 1, dense + 1)[:-1]
                pieces.append(sol.sol(grid).T.reshape(dense, len(group), batch, -1)[:, -1])
            s = sol.y[:, -1].reshape(len(group), batch, -1)
            traj.append(s)
        states.append(np.stack(traj, axis=1))
        drive = states[-1][-1, 1:, :, :hidden]
    stacked = np.concatenate(states)
    curve = np.concatenate(pieces + [stacked[-1, -1:]]) if dense else None
    return stacked, curve


# -- one cell: bridge, reference check, convergence -------------------------------------------


def torch_module(name: str, cfg: dict[str, Any], seed: int) -> tuple[nn.RNNBase, torch.Tensor]:
    """The float64 torch.nn module ``name`` of ``cfg``'s sizes and an input (T, batch, input),
    both drawn from torch's generator seeded with ``seed``."""
    cls, extra = MODULES[name]
    torch.manual_seed(seed)
    module = cls(cfg["input_size"], cfg["hidden_size"], num_layers=cfg["num_layers"], **extra)
    module = module.double()
    x = torch.randn(cfg["length"], cfg["batch"], cfg["input_size"], dtype=torch.float64)
    return module, x


def _max_abs(a, b) -> float:
    if isinstance(a, tuple):
        return max(_max_abs(p, q) for p, q in zip(a, b, strict=True))
    return float((a - b).abs().max())


def cell_point(point: dict[str, Any]) -> dict[str, Any]:
    """Every number of one cell: bridge error, reference check and the errors of each method.

    Arguments:
        point: ``{"cell": a key of MODULES, "quick": bool, "seed": int}``.

    Returns:
        ``{"bridge_error", "reference_check_error", "errors": {coupling: {method: [error per
        step]}}, "curve": {...}}``; ``errors`` and ``curve`` only for the cells in ``SMOOTH``.
    """
    name, cfg = point["cell"], settings(point["quick"])
    module, x = torch_module(name, cfg, point["seed"])
    model = rnnode.from_torch(module)
    with torch.no_grad():
        discrete = module(x)
        numpy_rnn = discrete_map(name, module, x.numpy())
        result: dict[str, Any] = {
            "bridge_error": _max_abs(discrete, model(x)),
            # The numpy maps against torch.nn itself: the reference's cells are torch's cells,
            # so the limit below is the limit of these very RNNs.
            "reference_check_error": float(
                np.abs(numpy_rnn[-1, 1:, :, : cfg["hidden_size"]] - discrete[0].numpy()).max()
            ),
        }
        if name not in SMOOTH:
            return result
        result["errors"] = {}
        result["curve"] = {
            "t": np.linspace(0, cfg["length"], cfg["length"] * _DENSE + 1),
            "discrete": discrete[0][:, 0, 0].numpy(),
        }
        for coupling in rnnode.COUPLINGS:
            exact, curve = reference(name, module, x.numpy(), coupling=coupling, dense=_DENSE)
            assert curve is not None  # dense output asked for
            result["errors"][coupling] = {
                method: [_state_error(model, x, coupling, method, h, exact) for h in steps]
                for method, steps in cfg["steps"].items()
            }
            result["curve"][coupling] = curve[:, 0, 0]
    return result


_DENSE = 16  # points per sample interval of the plotted continuous-time curves


def _state_error(
    model: rnnode.ODERNN, x: torch.Tensor, coupling: str, method: str, h: float, exact
) -> float:
    """max |state - exact| over layers, sample times, sequences and units, at fixed step h.

    The steps are fixed by the study, so the step budget is exactly what they take (the default
    budget, 100 steps per sample interval, would refuse the smallest Euler steps)."""
    budget = math.ceil(x.shape[0] / h)
    solution = model.solve(
        x, method=method, step_size=h, coupling=coupling, options={"max_num_steps": budget}
    )
    return float(np.abs(solution.states[:, 0].detach().numpy() - exact).max())  # forward only


def fitted_order(steps: list[float], errors: list[float]) -> float:
    """Slope of the least-squares line through (log h, log error): the observed order."""
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


# -- the study --------------------------------------------------------------------------------


def run(ctx: Context) -> dict[str, Any]:
    """The study: one sweep point per torch.nn cell, then the order fits, claims and figures.

    Returns:
        ``{"settings", "bridge_max_abs_error": {cell: error}, "reference_check_max_abs_error":
        {cell: error}, "convergence": {cell: {method: {"steps", "errors", "order"}}},
        "orders": {method: {cell: order}}}``.
    """
    cfg = settings(ctx.quick)
    points = [{"cell": name, "quick": ctx.quick, "seed": ctx.seed} for name in MODULES]
    results = dict(zip(MODULES, ctx.sweep(cell_point, points, name="cells"), strict=True))

    bridge = {name: r["bridge_error"] for name, r in results.items()}
    check = {name: r["reference_check_error"] for name, r in results.items()}
    convergence = {
        coupling: {
            name: {
                method: {
                    "steps": steps,
                    "errors": results[name]["errors"][coupling][method],
                    "order": fitted_order(steps, results[name]["errors"][coupling][method]),
                }
                for method, steps in cfg["steps"].items()
            }
            for name in SMOOTH
        }
        for coupling in rnnode.COUPLINGS
    }
    orders = {
        coupling: {m: {n: by_cell[n][m]["order"] for n in SMOOTH} for m in ORDERS}
        for coupling, by_cell in convergence.items()
    }

    ctx.verify(
        "bridge_exact",
        max(bridge.values()) < BRIDGE_TOL,
        f"torch.nn.RNN (tanh, relu), GRU and LSTM equal the step-1 Euler solution of their ODE: "
        f"max |difference| < {BRIDGE_TOL:g} in float64",
        value=max(bridge.values()),
        bound=BRIDGE_TOL,
    )
    ctx.verify(
        "reference_is_the_rnn",
        max(check.values()) < BRIDGE_TOL,
        f"the numpy cell maps of the scipy reference, stepped by Euler with step 1, reproduce "
        f"torch.nn to {BRIDGE_TOL:g}",
        value=max(check.values()),
        bound=BRIDGE_TOL,
    )
    for method, p in ORDERS.items():
        worst = max(abs(o - p) for by_method in orders.values() for o in by_method[method].values())
        ctx.verify(
            f"{method}_order",
            worst <= BANDS[method],
            f"the fitted order of {method} is {p} +- {BANDS[method]} for every cell and coupling "
            "(value: the largest |fitted - classical order|)",
            value=worst,
            bound=BANDS[method],
        )
    ctx.verify(
        "converges",
        all(
            np.all(np.diff(c[m]["errors"]) < 0) and c[m]["errors"][-1] > 100 * REFERENCE_TOL
            for by_cell in convergence.values()
            for c in by_cell.values()
            for m in ORDERS
        ),
        "the error falls at every halving of the step, for every cell, coupling and method, "
        f"and stays far above the reference's tolerance ({100 * REFERENCE_TOL:g})",
    )

    ctx.figure(
        "convergence",
        _convergence_figure(convergence),
        caption="Maximum absolute error of every layer's state at the sample times against the "
        "scipy reference, as the step shrinks, for each coupling of the layers; dashed: "
        "slopes 1, 2 and 4.",
        numbers={"orders": orders},
    )
    ctx.figure(
        "trajectory",
        _trajectory_figure({n: results[n]["curve"] for n in SMOOTH}),
        caption="First unit of the top layer, first sequence: the discrete torch.nn module at the "
        "sample times (dots, = Euler with step 1) and the continuous-time solutions of the same "
        "weights, layers coupled through held samples or at every instant (lines).",
        numbers={"bridge_max_abs_error": bridge},
    )
    return {
        "settings": cfg,
        "bridge_max_abs_error": bridge,
        "reference_check_max_abs_error": check,
        "convergence": convergence,
        "orders": orders,
    }


def _convergence_figure(convergence: dict[str, dict[str, dict[str, Any]]]) -> Figure:
    """Rows: couplings; columns: cells; error against step per method, log-log."""
    rows, cols = len(convergence), len(next(iter(convergence.values())))
    fig = Figure(figsize=(4 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    for row, (coupling, by_cell) in zip(axes, convergence.items(), strict=True):
        for ax, (name, by_method) in zip(row, by_cell.items(), strict=True):
            all_steps = sorted({h for c in by_method.values() for h in c["steps"]})
            for method, c in by_method.items():
                steps, errs = np.array(c["steps"]), np.array(c["errors"])
                p = ORDERS[method]
                label = f"{method}: fit {c['order']:.2f} ({p})"
                line = ax.loglog(steps, errs, "o-", label=label)[0]
                # Reference slope p through the smallest step's error.
                ref = errs[-1] * (steps / steps[-1]) ** p
                ax.loglog(steps, ref, "--", color=line.get_color(), alpha=0.5, linewidth=3)
            # Steps are powers of two: label them so, without a crowd of minor labels.
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(all_steps, labels=[f"1/{round(1 / h)}" for h in all_steps])
            ax.set_title(f"{name}, {coupling} coupling")
            ax.set_xlabel("step h")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, title="order (dashed: classical)", title_fontsize=7)
        row[0].set_ylabel("max |state - reference|")
    return fig


def _trajectory_figure(curves: dict[str, dict[str, Any]]) -> Figure:
    """One panel per cell: the ODE's top layer per coupling, and the discrete RNN's outputs."""
    fig = Figure(figsize=(4 * len(curves), 3.2), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, c) in zip(axes, curves.items(), strict=True):
        for coupling in rnnode.COUPLINGS:
            ax.plot(c["t"], c[coupling], label=f"ODE, {coupling} coupling")
        k = np.arange(1, len(c["discrete"]) + 1)
        ax.plot(k, c["discrete"], "o", color="k", label="torch.nn (Euler, h = 1)")
        ax.set_title(name)
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("h (top layer, unit 0)")
    return fig
