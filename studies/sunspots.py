"""Sunspots: one-year-ahead forecasts of yearly sunspot numbers, ODERNN against persistence and AR.

Real data: yearly mean sunspot numbers 1700-2008 bundled with statsmodels, through
``rnnode.training.sunspots_task`` (windows of ``WINDOW`` years predict the next year; split in
time, the
last 20 % of the years are test targets; normalised with the training part's mean and standard
deviation). Three forecasters of the same test years:

- persistence: next year = this year (the naive baseline);
- AR(p): z_{s} = c_0 + sum_{j=1..p} c_j z_{s-j}, fitted by least squares (``numpy.linalg.lstsq``)
  on the training windows, the order p in 1..WINDOW chosen by Akaike's criterion
  n log(RSS / n) + 2 (p + 1) on the training windows (no test data in the choice);
- ODERNN: a GRU stack in continuous time with a linear readout of its last state
  (``rnnode.training.SequenceModel``), trained by ``rnnode.training.train`` for several seeds.

Test RMSE is reported in normalised units and in sunspot numbers (times the training standard
deviation).

Claims: the ODERNN beats persistence for every seed; so does AR(p); and the ODERNN's mean test
RMSE over the seeds is at most ``AR_BAND`` times AR(p)'s (a nonlinear model with no tuning on
test data is comparable to the classical linear model on 227 training windows).

Figures: ``forecasts`` (test years: the series and the three forecasts, first seed) and ``rmse``
(test RMSE of each forecaster, ODERNN per seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode

from ._run import Context, settings_for, train_with
from ._stats import bootstrap_interval

#: Input window (years) of every forecaster.
WINDOW = 20
#: First year of statsmodels' yearly sunspot series.
FIRST_YEAR = 1700
#: Accepted ratio of the ODERNN's mean test RMSE to AR(p)'s.
AR_BAND = 1.15


#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "cell": "gru",
    "hidden_size": 16,
    "num_layers": 2,
    "steps": 300,
    "batch_size": 32,
    "lr": 1e-2,
    "seeds": 5,
}
QUICK = {"num_layers": 1, "steps": 100, "lr": 2e-2, "seeds": 2}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """sqrt(mean((prediction - target)^2))."""
    return float(np.sqrt(np.mean((np.asarray(prediction) - np.asarray(target)) ** 2)))


def persistence(x: torch.Tensor) -> np.ndarray:
    """The naive forecast: the window's last value. x (N, T, 1) -> (N,)."""
    return x[:, -1, 0].numpy()


def fit_ar(x: torch.Tensor, y: torch.Tensor, order: int) -> np.ndarray:
    """Least-squares AR(p) coefficients (c_0, c_1..c_p) of y_n = c_0 + sum_j c_j x_n[T - j].

    Arguments:
        x: (N, T, 1) windows, T >= order; y: (N, 1) next values.
        order: p.

    Returns:
        (p + 1,) the intercept, then the coefficients of lags 1..p.
    """
    return np.linalg.lstsq(_lags(x, order), y[:, 0].numpy(), rcond=None)[0]


def predict_ar(x: torch.Tensor, coefficients: np.ndarray) -> np.ndarray:
    """AR forecasts (N,) of windows x (N, T, 1) with ``fit_ar``'s coefficients."""
    return _lags(x, len(coefficients) - 1) @ coefficients


def _lags(x: torch.Tensor, order: int) -> np.ndarray:
    """Design matrix (N, p + 1): a column of ones, then lags 1..p (the last value first)."""
    if not 1 <= order <= x.shape[1]:
        raise ValueError(f"order: expected 1..{x.shape[1]} (the window), got {order!r}")
    window = x[:, :, 0].numpy()
    return np.column_stack([np.ones(len(window)), window[:, ::-1][:, :order]])


def aic_order(x: torch.Tensor, y: torch.Tensor, max_order: int) -> tuple[int, list[float]]:
    """The AR order p in 1..max_order with the lowest n log(RSS_p / n) + 2 (p + 1) on (x, y).

    Returns:
        ``(p, [criterion for p = 1..max_order])``.
    """
    n, criteria = len(y), []
    for order in range(1, max_order + 1):
        residual = predict_ar(x, fit_ar(x, y, order)) - y[:, 0].numpy()
        criteria.append(float(n * np.log(np.sum(residual**2) / n) + 2 * (order + 1)))
    return int(np.argmin(criteria)) + 1, criteria


