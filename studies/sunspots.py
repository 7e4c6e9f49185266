"""Forecasts honestly scored: sunspots and Mauna Loa CO2, ODERNN against persistence, statsmodels.

Two real series bundled with statsmodels, one step ahead, split in time (the last 20 % of the
values are test targets), normalised by the training part's mean and standard deviation
(``rnnode.training.forecast_task``):

- yearly sunspot numbers 1700-2008, windows of ``WINDOWS["sunspots"]`` = 20 years;
- monthly Mauna Loa CO2 1958-2001, windows of ``WINDOWS["co2"]`` = 24 months. Its test years lie
  above every training value (the trend), out of reach of a model that outputs levels.

Forecasters of the same test targets:

- persistence: next value = this value (the naive baseline);
- statsmodels: for sunspots AR(p), the order p in 1..20 by Akaike's criterion on the training
  windows (``fit_ar``/``aic_order``: least squares, equal to statsmodels' ``AutoReg`` and
  ``ar_select_order``, checked in tests); for the seasonal CO2 the seasonal ARIMA
  (1, 1, 1) x (0, 1, 1)_12 (``statsmodels.tsa.statespace.SARIMAX``, orders fixed before the data:
  the classic model for this series), fitted on the training part, its one-step forecasts of the
  test months made with the fitted parameters from the observed past;
- ODERNN: a stacked GRU in continuous time (2 layers, in the quick run too) with a linear readout
  (``rnnode.training.SequenceModel``), trained for several seeds on *increments*: its input is the
  window minus its last value and its target the next value minus the last, both divided by the
  training increments' standard deviation, and the forecast is the last value plus the prediction.
  So every target, in training or test, lies in the same range, whatever the trend.

Test RMSE is reported in normalised units and in the series' units.

Findings per series. Every seed forecasts the same test targets (one fixed split), so each finding
is scored per test target and the interval counts test-set sampling error: the ODERNN's scores are
(seeds, targets) with seeds and targets crossed random factors (``finding_over_seeds`` with
per-item scores, Student-t with Satterthwaite df); the deterministic statsmodels baseline's are
(targets,), a Student-t over test targets (consecutive targets' errors are correlated, which no
test here models). Rules fixed before the data; values are mean squared-error differences
(normalised units):

- ``<series>_odernn_beats_persistence``: e_ODERNN^2 - e_persistence^2 < 0;
- ``<series>_baseline_beats_persistence``: e_baseline^2 - e_persistence^2 < 0;
- ``<series>_odernn_comparable``: e_ODERNN^2 - ``BAND``^2 e_baseline^2 <= 0, which is the ODERNN's
  RMSE at most ``BAND`` times the baseline's (control: the ratio of the RMSEs).

Smallest effect that matters (``EFFECT``, decided before any run of this design): a tenth of
persistence's test MSE in the earlier release (RMSE 0.98 sunspots, 0.098 CO2): 0.1 and 0.001.
Full run: 20 seeds, 1.3 core-minutes (results in studies/README.md, beside the earlier
release's 5-seed numbers).

Figures: ``forecasts`` (test part of each series with the three forecasts, first seed) and
``rmse`` (test RMSE of each forecaster, ODERNN per seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

import rnnode
from rnnode.training._tasks import co2_series

from ._figures import rmse_by_seed
from ._run import Context, settings_for, train_with
from ._stats import mean_test

#: Input window of every forecaster, per series.
WINDOWS = {"sunspots": 20, "co2": 24}
#: Kept for callers of the sunspots-only study.
WINDOW = WINDOWS["sunspots"]
#: First year of statsmodels' yearly sunspot series.
FIRST_YEAR = 1700
#: Accepted ratio of the ODERNN's test RMSE to the statsmodels baseline's.
BAND = 1.15
AR_BAND = BAND
#: Seasonal ARIMA orders of the CO2 baseline, fixed before the data.
SARIMA_ORDER = (1, 1, 1)
SARIMA_SEASONAL = (0, 1, 1, 12)
SERIES = ("sunspots", "co2")
#: Smallest effect that matters per series: a difference of mean squared errors (normalised).
EFFECT = {"sunspots": 0.1, "co2": 0.001}

#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "cell": "gru",
    "hidden_size": 16,
    "num_layers": 2,
    "steps": 300,
    "batch_size": 32,
    "lr": 1e-2,
    "seeds": 20,  # one seed (both series) costs about 1.8 core-minutes: 20 seeds (issue 19)
    "sarima_fit_months": None,  # SARIMA's parameters from every training month
}
#: The quick run fits SARIMA on the last 20 training years (seconds instead of half a minute).
QUICK = {"steps": 100, "lr": 2e-2, "seeds": 2, "sarima_fit_months": 240}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def task_of(series: str) -> rnnode.training.Task:
    """The one-step forecasting task of ``series`` ("sunspots" or "co2"), normalised."""
    if series == "sunspots":
        return rnnode.training.sunspots_task(window=WINDOWS[series])
    if series == "co2":
        return rnnode.training.co2_task(window=WINDOWS[series])
    raise ValueError(f"series: expected one of {SERIES}, got {series!r}")


def increments(task: rnnode.training.Task) -> tuple[rnnode.training.Task, float]:
    """The task on increments: x - x_last and y - x_last, divided by the training increments'
    standard deviation d. Returns the new task and d; a forecast is x_last + d * prediction."""
    d = float((task.y_train[:, 0] - task.x_train[:, -1, 0]).std())

    def shift(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last = x[:, -1:, :]
        return (x - last) / d, (y - last[:, :, 0]) / d

    x_train, y_train = shift(task.x_train, task.y_train)
    x_test, y_test = shift(task.x_test, task.y_test)
    shifted = rnnode.training.Task(
        f"{task.name}_increments", task.kind, x_train, y_train, x_test, y_test, output_size=1
    )
    return shifted, d


def sarima_forecasts(
    train: np.ndarray, full: np.ndarray, fit_last: int | None = None
) -> np.ndarray:
    """One-step forecasts of ``full[len(train):]`` by the seasonal ARIMA fitted on ``train``.

    The parameters are fitted once on the training part (statsmodels ``SARIMAX``, orders
    ``SARIMA_ORDER`` x ``SARIMA_SEASONAL``; on its last ``fit_last`` values if given); each
    forecast uses every observed value before it.
    """
    import warnings

    from statsmodels.tsa.statespace.sarimax import SARIMAX

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the optimiser
        part = train if fit_last is None else train[-fit_last:]
        fitted = SARIMAX(part, order=SARIMA_ORDER, seasonal_order=SARIMA_SEASONAL).fit(disp=False)
        every = fitted.apply(full)
    return np.asarray(every.predict(start=len(train), end=len(full) - 1))


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
    """One seed on one series: train the ODERNN on increments; its test RMSE and forecasts."""
    cfg, seed = p["settings"], p["seed"]
    task = task_of(p["series"])
    shifted, d = increments(task)
    torch.manual_seed(seed)
    rnn = rnnode.ODERNN(1, cfg["hidden_size"], cfg["num_layers"], cell=cfg["cell"])
    model = rnnode.training.SequenceModel.for_task(rnn, shifted)
    metrics = train_with(model, shifted, cfg, seed)
    with torch.no_grad():
        forecast = (task.x_test[:, -1, 0] + d * model(shifted.x_test)[:, 0]).numpy()
    return {
        "rmse": rmse(forecast, task.y_test[:, 0].numpy()),
        "forecast": forecast,
        "loss": metrics["history"]["loss"],
    }


def _baseline(
    series: str, task: rnnode.training.Task, cfg: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The statsmodels forecaster's test forecasts (normalised) and what describes it."""
    if series == "sunspots":
        order, criteria = aic_order(task.x_train, task.y_train, WINDOWS[series])
        coefficients = fit_ar(task.x_train, task.y_train, order)
        label = f"AR({order})"
        return predict_ar(task.x_test, coefficients), {
            "label": label,
            "ar_order": order,
            "aic": criteria,
            "ar_coefficients": coefficients,
        }
    assert task.normalization is not None  # the forecasting tasks are normalised
    offset, scale = task.normalization
    raw = co2_series()
    split = len(raw) - len(task.y_test)
    z = (raw - offset) / scale
    label = f"SARIMA{SARIMA_ORDER}x{SARIMA_SEASONAL}"
    return sarima_forecasts(z[:split], z, cfg["sarima_fit_months"]), {"label": label}


def _score(ctx: Context, series: str, cfg: dict, seeds: list[int]) -> dict[str, Any]:
    task = task_of(series)
    target = task.y_test[:, 0].numpy()
    assert task.normalization is not None  # the forecasting tasks are normalised
    offset, scale = task.normalization
    forecasts = {"persistence": persistence(task.x_test)}
    forecasts["baseline"], about = _baseline(series, task, cfg)
    points = [{"series": series, "settings": cfg, "seed": s} for s in seeds]
    results = ctx.sweep(point, points, name=f"seeds_{series}")
    forecasts["odernn"] = np.asarray(results[0]["forecast"])
    base = {name: rmse(forecasts[name], target) for name in ("persistence", "baseline")}
    odernn = np.array([r["rmse"] for r in results])
    label = about["label"]

    def squared(forecast) -> np.ndarray:
        return (np.asarray(forecast, dtype=np.float64) - target) ** 2

    per_seed = np.array([squared(r["forecast"]) for r in results])  # (seeds, targets)
    sq = {name: squared(forecasts[name]) for name in ("persistence", "baseline")}
    ctx.finding_over_seeds(
        f"{series}_odernn_beats_persistence",
        f"{series}: the ODERNN forecasts better than persistence (squared-error difference per "
        "seed and test target < 0)",
        per_seed - sq["persistence"],
        comparison="<",
        bound=0.0,
        control=float(sq["persistence"].mean()),
        control_label="persistence's test MSE",
        effect=EFFECT[series],
    )
    gain = sq["baseline"] - sq["persistence"]
    tested = mean_test(gain, 0.0)
    ctx.finding(
        f"{series}_baseline_beats_persistence",
        f"{series}: statsmodels' {label} forecasts better than persistence (squared-error "
        "difference per test target < 0)",
        value=tested.value,
        comparison="<",
        bound=0.0,
        interval=tested.interval,
        control=float(sq["persistence"].mean()),
        control_label="persistence's test MSE",
        seeds=1,
        test=f"Student-t over {gain.size} test targets (one deterministic fit)",
        p_value=tested.p_value,
        mde=tested.mde,
        effect=EFFECT[series],
        same_test=True,
    )
    ctx.finding_over_seeds(
        f"{series}_odernn_comparable",
        f"{series}: the ODERNN's test RMSE is at most {BAND} times {label}'s (e_ODERNN^2 - "
        f"{BAND}^2 e_baseline^2 per seed and test target <= 0)",
        per_seed - BAND**2 * sq["baseline"],
        comparison="<=",
        bound=0.0,
        control=float(odernn.mean() / base["baseline"]),
        control_label=f"mean ratio of the ODERNN's RMSE to {label}'s",
        effect=EFFECT[series],
    )
    return {
        **about,
        "window": WINDOWS[series],
        "normalization": [offset, scale],
        "rmse_persistence": base["persistence"],
        "rmse_baseline": base["baseline"],
        "rmse_odernn": odernn,
        "mean_rmse_odernn": float(odernn.mean()),
        "ratio_odernn_to_baseline": odernn / base["baseline"],
        "rmse_in_units": {
            "persistence": base["persistence"] * scale,
            "baseline": base["baseline"] * scale,
            "odernn": float(odernn.mean()) * scale,
        },
        "test_target": target,
        "forecasts": forecasts,
        "forecast_odernn_per_seed": [r["forecast"] for r in results],
    }


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    scored = {series: _score(ctx, series, cfg, seeds) for series in SERIES}
    ctx.figure(
        "forecasts",
        _forecast_figure(scored),
        caption=f"Test part of each series (observed, black) with one-step forecasts by "
        f"persistence, the statsmodels baseline and the ODERNN (seed {seeds[0]}).",
        numbers={s: r["rmse_in_units"] for s, r in scored.items()},
    )
    ctx.figure(
        "rmse",
        _rmse_figure(seeds, scored),
        caption="Test RMSE (normalised units) of the ODERNN for every seed (markers) and of "
        "persistence and the statsmodels baseline (fitted once: dashed lines), per series.",
        numbers={
            s: {k: r[k] for k in ("rmse_persistence", "rmse_baseline", "mean_rmse_odernn")}
            for s, r in scored.items()
        },
    )
    return {"settings": cfg, "seeds": seeds, **scored}


