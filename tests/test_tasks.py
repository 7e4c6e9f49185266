"""Tasks: data, splits, normalisation and batches.

References: statsmodels' CSV files read with numpy (not through statsmodels or pandas),
scikit-learn's images, recomputed adding-problem targets, and the three-term recurrence that
every sampled sinusoid obeys.
"""

import itertools
import os

import numpy as np
import pytest
import statsmodels.datasets.co2
import statsmodels.datasets.sunspots
import torch
from sklearn.datasets import load_digits

import rnnode
from rnnode.training._tasks import co2_series, sunspots_series


def _csv(module, name):
    path = os.path.join(os.path.dirname(module.__file__), name)
    return np.genfromtxt(path, delimiter=",", names=True)


def test_sines_targets_are_the_slow_and_fast_sinusoids_of_the_input():
    task = rnnode.training.sines_task(12, 4, 40, seed=3)
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        torch.testing.assert_close(x[..., 0], y.sum(-1), rtol=0, atol=1e-15)
        # A sampled sinusoid obeys s_{k+1} + s_{k-1} = 2 cos(2 pi / P) s_k: recover P.
        for part, (low, high) in ((0, (32.0, 64.0)), (1, (3.0, 6.0))):
            s = y[..., part].numpy()
            for row in s:
                c = np.dot(row[1:-1], row[2:] + row[:-2]) / (2 * np.dot(row[1:-1], row[1:-1]))
                np.testing.assert_allclose(row[2:] + row[:-2], 2 * c * row[1:-1], atol=1e-12)
                period = 2 * np.pi / np.arccos(c)
                assert low - 1e-9 <= period <= high + 1e-9
    assert (task.kind, task.per_step, task.output_size) == ("regression", True, 2)