def point(p: dict) -> dict[str, Any]:
    """One seed: train the ODERNN forecaster; its test RMSE and test forecasts."""
    cfg, seed = p["settings"], p["seed"]
    task = rnnode.training.sunspots_task(window=WINDOW)
    torch.manual_seed(seed)
    rnn = rnnode.ODERNN(task.input_size, cfg["hidden_size"], cfg["num_layers"], cell=cfg["cell"])
    model = rnnode.training.SequenceModel.for_task(rnn, task)
    metrics = train_with(model, task, cfg, seed)
    with torch.no_grad():
        forecast = model(task.x_test)[:, 0].numpy()
    return {
        "rmse": rmse(forecast, task.y_test[:, 0].numpy()),
        "forecast": forecast,
        "loss": metrics["history"]["loss"],
    }


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    task = rnnode.training.sunspots_task(window=WINDOW)
    target = task.y_test[:, 0].numpy()
    scale = task.normalization[1]

    order, criteria = aic_order(task.x_train, task.y_train, WINDOW)
    coefficients = fit_ar(task.x_train, task.y_train, order)
    forecasts = {
        "persistence": persistence(task.x_test),
        "ar": predict_ar(task.x_test, coefficients),
    }
    results = ctx.sweep(point, [{"settings": cfg, "seed": s} for s in seeds], name="seeds")
    forecasts["odernn"] = np.asarray(results[0]["forecast"])

    baseline = {name: rmse(forecasts[name], target) for name in ("persistence", "ar")}
    odernn = [r["rmse"] for r in results]
    summary = {
        "ar_order": order,
        "rmse_persistence": baseline["persistence"],
        "rmse_ar": baseline["ar"],
        "rmse_odernn": odernn,
        "mean_rmse_odernn": float(np.mean(odernn)),
        "ratio_odernn_to_ar": float(np.mean(odernn) / baseline["ar"]),
        "rmse_sunspot_numbers": {
            "persistence": baseline["persistence"] * scale,
            "ar": baseline["ar"] * scale,
            "odernn": float(np.mean(odernn)) * scale,
        },
    }

    ctx.finding_over_seeds(
        "odernn_beats_persistence",
        "the ODERNN's test RMSE is below persistence's (per-seed difference < 0)",
        np.asarray(odernn) - baseline["persistence"],
        comparison="<",
        bound=0.0,
        control=baseline["persistence"],
        control_label="persistence's test RMSE",
    )
    # AR is deterministic: its evidence is the spread over test years, a paired bootstrap of the
    # squared-error difference.
    gain = (forecasts["ar"] - target) ** 2 - (forecasts["persistence"] - target) ** 2
    ctx.finding(
        "ar_beats_persistence",
        f"the least-squares AR({order}) (order by AIC on the training windows) has a lower "
        "test mean squared error than persistence (mean over test years of the paired "
        "squared-error difference < 0)",
        value=float(gain.mean()),
        comparison="<",
        bound=0.0,
        interval=bootstrap_interval(gain),
        control=baseline["persistence"] ** 2,
        control_label="persistence's test MSE",
        seeds=1,
        test="paired bootstrap over test years",
    )
    ctx.finding_over_seeds(
        "odernn_comparable_to_ar",
        f"the ODERNN's test RMSE is at most {AR_BAND} times AR({order})'s (per-seed ratio)",
        np.asarray(odernn) / baseline["ar"],
        comparison="<=",
        bound=AR_BAND,
        control=1.0,
        control_label=f"AR({order}) (ratio 1)",
    )

    # Windows start at every year from WINDOW on (horizon 1): the series has WINDOW + N years.
    n = WINDOW + len(task.y_train) + len(target)
    years = FIRST_YEAR + np.arange(n - len(target), n)
    ctx.figure(
        "forecasts",
        _forecast_figure(years, target, forecasts, task.normalization, order),
        caption=f"Test years: yearly sunspot numbers and one-year-ahead forecasts by persistence, "
        f"AR({order}) and the ODERNN (seed {seeds[0]}).",
        numbers=summary["rmse_sunspot_numbers"],
    )
    ctx.figure(
        "rmse",
        _rmse_figure(seeds, baseline, odernn, order),
        caption="Test RMSE (normalised units) of persistence, AR and the ODERNN for every seed.",
        numbers={k: v for k, v in summary.items() if k != "rmse_sunspot_numbers"},
    )
    return {
        "settings": cfg,
        "seeds": seeds,
        "window": WINDOW,
        "aic": criteria,
        "ar_coefficients": coefficients,
        "test_target": target,
        "forecasts": forecasts,
        **summary,
    }


def _forecast_figure(years, target, forecasts, normalization, order) -> Figure:
    offset, scale = normalization
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(years, offset + scale * target, "k-", linewidth=2, label="observed")
    labels = {"persistence": "persistence", "ar": f"AR({order})", "odernn": "ODERNN"}
    for name, forecast in forecasts.items():
        ax.plot(years, offset + scale * forecast, ".-", linewidth=1, label=labels[name])
    ax.set_xlabel("year")
    ax.set_ylabel("sunspot number")
    ax.legend(fontsize=8)
    return fig


def _rmse_figure(seeds, baseline, odernn, order) -> Figure:
    fig = Figure(figsize=(5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.axhline(baseline["persistence"], color="C0", linestyle="--", label="persistence")
    ax.axhline(baseline["ar"], color="C1", linestyle="--", label=f"AR({order})")
    ax.plot(seeds, odernn, "o", color="C2", label="ODERNN")
    ax.set_xticks(seeds)
    ax.set_xlabel("seed")
    ax.set_ylabel("test RMSE (normalised)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig
