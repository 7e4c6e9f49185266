"""Irregularly sampled real data: a continuous-time GRU given the times against RNN-delta-t.

Sunspots (yearly, 1700-2008) and Mauna Loa CO2 (monthly, 1958-2001), both bundled with
statsmodels, are cut into windows of ``WINDOWS[series]`` consecutive values; in every window only
a random share ``keep`` of the values is kept (drawn per window and per seed), so each sequence
has its own observation times t_1 < ... < t_n (n = round(keep W), in the series' own unit: years
or months, counted from the window's start). Two regimes (``keep`` = 0.5 and 0.15): half of the
samples kept is mild irregularity; the sparse regime (15%: 5 of 32 years, 5 of 36 months) is
where continuous-time models are expected to differ from discrete ones (Rubanova et al. 2019
subsample to 10-50%).

Target (chosen before any run): the value at a fixed horizon, the first value after the window
(time W), forecast from the window's kept observations. The forecast time is known and the same
for every sequence; the gap from the last kept observation to it is 1 to several units, so every
forecast has to bridge an irregular gap. The alternative, the next *observed* value, would make
the target set and its horizon depend on the mask: each seed would score other years, and the
horizon's difficulty would mix into the spread over seeds. With a fixed horizon every model and
every seed forecasts the same targets, the held-out ones being those in the last
``TEST_FRACTION`` of the series (inputs may reach back into the training part, as a forecast
made at the split would); windows whose targets lie before are the training set.

Both models see the same numbers: the kept values minus the last kept value, divided by the
standard deviation d of the training targets' increments over it, and predict the target's
increment (so every target, in training or test, lies in one range, whatever CO2's trend); the
forecast is the last kept value plus d times the prediction. Values are normalised by the
training part's mean and standard deviation; test RMSE is reported in these units (and in the
series' units in the figure's numbers).

The models (one GRU layer of ``hidden_size`` units and a linear readout each; about 930 and 980
parameters, counted in the metrics):

- ``continuous``: ``rnnode.ODERNN`` with ``cell="gru"`` solved in continuous time on each
  sequence's own times (``t`` of shape (batch, n + 2) = (t_1 - 1, t_1, ..., t_n, W): one batched
  solve), ``interpolation="causal"`` (the last observation carried forward: x_k drives
  [t_k, t_{k+1}), so nothing acts before it is observed), time constant ``tau`` and RK4 with
  steps of at most ``step_size`` (in the series' unit). The readout reads the state at the
  forecast time W, reached by integrating over the last gap with the last observation held.
  (This is the continuous-time GRU with held input, not the ODE-RNN of Rubanova et al., which
  jumps at observations and flows autonomously between them.)
- ``delta_t``: the RNN-delta-t baseline of Rubanova, Chen & Duvenaud (2019): a discrete GRU
  (``rnnode.ODERNN`` with the default solve, Euler step 1 with held input: ``torch.nn.GRU``,
  checked by the verification ``delta_t_is_torch_gru``) whose input at step k is the value and
  the gap t_k - t_{k-1} since the previous observation (t_0 = t_1 - 1); its last step gets the
  gap from the last observation to the forecast time and the placeholder value 0 (the same
  placeholder the continuous model gets at W, where the causal path never reads it).

Same data, masks, batches (``rnnode.training.train``: Adam, ``steps`` steps, ``batch_size``,
``lr``) and seed per pair. Persistence (the last kept value) is scored on the same targets.
Each training's loss curve is kept; ``loss_change`` is the relative change of the mean training
loss over the last tenth of the steps against the tenth before (near 0: the curve is flat).

Findings per series and regime (``<series>_keep<percent>_...``; rules and effects fixed before
any run of this design). Every seed forecasts the same test targets, so each is scored per test
target: the samples are (seeds, targets) differences of squared errors (normalised units),
paired (same masks, same targets), and the interval counts seeds and test targets as crossed
random factors (``finding_over_seeds`` with per-item scores), so test-set sampling error enters:

- ``..._continuous_beats_delta_t``: squared error of the continuous model minus the delta-t
  model's < 0; control: the delta-t model's mean squared error.
- ``..._continuous_beats_persistence``, ``..._delta_t_beats_persistence``: minus persistence's
  squared error < 0; control: persistence's mean squared error.

Smallest effect that matters (``EFFECT``, decided before any run): a tenth of persistence's mean
squared error in the earlier release (RMSE 0.98 sunspots, 0.098 CO2, normalised): 0.1 for
sunspots, 0.001 for CO2. An inconclusive comparison with an MDE below it reads "no effect larger
than MDE". 20 seeds; the full run took 19.4 core-minutes (results in
studies/README.md).

Earlier release (0.1; half kept only, 5 seeds, per-seed RMSE with percentile bootstrap):
continuous minus delta-t inconclusive in both series; both beat persistence.

Figures: ``forecasts`` (the test part of each series with every model's forecast, first seed,
one test window's kept observations marked, per regime) and ``rmse`` (test RMSE per seed of both
models and persistence, per series and regime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

import rnnode
from rnnode.training._losses import task_loss
from rnnode.training._tasks import co2_series, sunspots_series

from ._figures import rmse_by_seed
from ._run import Context, settings_for, train_with

SERIES = ("sunspots", "co2")
#: Window length W per series, in the series' unit (years, months).
WINDOWS = {"sunspots": 32, "co2": 36}
#: Default share of each window's values kept (the full setting's ``keep`` lists the regimes).
KEEP = 0.5
#: Smallest effect that matters per series: a difference of mean squared errors (normalised).
EFFECT = {"sunspots": 0.1, "co2": 0.001}
#: Share of the series (from its end) whose values are test targets.
TEST_FRACTION = 0.2
MODELS = ("continuous", "delta_t")
#: Time of the first value of each series, in years, and its unit in years (for the figure).
START = {"sunspots": (1700.0, 1.0), "co2": (1958.0 + 2 / 12, 1 / 12)}

#: The full setting; ``QUICK`` lists what the quick setting changes.
FULL = {
    "series": list(SERIES),
    "hidden_size": 16,
    "tau": 2.0,
    "method": "rk4",
    "step_size": 2.0,
    "steps": 300,
    "batch_size": 32,
    "lr": 1e-2,
    "keep": [0.5, 0.15],
    # issue 19: 20 seeds where one costs under two core-minutes (one seed, both series and
    # regimes: 80 s of one core, measured; the full run about 27 core-minutes)
    "seeds": 20,
}
QUICK = {"series": ["sunspots"], "steps": 8, "step_size": 4.0, "seeds": 2}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes, solver, training length and seeds: ``FULL``, or with ``QUICK``'s changes."""
    return settings_for(quick, FULL, QUICK)


