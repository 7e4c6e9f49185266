"""Tasks for the studies: synthetic problems and bundled real series, one interface.

Every task is a ``Task``: inputs ``x`` of shape (N, T, input_size) (batch first), targets ``y``,
a fixed train/test split drawn from a seed, and ``batches(batch_size, seed)``, an endless,
reproducible stream of shuffled training batches. Targets:

- ``"regression"``: (N, T, outputs) when ``per_step`` (a target at every sample), else (N, outputs);
- ``"classification"``: (N,) class indices (int64), scored on the last step;
- ``"forecast"``: (N, horizon), the next ``horizon`` values of a series after a window of it.

The tasks:

- ``sines``: the sum of a slow and a fast sine; the target is the two components at every step
  (timescale separation).
- ``adding``: the adding problem (Hochreiter & Schmidhuber 1997): a stream of uniform values with
  two marked, one in each half; the target is the sum of the marked values (long-range memory).
- ``flip_flop``: the 3-bit flip-flop (Sussillo & Barak 2013): each input channel carries sparse
  +1 / -1 pulses; the target on each channel is the sign of its last pulse, held until the next
  (a memory of 2^bits states, whose fixed points ``rnnode.analysis.find_fixed_points`` finds).
- ``digits_rows`` / ``digits_pixels``: scikit-learn's bundled 8x8 digits read row by row (T = 8,
  8 features) or pixel by pixel (T = 64, 1 feature).
- ``co2`` / ``sunspots``: forecasting Mauna Loa CO2 (monthly means of statsmodels' weekly series:
  a seasonal cycle on a slow trend) and yearly sunspot numbers, both bundled with statsmodels.

Real data are normalised with the statistics of the training part only; the series are split in
time (training windows first), so no test value leaks into training. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .._extras import require
from .._validate import check_choice, check_int, check_real

__all__ = [
    "TASK_KINDS",
    "TASK_NAMES",
    "Task",
    "adding_task",
    "co2_series",
    "co2_task",
    "digits_task",
    "flip_flop_task",
    "forecast_task",
    "make_task",
    "sines_task",
    "sunspots_series",
    "sunspots_task",
]


def _optional(module: str, package: str):
    """Import a data set's package, which comes with ``rnnode[studies]``, or say how to get it."""
    return require(module, package, "studies", "this task's data set")


TASK_KINDS = ("regression", "classification", "forecast")