_UNITS = {"sunspots": "sunspot number", "co2": "CO2 (ppm)"}


def _forecast_figure(scored: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(6 * len(scored), 3.4), layout="constrained")
    axes = fig.subplots(1, len(scored))
    for ax, (series, r) in zip(axes, scored.items(), strict=True):
        offset, scale = r["normalization"]
        k = np.arange(len(r["test_target"]))
        ax.plot(
            k, offset + scale * np.asarray(r["test_target"]), "k-", linewidth=2, label="observed"
        )
        labels = {
            "persistence": "persistence (last value)",
            "baseline": f"statsmodels {r['label']}",
            "odernn": "ODERNN (2-layer GRU)",
        }
        for name, forecast in r["forecasts"].items():
            ax.plot(k, offset + scale * np.asarray(forecast), ".-", linewidth=1, label=labels[name])
        ax.set_title(
            {"sunspots": "Yearly sunspot numbers", "co2": "Monthly Mauna Loa CO2"}[series]
            + ": one-step forecasts of the test part",
            fontsize="medium",
        )
        ax.set_xlabel("test step (years for sunspots, months for CO2)")
        ax.set_ylabel(_UNITS[series])
        ax.legend(fontsize=7)
    return fig


def _rmse_figure(seeds: list[int], scored: dict[str, dict[str, Any]]) -> Figure:
    return rmse_by_seed(
        seeds,
        {
            series: [
                ("persistence (dashed: fitted once)", r["rmse_persistence"]),
                (f"statsmodels {r['label']} (dashed: fitted once)", r["rmse_baseline"]),
                ("ODERNN, one marker per seed", r["rmse_odernn"]),
            ]
            for series, r in scored.items()
        },
    )