def series_values(series: str) -> np.ndarray:
    """The raw series: yearly sunspot numbers or monthly CO2 (ppm)."""
    if series == "sunspots":
        return sunspots_series()
    if series == "co2":
        return co2_series()
    raise ValueError(f"series: expected one of {SERIES}, got {series!r}")


def kept_count(window: int, keep: float) -> int:
    """How many of a window's values are kept: round(keep * window), at least 2."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep: expected a share in (0, 1], got {keep!r}")
    return max(2, int(round(window * keep)))


def regime(keep: float) -> str:
    """A regime's tag in claim names: 0.15 -> "keep15"."""
    return f"keep{round(100 * keep):d}"


def observation_times(num_windows: int, window: int, seed: int, keep: float = KEEP) -> np.ndarray:
    """Which values each window keeps: (num_windows, ``kept_count(window, keep)``) strictly
    increasing offsets in 0..window - 1, drawn per window (``numpy.random.default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    kept = kept_count(window, keep)
    return np.stack([np.sort(rng.choice(window, kept, replace=False)) for _ in range(num_windows)])


def model_inputs(values: np.ndarray, times: np.ndarray, horizon: float) -> np.ndarray:
    """Both models' input: (N, n + 1, 3) channels value, time, gap.

    Arguments:
        values: (N, n) the kept values (already as the models see them).
        times: (N, n) their times, strictly increasing per row.
        horizon: the forecast time (after every kept time).

    Returns:
        Row k < n: (values[k], times[k], times[k] - times[k - 1]) with times[-1] := times[0] - 1
        (gap 1 before the first observation); row n: (0, horizon, horizon - times[n - 1]).
    """
    N = len(values)
    t = np.concatenate([times, np.full((N, 1), float(horizon))], axis=1)
    gaps = np.diff(np.concatenate([t[:, :1] - 1.0, t], axis=1), axis=1)
    x = np.concatenate([values, np.zeros((N, 1))], axis=1)
    return np.stack([x, t, gaps], axis=-1)


@dataclass
class IrregularData:
    """One series, windowed and masked for one seed.

    Attributes:
        task: the ``rnnode.training.Task``: x (N, n + 1, 3) (``model_inputs``), y (N, 1) the
            target's increment over the last kept value, divided by ``d``.
        d: the training increments' standard deviation.
        last_test: (N_test,) last kept value of each test window (normalised units).
        target_test: (N_test,) the test targets (normalised units).
        target_index: (N_test,) index of each test target in the series.
        times_test: (N_test, n) kept offsets of each test window.
        normalization: (mean, std) of the training part.
    """

    task: rnnode.training.Task
    d: float
    last_test: np.ndarray
    target_test: np.ndarray
    target_index: np.ndarray
    times_test: np.ndarray
    normalization: tuple[float, float]


def irregular_data(
    series: str, seed: int, raw: np.ndarray | None = None, keep: float = KEEP
) -> IrregularData:
    """Windows of ``series`` keeping a random share ``keep`` of each window's values (``seed``).

    Window a covers indices a..a + W - 1 and its target is index a + W; targets before
    ``split = round((1 - TEST_FRACTION) * len)`` are training targets, the others test targets.
    """
    raw = series_values(series) if raw is None else np.asarray(raw, dtype=np.float64)
    W = WINDOWS[series]
    split = int(round((1 - TEST_FRACTION) * len(raw)))
    offset, scale = float(raw[:split].mean()), float(raw[:split].std())
    z = (raw - offset) / scale
    starts = np.arange(len(raw) - W)
    kept = observation_times(len(starts), W, seed, keep)
    values = z[starts[:, None] + kept]  # (N, n)
    last = values[:, -1]
    target = z[starts + W]
    train = starts + W < split
    d = float((target[train] - last[train]).std())
    x = model_inputs((values - last[:, None]) / d, kept.astype(np.float64), float(W))
    y = ((target - last) / d)[:, None]
    dtype = torch.get_default_dtype()

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype)

    task = rnnode.training.Task(
        f"{series}_irregular",
        "forecast",
        tensor(x[train]),
        tensor(y[train]),
        tensor(x[~train]),
        tensor(y[~train]),
        output_size=1,
        normalization=(offset, scale),
    )
    return IrregularData(
        task, d, last[~train], target[~train], starts[~train] + W, kept[~train], (offset, scale)
    )


class IrregularForecaster(nn.Module):
    """One GRU layer and a linear readout of its state at the forecast time.

    Arguments:
        kind: ``"continuous"`` (solved on each sequence's own times, causal input, RK4) or
            ``"delta_t"`` (discrete GRU, value and gap as input).
        hidden_size: GRU units.
        tau, method, step_size: the continuous model's solve.

    Input x (batch, n + 1, 3): value, time, gap (``model_inputs``); output (batch, 1).
    """

    def __init__(
        self,
        kind: str,
        hidden_size: int,
        *,
        tau: float = 1.0,
        method: str = "rk4",
        step_size: float | None = None,
    ):
        super().__init__()
        if kind not in MODELS:
            raise ValueError(f"kind: expected one of {MODELS}, got {kind!r}")
        self.kind = kind
        if kind == "continuous":
            self.rnn = rnnode.ODERNN(
                1,
                hidden_size,
                cell="gru",
                batch_first=True,
                tau=tau,
                method=method,
                step_size=step_size,
                interpolation="causal",
            )
        else:  # the default solve: torch.nn.GRU
            self.rnn = rnnode.ODERNN(2, hidden_size, cell="gru", batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self._stats: dict = {}

    def solve_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the stack is solved on: ``(input, t)``; t (batch, n + 2) for the continuous model
        (t_0 = t_1 - gap_1), None (steps 0, 1, ..., n + 1) for the delta-t model."""
        value, times, gaps = x[..., :1], x[..., 1], x[..., 2]
        if self.kind == "continuous":
            return value, torch.cat([times[:, :1] - gaps[:, :1], times], dim=1)
        return torch.cat([value, gaps.unsqueeze(-1)], dim=-1), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs, t = self.solve_inputs(x)
        solution = self.rnn.solve(inputs, t=t)
        self._stats = solution.stats
        return self.head(solution.output[:, -1])

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean squared error of the predicted increment."""
        loss = task_loss(self(x), y, "forecast")
        return loss, {}

    def _solver_stats(self) -> list:
        return list(self._stats.values())


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """sqrt(mean((prediction - target)^2))."""
    return float(np.sqrt(np.mean((np.asarray(prediction) - np.asarray(target)) ** 2)))


def loss_change(curve: list[float]) -> float:
    """Relative change of the mean over the last tenth of ``curve`` against the tenth before."""
    values = np.asarray(curve, dtype=np.float64)
    n = max(1, len(values) // 10)
    before, last = values[-2 * n : -n].mean(), values[-n:].mean()
    return float((last - before) / before)


def build(kind: str, cfg: dict) -> IrregularForecaster:
    """The ``kind`` model with ``cfg``'s sizes and solve."""
    return IrregularForecaster(
        kind, cfg["hidden_size"], tau=cfg["tau"], method=cfg["method"], step_size=cfg["step_size"]
    )


def point(p: dict) -> dict[str, Any]:
    """One model, one series, one seed (masks and initial weights): train, then forecast."""
    cfg, seed, kind = p["settings"], p["seed"], p["model"]
    data = irregular_data(p["series"], seed, keep=p["keep"])
    torch.manual_seed(seed)
    model = build(kind, cfg)
    metrics = train_with(model, data.task, cfg, seed)
    model.eval()
    with torch.no_grad():
        forecast = data.last_test + data.d * model(data.task.x_test)[:, 0].numpy()
    history = metrics["history"]
    return {
        "rmse": rmse(forecast, data.target_test),
        "rmse_persistence": rmse(data.last_test, data.target_test),
        "forecast": forecast,
        "persistence": data.last_test,
        "loss": history["loss"],
        "loss_change": loss_change(history["loss"]),
        "nfe_per_step": float(np.mean(history["nfe"])),
        "parameters": sum(q.numel() for q in model.parameters()),
    }


def _bridge_error(cfg: dict, data: IrregularData) -> float:
    """Max |delta-t model - torch.nn.GRU| on the test inputs (same weights)."""
    torch.manual_seed(0)
    model = build("delta_t", cfg)
    gru = model.rnn.to_torch()
    inputs, _ = model.solve_inputs(data.task.x_test)
    with torch.no_grad():
        return float((model.rnn(inputs)[0] - gru(inputs)[0]).abs().max())


def _score(ctx: Context, series: str, keep: float, cfg: dict, seeds: list[int]) -> dict[str, Any]:
    tag = regime(keep)
    points = [
        {"series": series, "settings": cfg, "keep": keep, "seed": s, "model": kind}
        for s in seeds
        for kind in MODELS
    ]
    results = ctx.sweep(point, points, name=f"seeds_{series}_{tag}")
    by = {
        kind: [r for r, q in zip(results, points, strict=True) if q["model"] == kind]
        for kind in MODELS
    }
    data = irregular_data(series, seeds[0], keep=keep)
    target = data.target_test

    def squared(forecasts: list) -> np.ndarray:  # (seeds, test targets)
        return (np.asarray(forecasts, dtype=np.float64) - target[None, :]) ** 2

    sq = {kind: squared([r["forecast"] for r in by[kind]]) for kind in MODELS}
    sq["persistence"] = squared([r["persistence"] for r in by["continuous"]])
    rmse_of = {kind: np.array([r["rmse"] for r in by[kind]]) for kind in MODELS}
    persistence = np.array([r["rmse_persistence"] for r in by["continuous"]])
    kept = kept_count(WINDOWS[series], keep)
    where = f"{series}, {kept} of {WINDOWS[series]} values kept per window"
    ctx.finding_over_seeds(
        f"{series}_{tag}_continuous_beats_delta_t",
        f"{where}: the continuous-time GRU given the observation times forecasts better than "
        "the RNN-delta-t baseline (squared error difference per seed and test target < 0)",
        sq["continuous"] - sq["delta_t"],
        comparison="<",
        bound=0.0,
        control=float(sq["delta_t"].mean()),
        control_label="the delta-t GRU's mean squared error",
        effect=EFFECT[series],
    )
    for kind, label in (("continuous", "continuous-time GRU"), ("delta_t", "delta-t GRU")):
        ctx.finding_over_seeds(
            f"{series}_{tag}_{kind}_beats_persistence",
            f"{where}: the {label} forecasts better than persistence, the last kept value "
            "(squared error difference per seed and test target < 0)",
            sq[kind] - sq["persistence"],
            comparison="<",
            bound=0.0,
            control=float(sq["persistence"].mean()),
            control_label="persistence's mean squared error",
            effect=EFFECT[series],
        )
    return {
        "keep": keep,
        "kept": kept,
        "window": WINDOWS[series],
        "normalization": list(data.normalization),
        "rmse": {**{k: v for k, v in rmse_of.items()}, "persistence": persistence},
        "mean_rmse": {
            **{k: float(v.mean()) for k, v in rmse_of.items()},
            "persistence": float(persistence.mean()),
        },
        "mean_squared_error": {k: float(v.mean()) for k, v in sq.items()},
        "target": target,
        "persistence_forecasts": [r["persistence"] for r in by["continuous"]],
        "forecasts": {kind: [r["forecast"] for r in by[kind]] for kind in MODELS},
        "parameters": {kind: by[kind][0]["parameters"] for kind in MODELS},
        "nfe_per_step": {kind: [r["nfe_per_step"] for r in by[kind]] for kind in MODELS},
        "loss_change": {kind: [r["loss_change"] for r in by[kind]] for kind in MODELS},
        "loss": {kind: [r["loss"] for r in by[kind]] for kind in MODELS},
        "first_seed": {
            "target": data.target_test,
            "target_index": data.target_index,
            "persistence": data.last_test,
            "times": data.times_test,
            **{kind: by[kind][0]["forecast"] for kind in MODELS},
        },
    }


def run(ctx: Context) -> dict[str, Any]:
    cfg = settings(ctx.quick)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    data = irregular_data(cfg["series"][0], seeds[0])
    error = _bridge_error(cfg, data)
    ctx.verify(
        "delta_t_is_torch_gru",
        error < 1e-12,
        "the delta-t model's recurrent layer (ODERNN, Euler step 1, held input) equals "
        "torch.nn.GRU with the same weights on the test inputs (max difference)",
        value=error,
        bound=1e-12,
    )
    scored = {
        series: {regime(k): _score(ctx, series, k, cfg, seeds) for k in cfg["keep"]}
        for series in cfg["series"]
    }
    panels = {f"{s}_{tag}": r for s, by in scored.items() for tag, r in by.items()}
    ctx.figure(
        "forecasts",
        _forecast_figure(panels),
        caption=f"Test part of each series (black line) with the forecasts at the fixed horizon "
        f"of the continuous-time GRU, the delta-t GRU and persistence (seed {seeds[0]}), one "
        "panel per series and share of values kept; one test window's span is shaded, its kept "
        "observations circled and its target marked by the dotted line.",
        numbers={
            key: {k: v * r["normalization"][1] for k, v in r["mean_rmse"].items()}
            for key, r in panels.items()
        },
    )
    ctx.figure(
        "rmse",
        _rmse_figure(seeds, panels),
        caption="Test RMSE (normalised units) per seed of the continuous-time GRU, the delta-t "
        "GRU and persistence (each seed its own masks), one panel per series and share kept.",
        numbers={key: r["mean_rmse"] for key, r in panels.items()},
    )
    return {"settings": cfg, "seeds": seeds, "bridge_error": error, **scored}


_UNITS = {"sunspots": "sunspot number", "co2": "CO2 (ppm)"}
_LABELS = {
    "continuous": "continuous-time GRU",
    "delta_t": "delta-t GRU (Rubanova et al.)",
    "persistence": "persistence (last kept value)",
}


def _title(key: str, r: dict[str, Any]) -> str:
    series = key.rsplit("_keep", 1)[0]
    return f"{series}: {r['kept']} of {r['window']} values kept per window"


def _forecast_figure(panels: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(
        figsize=(6 * min(len(panels), 2), 3.6 * -(-len(panels) // 2)), layout="constrained"
    )
    axes = np.atleast_1d(fig.subplots(-(-len(panels) // 2), min(len(panels), 2))).ravel()
    for ax, (key, r) in zip(axes, panels.items(), strict=False):
        series = key.rsplit("_keep", 1)[0]
        offset, scale = r["normalization"]
        first, unit = START[series]
        raw = series_values(series)
        f = r["first_seed"]
        index = np.asarray(f["target_index"])
        W = r["window"]
        shown = np.arange(index[0] - W, len(raw))
        ax.plot(first + unit * shown, raw[shown], "k-", linewidth=1.5, label="observed")
        for name, style in (("continuous", "o"), ("delta_t", "s"), ("persistence", "^")):
            values = offset + scale * np.asarray(f[name])
            ax.plot(first + unit * index, values, style, markersize=3, label=_LABELS[name])
        j = len(index) // 2  # one test window: its span and kept observations
        start = index[j] - W
        kept = start + np.asarray(f["times"][j])
        ax.axvspan(first + unit * start, first + unit * (index[j] - 1), color="0.9", zorder=0)
        ax.plot(
            first + unit * kept,
            raw[kept],
            "o",
            mfc="none",
            mec="C3",
            markersize=6,
            label="kept values (one window)",
        )
        ax.axvline(first + unit * index[j], color="C3", linewidth=0.8, linestyle=":")
        ax.set_title(_title(key, r), fontsize="medium")
        ax.set_xlabel("year")
        ax.set_ylabel(_UNITS[series])
        ax.legend(fontsize=6)
    return fig


def _rmse_figure(seeds: list[int], panels: dict[str, dict[str, Any]]) -> Figure:
    names = ("continuous", "delta_t", "persistence")
    return rmse_by_seed(
        seeds,
        {
            _title(key, r): [(_LABELS[name], r["rmse"][name]) for name in names]
            for key, r in panels.items()
        },
    )