@dataclass
class Task:
    """A supervised sequence task with a fixed train/test split.

    Attributes:
        name: the task's name (one of ``TASK_NAMES``).
        kind: ``"regression"``, ``"classification"`` or ``"forecast"``.
        x_train, x_test: inputs (N, T, input_size), batch first.
        y_train, y_test: targets; see the module docstring for shapes per kind.
        output_size: features of the target (the number of classes for classification).
        per_step: the target has a value at every sample time (else one per sequence).
        normalization: ``(offset, scale)`` mapping raw data to the normalised values
            (``(raw - offset) / scale``), from the training part; None when not normalised.
    """

    name: str
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    output_size: int
    per_step: bool = False
    normalization: tuple[float, float] | None = None

    @property
    def input_size(self) -> int:
        return self.x_train.shape[-1]

    @property
    def length(self) -> int:
        """Number of sample times T."""
        return self.x_train.shape[1]

    def batches(
        self, batch_size: int, seed: int, *, start: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless training batches ``(x, y)``: epoch e visits the training set in the order of a
        permutation drawn from ``numpy.random.default_rng([seed, e])``, in full batches only.

        Arguments:
            batch_size: sequences per batch (at most the training set's size).
            seed: seed of the shuffling.
            start: skip the first ``start`` batches (resume a run at step ``start``: the stream
                continues exactly as an uninterrupted one).

        Returns:
            An iterator of ``(x (batch_size, T, input_size), y (batch_size, ...))``.
        """
        n = self.x_train.shape[0]
        check_int("batch_size", batch_size, minimum=1)
        if batch_size > n:
            raise ValueError(
                f"batch_size: expected at most the {n} training sequences, got {batch_size}"
            )
        check_int("start", start, minimum=0)
        per_epoch = n // batch_size
        epoch, offset = divmod(start, per_epoch)
        while True:
            order = np.random.default_rng([seed, epoch]).permutation(n)
            for b in range(offset, per_epoch):
                index = torch.from_numpy(order[b * batch_size : (b + 1) * batch_size])
                yield self.x_train[index], self.y_train[index]
            epoch, offset = epoch + 1, 0


def _dtype(dtype: torch.dtype | None) -> torch.dtype:
    return torch.get_default_dtype() if dtype is None else dtype


def _check_count(name: str, value: object, minimum: int = 1) -> int:
    return check_int(name, value, minimum=minimum)


def _check_fraction(name: str, value: object) -> float:
    fraction = check_real(name, value, expected="a fraction in (0, 1)")
    if not 0 < fraction < 1:
        raise ValueError(f"{name}: expected a fraction in (0, 1), got {value!r}")
    return fraction


def sines_task(
    num_train: int = 256,
    num_test: int = 64,
    length: int = 64,
    *,
    slow_period: tuple[float, float] = (32.0, 64.0),
    fast_period: tuple[float, float] = (3.0, 6.0),
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> Task:
    """Timescale separation: x_k = a_s sin(2 pi k / P_s + p_s) + a_f sin(2 pi k / P_f + p_f).

    The target at every step k = 1..T is the pair (slow component, fast component). Periods are
    uniform on the given ranges, amplitudes uniform on (0.5, 1.5), phases uniform on (0, 2 pi),
    independently per sequence.

    Returns:
        A ``"regression"`` task with ``per_step=True``: x (N, T, 1), y (N, T, 2).
    """
    for name, value in (("num_train", num_train), ("num_test", num_test), ("length", length)):
        _check_count(name, value)
    for name, (low, high) in (("slow_period", slow_period), ("fast_period", fast_period)):
        if not 0 < low <= high:
            raise ValueError(
                f"{name}: expected (low, high) with 0 < low <= high, got {(low, high)}"
            )
    rng = np.random.default_rng(seed)
    n = num_train + num_test
    k = np.arange(1, length + 1)
    parts = []
    for low, high in (slow_period, fast_period):
        period = rng.uniform(low, high, size=(n, 1))
        amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
        phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
        parts.append(amplitude * np.sin(2 * np.pi * k / period + phase))
    y = torch.as_tensor(np.stack(parts, axis=-1), dtype=_dtype(dtype))
    x = y.sum(dim=-1, keepdim=True)
    return Task(
        "sines",
        "regression",
        x[:num_train],
        y[:num_train],
        x[num_train:],
        y[num_train:],
        output_size=2,
        per_step=True,
    )


def adding_task(
    num_train: int = 512,
    num_test: int = 128,
    length: int = 50,
    *,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> Task:
    """The adding problem: channel 0 holds values uniform on (0, 1), channel 1 marks two of them,
    one in each half of the sequence; the target is the sum of the two marked values.

    Returns:
        A ``"regression"`` task: x (N, T, 2), y (N, 1). Predicting the mean, 1, scores an MSE
        of 1/6; solving the task needs memory across T / 2 steps.
    """
    _check_count("num_train", num_train)
    _check_count("num_test", num_test)
    _check_count("length", length, minimum=2)
    rng = np.random.default_rng(seed)
    n = num_train + num_test
    values = rng.uniform(0.0, 1.0, size=(n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    marks = np.zeros((n, length))
    marks[np.arange(n), first] = 1.0
    marks[np.arange(n), second] = 1.0
    x = torch.as_tensor(np.stack([values, marks], axis=-1), dtype=_dtype(dtype))
    y = torch.as_tensor((values * marks).sum(axis=1, keepdims=True), dtype=_dtype(dtype))
    return Task(
        "adding",
        "regression",
        x[:num_train],
        y[:num_train],
        x[num_train:],
        y[num_train:],
        output_size=1,
    )


def flip_flop_task(
    num_train: int = 512,
    num_test: int = 128,
    length: int = 100,
    *,
    bits: int = 3,
    pulse_probability: float = 0.05,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> Task:
    """The ``bits``-bit flip-flop (Sussillo & Barak 2013, Neural Computation 25(3)).

    Input channel c at step k holds a pulse s in {+1, -1} with probability ``pulse_probability``
    (independently per step and channel, the sign a fair coin), else 0. The target on channel c
    at step k is the sign of the last pulse on c at or before k, and 0 before c's first pulse:

        y_{k,c} = x_{j,c} with j = max {i <= k : x_{i,c} != 0};  y_{k,c} = 0 if there is none.

    A network that solves it holds one of 2^bits memories between pulses (Sussillo & Barak's
    fixed-point picture: one stable fixed point per corner, saddles between them).

    Arguments:
        num_train, num_test: sequences in the two parts (drawn together from ``seed``).
        length: steps T.
        bits: channels (3 in the paper).
        pulse_probability: the chance of a pulse per step and channel, in (0, 1).
        seed: seed of ``numpy.random.default_rng``.
        dtype: of x and y (default torch's default dtype).

    Returns:
        A ``"regression"`` task with ``per_step=True``: x (N, T, bits) and y (N, T, bits), both
        with values in {-1, 0, 1}.
    """
    for name, value in (("num_train", num_train), ("num_test", num_test), ("length", length)):
        _check_count(name, value)
    _check_count("bits", bits)
    _check_fraction("pulse_probability", pulse_probability)
    rng = np.random.default_rng(seed)
    n = num_train + num_test
    pulse = rng.random((n, length, bits)) < pulse_probability
    sign = np.where(rng.random((n, length, bits)) < 0.5, -1.0, 1.0)
    x = np.where(pulse, sign, 0.0)
    # The index of the last pulse at or before each step (-1: none yet), one running maximum.
    steps = np.arange(length)[None, :, None]
    last = np.maximum.accumulate(np.where(pulse, steps, -1), axis=1)
    held = np.take_along_axis(x, np.maximum(last, 0), axis=1)
    y = np.where(last >= 0, held, 0.0)
    inputs = torch.as_tensor(x, dtype=_dtype(dtype))
    targets = torch.as_tensor(y, dtype=_dtype(dtype))
    return Task(
        "flip_flop",
        "regression",
        inputs[:num_train],
        targets[:num_train],
        inputs[num_train:],
        targets[num_train:],
        output_size=bits,
        per_step=True,
    )


def digits_task(
    mode: str = "rows",
    *,
    test_fraction: float = 0.25,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> Task:
    """Sequential 8x8 digits (scikit-learn's bundled set, 1797 images, 10 classes).

    Arguments:
        mode: ``"rows"`` (T = 8 steps of 8 pixels) or ``"pixels"`` (T = 64 steps of 1 pixel, in
            row-major order).
        test_fraction: share of the images held out, drawn at random with ``seed``.

    Pixels are normalised by the mean and standard deviation of all training pixels.

    Returns:
        A ``"classification"`` task: x (N, 8, 8) or (N, 64, 1), y (N,) int64 labels.
    """
    load_digits = _optional("sklearn.datasets", "scikit-learn").load_digits

    check_choice("mode", mode, ("rows", "pixels"))
    _check_fraction("test_fraction", test_fraction)
    digits = load_digits()
    images = digits.images.astype(np.float64)  # (N, 8, 8)
    n = images.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    num_test = int(round(test_fraction * n))
    train, test = order[num_test:], order[:num_test]
    offset, scale = float(images[train].mean()), float(images[train].std())
    images = (images - offset) / scale
    x = images if mode == "rows" else images.reshape(n, 64, 1)
    x = torch.as_tensor(x, dtype=_dtype(dtype))
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    return Task(
        f"digits_{mode}",
        "classification",
        x[train],
        y[train],
        x[test],
        y[test],
        output_size=10,
        normalization=(offset, scale),
    )


def forecast_task(
    name: str,
    series: np.ndarray,
    *,
    window: int,
    horizon: int = 1,
    test_fraction: float = 0.2,
    dtype: torch.dtype | None = None,
) -> Task:
    """Forecast the next ``horizon`` values of a series from the ``window`` values before them.

    The series is split in time: the first ``1 - test_fraction`` of it is the training part
    (normalised by its own mean and standard deviation, which then normalise everything), and
    every window whose targets lie wholly in it is a training example; the test examples are the
    windows whose targets lie wholly in the rest (their inputs may reach back into the training
    part, as a forecast made at the split would).

    Arguments:
        name: the task's name.
        series: (length,) finite values in time order.
        window: input steps T.
        horizon: values to predict.
        test_fraction: share of the series (from its end) whose values are test targets.

    Returns:
        A ``"forecast"`` task: x (N, window, 1), y (N, horizon).
    """
    series = np.asarray(series, dtype=np.float64)
    if series.ndim != 1 or not np.isfinite(series).all():
        raise ValueError(
            f"series: expected a 1-D array of finite values, got shape {series.shape} with "
            f"{int((~np.isfinite(series)).sum())} non-finite entries"
        )
    _check_count("window", window)
    _check_count("horizon", horizon)
    _check_fraction("test_fraction", test_fraction)
    split = int(round((1 - test_fraction) * len(series)))
    if split < window + horizon or len(series) - split < horizon:
        raise ValueError(
            f"window: expected window + horizon = {window + horizon} to fit in both parts of the "
            f"series ({split} training and {len(series) - split} test values), got window={window}"
        )
    offset, scale = float(series[:split].mean()), float(series[:split].std())
    z = (series - offset) / scale
    # Target start s: training when s + horizon <= split, test when s >= split.
    train_starts = np.arange(window, split - horizon + 1)
    test_starts = np.arange(max(split, window), len(series) - horizon + 1)

    def examples(starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.stack([z[s - window : s] for s in starts])[..., None]
        y = np.stack([z[s : s + horizon] for s in starts])
        return torch.as_tensor(x, dtype=_dtype(dtype)), torch.as_tensor(y, dtype=_dtype(dtype))

    x_train, y_train = examples(train_starts)
    x_test, y_test = examples(test_starts)
    return Task(
        name,
        "forecast",
        x_train,
        y_train,
        x_test,
        y_test,
        output_size=horizon,
        normalization=(offset, scale),
    )


def co2_series() -> np.ndarray:
    """Monthly mean Mauna Loa CO2 (ppm), March 1958 to December 2001, from statsmodels' weekly
    record; months without any measurement take the previous month's value."""
    sm = _optional("statsmodels.api", "statsmodels")

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    return weekly.resample("MS").mean().ffill().to_numpy()


def sunspots_series() -> np.ndarray:
    """Yearly mean sunspot numbers, 1700 to 2008, bundled with statsmodels."""
    sm = _optional("statsmodels.api", "statsmodels")

    return sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()


def co2_task(window: int = 48, horizon: int = 1, *, test_fraction: float = 0.2, dtype=None) -> Task:
    """Forecast monthly Mauna Loa CO2 (``forecast_task`` on ``co2_series()``)."""
    return forecast_task(
        "co2",
        co2_series(),
        window=window,
        horizon=horizon,
        test_fraction=test_fraction,
        dtype=dtype,
    )


def sunspots_task(
    window: int = 20, horizon: int = 1, *, test_fraction: float = 0.2, dtype=None
) -> Task:
    """Forecast yearly sunspot numbers (``forecast_task`` on ``sunspots_series()``)."""
    return forecast_task(
        "sunspots",
        sunspots_series(),
        window=window,
        horizon=horizon,
        test_fraction=test_fraction,
        dtype=dtype,
    )


_TASK_BUILDERS: dict[str, Callable[..., Task]] = {
    "sines": sines_task,
    "adding": adding_task,
    "flip_flop": flip_flop_task,
    "digits_rows": lambda **kw: digits_task("rows", **kw),
    "digits_pixels": lambda **kw: digits_task("pixels", **kw),
    "co2": co2_task,
    "sunspots": sunspots_task,
}


#: The names ``make_task`` accepts.
TASK_NAMES: tuple[str, ...] = tuple(_TASK_BUILDERS)


def make_task(name: str, **kwargs) -> Task:
    """Build the named task (one of ``TASK_NAMES``) with its keyword arguments."""
    check_choice("name", name, TASK_NAMES)
    return _TASK_BUILDERS[name](**kwargs)