def test_adding_targets_sum_the_two_marked_values():
    task = rnnode.training.adding_task(20, 10, 12, seed=2)
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        values, marks = x[..., 0].numpy(), x[..., 1].numpy()
        assert ((values >= 0) & (values < 1)).all()
        assert (marks[:, :6].sum(1) == 1).all() and (marks[:, 6:].sum(1) == 1).all()
        expected = np.array([v[m == 1].sum() for v, m in zip(values, marks, strict=True)])
        np.testing.assert_allclose(y[:, 0].numpy(), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("mode", ["rows", "pixels"])
def test_digits_are_the_bundled_images_split_and_normalised(mode):
    task = rnnode.training.digits_task(mode, test_fraction=0.25, seed=1)
    offset, scale = task.normalization
    images = load_digits().images
    train = task.x_train.reshape(-1, 8, 8).numpy() * scale + offset
    test = task.x_test.reshape(-1, 8, 8).numpy() * scale + offset
    assert train.shape[0] + test.shape[0] == images.shape[0]
    assert abs(test.shape[0] - 0.25 * images.shape[0]) <= 1

    # Train and test together are the whole set (as multisets of (image, label) rows).
    def rows(a, labels):
        return np.sort(np.concatenate([a.reshape(len(a), -1), labels[:, None]], 1).round(9), 0)

    together = rows(np.concatenate([train, test]), np.concatenate([task.y_train, task.y_test]))
    np.testing.assert_allclose(together, rows(images, load_digits().target), atol=1e-9)
    # Statistics from the training images only.
    assert abs(offset - train.mean()) < 1e-12 and abs(scale - train.std()) < 1e-12
    assert abs(float(task.x_train.mean())) < 1e-12
    assert task.x_train.shape[1:] == ((8, 8) if mode == "rows" else (64, 1))
    assert task.y_train.dtype == torch.int64 and task.kind == "classification"


def test_pixels_are_the_rows_read_in_order():
    rows, pixels = rnnode.training.digits_task("rows"), rnnode.training.digits_task("pixels")
    torch.testing.assert_close(pixels.x_train.reshape(-1, 8, 8), rows.x_train, rtol=0, atol=0)
    assert torch.equal(pixels.y_test, rows.y_test)


def test_co2_series_is_the_monthly_mean_of_the_weekly_csv():
    data = _csv(statsmodels.datasets.co2, "co2.csv")
    months = (data["date"] // 100).astype(int)  # yyyymm
    first, last = months.min(), months.max()
    expected, previous = [], np.nan
    y, m = divmod(first, 100)
    while y * 100 + m <= last:
        values = data["co2"][months == y * 100 + m]
        values = values[np.isfinite(values)]
        previous = values.mean() if len(values) else previous
        expected.append(previous)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    np.testing.assert_allclose(co2_series(), expected, rtol=0, atol=1e-9)


def test_sunspots_series_is_the_csv():
    data = _csv(statsmodels.datasets.sunspots, "sunspots.csv")
    np.testing.assert_array_equal(sunspots_series(), data["SUNACTIVITY"])
    assert np.all(np.diff(data["YEAR"]) == 1)


@pytest.mark.parametrize(
    ("make", "series"),
    [(rnnode.training.co2_task, co2_series), (rnnode.training.sunspots_task, sunspots_series)],
)
def test_forecast_windows_are_consecutive_values_of_the_series(make, series):
    window, horizon = 10, 3
    task = make(window, horizon, test_fraction=0.2)
    raw = series()
    offset, scale = task.normalization
    split = int(round(0.8 * len(raw)))
    assert abs(offset - raw[:split].mean()) < 1e-9 and abs(scale - raw[:split].std()) < 1e-9
    for x, y, starts in (
        (task.x_train, task.y_train, range(window, split - horizon + 1)),
        (task.x_test, task.y_test, range(split, len(raw) - horizon + 1)),
    ):
        assert x.shape == (len(starts), window, 1) and y.shape == (len(starts), horizon)
        for n in (0, len(starts) // 2, len(starts) - 1):
            s = starts[n]
            np.testing.assert_allclose(x[n, :, 0].numpy() * scale + offset, raw[s - window : s])
            np.testing.assert_allclose(y[n].numpy() * scale + offset, raw[s : s + horizon])
    assert task.kind == "forecast" and task.output_size == horizon


def test_forecast_training_part_never_sees_the_test_values():
    raw = np.sin(np.arange(100.0) / 3) + np.arange(100.0) / 50
    changed = raw.copy()
    changed[80:] = 1e3  # the test part
    a = rnnode.training.forecast_task("s", raw, window=6, horizon=2, test_fraction=0.2)
    b = rnnode.training.forecast_task("s", changed, window=6, horizon=2, test_fraction=0.2)
    assert a.normalization == b.normalization
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_test, b.y_test)


def test_batches_visit_every_example_once_per_epoch_and_resume_exactly():
    task = rnnode.training.adding_task(12, 4, 5)
    stream = list(itertools.islice(task.batches(4, seed=7), 9))  # three epochs of three
    for epoch in range(3):
        seen = torch.cat([x for x, _ in stream[3 * epoch : 3 * epoch + 3]])
        order = np.lexsort(seen.reshape(12, -1).numpy().T)
        reference = np.lexsort(task.x_train.reshape(12, -1).numpy().T)
        assert torch.equal(seen[order], task.x_train[reference])
    assert not torch.equal(stream[0][0], stream[3][0])  # epochs are reshuffled
    resumed = list(itertools.islice(task.batches(4, seed=7, start=4), 5))
    for (xa, ya), (xb, yb) in zip(stream[4:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other = next(task.batches(4, seed=8))
    assert not torch.equal(other[0], stream[0][0])


def test_same_seed_same_task():
    a, b = (
        rnnode.training.sines_task(8, 4, 10, seed=5),
        rnnode.training.sines_task(8, 4, 10, seed=5),
    )
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, rnnode.training.sines_task(8, 4, 10, seed=6).x_train)


@pytest.mark.parametrize("name", list(rnnode.training.TASK_NAMES))
def test_every_task_has_consistent_shapes(name):
    task = rnnode.training.make_task(name)
    assert task.name == name and task.kind in rnnode.training.TASK_KINDS
    assert task.x_train.dim() == task.x_test.dim() == 3
    assert task.x_train.shape[1:] == task.x_test.shape[1:] == (task.length, task.input_size)
    if task.kind == "classification":
        assert task.y_train.max() < task.output_size
    elif task.per_step:
        assert task.y_train.shape[1:] == (task.length, task.output_size)
    else:
        assert task.y_train.shape[1:] == (task.output_size,)
    assert task.x_train.dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: rnnode.training.make_task("mnist"), "name"),
        (lambda: rnnode.training.digits_task("columns"), "mode"),
        (lambda: rnnode.training.digits_task(test_fraction=1.5), "test_fraction"),
        (lambda: rnnode.training.adding_task(length=1), "length"),
        (lambda: rnnode.training.sines_task(slow_period=(5.0, 2.0)), "slow_period"),
        (
            lambda: rnnode.training.forecast_task("s", np.array([1.0, np.nan, 2.0]), window=1),
            "series",
        ),
        (lambda: rnnode.training.forecast_task("s", np.arange(10.0), window=9), "window"),
        (lambda: next(rnnode.training.adding_task(4, 2, 3).batches(5, seed=0)), "batch_size"),
        (lambda: next(rnnode.training.adding_task(4, 2, 3).batches(2, seed=0, start=-1)), "start"),
    ],
)
def test_bad_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def _last_pulse_memory(x):
    """The flip-flop target by a plain loop: per sequence and channel, remember the last pulse."""
    n, length, bits = x.shape
    y = np.zeros_like(x)
    for i in range(n):
        for c in range(bits):
            memory = 0.0
            for k in range(length):
                if x[i, k, c] != 0:
                    memory = x[i, k, c]
                y[i, k, c] = memory
    return y


@pytest.mark.parametrize(("bits", "probability"), [(3, 0.05), (2, 0.3)])
def test_flip_flop_target_is_the_last_pulse_on_each_channel(bits, probability):
    task = rnnode.training.flip_flop_task(30, 10, 60, bits=bits, pulse_probability=probability)
    assert (task.name, task.kind, task.per_step, task.output_size) == (
        "flip_flop",
        "regression",
        True,
        bits,
    )
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        x, y = x.numpy(), y.numpy()
        assert x.shape == y.shape == (x.shape[0], 60, bits)
        assert set(np.unique(x)) <= {-1.0, 0.0, 1.0}
        np.testing.assert_array_equal(y, _last_pulse_memory(x))
    # Pulses on about the stated share of steps: 5 standard deviations of the binomial count.
    x = torch.cat([task.x_train, task.x_test]).numpy()
    count, total = int((x != 0).sum()), x.size
    assert abs(count - probability * total) < 5 * np.sqrt(total * probability * (1 - probability))
    assert abs(int((x == 1).sum()) - int((x == -1).sum())) < 5 * np.sqrt(count)


def test_flip_flop_is_reproducible_from_its_seed_and_named_by_make_task():
    a = rnnode.training.make_task("flip_flop", num_train=8, num_test=4, length=20, seed=4)
    b = rnnode.training.flip_flop_task(8, 4, 20, seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = rnnode.training.flip_flop_task(8, 4, 20, seed=5)
    assert not torch.equal(a.x_train, c.x_train)
    assert "flip_flop" in rnnode.training.TASK_NAMES
    half = rnnode.training.flip_flop_task(8, 4, 20, seed=4, dtype=torch.float32)
    assert half.x_train.dtype == torch.float32 and torch.equal(half.x_train.double(), b.x_train)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bits": 0}, "bits"),
        ({"pulse_probability": 1.0}, "pulse_probability"),
        ({"length": 0}, "length"),
    ],
)
def test_flip_flop_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rnnode.training.flip_flop_task(**kwargs)
