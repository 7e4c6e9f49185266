"""rnnode.training's future-dependent tasks and the two-level chain with its exact filter, against
brute-force references (direct comparisons, enumeration of every path of the chain)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from rnnode.training import (
    future_task,
    two_level_chain,
    two_level_chain_filter,
    two_level_chain_task,
    two_sided_task,
)
from rnnode.training._more_tasks import FAST_SWITCH, NOISE, SLOW_SWITCH, STATES


def test_future_task_targets_compare_next_and_previous_inputs():
    task = future_task(5, 3, 6, seed=2)
    x = torch.cat([task.x_train, task.x_test])[..., 0].numpy()
    y = torch.cat([task.y_train, task.y_test]).numpy()
    assert x.shape == y.shape == (8, 6) and task.per_step and task.output_size == 2
    for n, k in np.ndindex(8, 6):
        before = x[n, k - 1] if k > 0 else 0.0
        after = x[n, k + 1] if k < 5 else 0.0
        assert y[n, k] == int(after > before)


def test_two_sided_task_targets_compare_the_signs_of_both_neighbours():
    task = two_sided_task(4, 2, 7, seed=3)
    x = torch.cat([task.x_train, task.x_test])[..., 0].numpy()
    y = torch.cat([task.y_train, task.y_test]).numpy()
    torch.testing.assert_close(task.x_train, future_task(4, 2, 7, seed=3).x_train, rtol=0, atol=0)
    for n, k in np.ndindex(6, 7):
        before = x[n, k - 1] if k > 0 else 0.0
        after = x[n, k + 1] if k < 6 else 0.0
        assert y[n, k] == int(before * after > 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"length": 1}, ValueError, "length"),
        ({"num_train": 0}, ValueError, "num_train"),
        ({"num_test": 2.0}, TypeError, "num_test"),
    ],
)
def test_future_task_rejects_bad_sizes(kwargs, error, argument):
    with pytest.raises(error, match=f"^{argument}: expected"):
        future_task(**kwargs)


def brute_force_posterior(x: np.ndarray) -> np.ndarray:
    """E[(s_k, f_k) | x_1..x_k] by summing the joint probability of every path of the chain."""
    switch = [np.array([[1 - p, p], [p, 1 - p]]) for p in (SLOW_SWITCH, FAST_SWITCH)]
    means = STATES.sum(-1)
    T = len(x)
    out = np.zeros((T, 2))
    for k in range(1, T + 1):
        total, weighted = 0.0, np.zeros(2)
        for path in itertools.product(range(4), repeat=k):
            p = 0.25
            for j in range(1, k):
                (s0, f0), (s1, f1) = divmod(path[j - 1], 2), divmod(path[j], 2)
                p *= switch[0][s0, s1] * switch[1][f0, f1]
            for j in range(k):
                p *= math.exp(-0.5 * ((x[j] - means[path[j]]) / NOISE) ** 2)
            total += p
            weighted += p * STATES[path[k - 1]]
        out[k - 1] = weighted / total
    return out


def test_forward_filter_equals_brute_force_enumeration():
    x, _ = two_level_chain(3, 6, np.random.default_rng(1))
    filtered = two_level_chain_filter(x)
    for i in range(3):
        np.testing.assert_allclose(filtered[i], brute_force_posterior(x[i]), rtol=0, atol=1e-12)


def test_chain_switch_rates_and_observation():
    x, states = two_level_chain(400, 400, np.random.default_rng(2))
    switches = (np.diff(states, axis=1) != 0).mean((0, 1))
    # 400 * 399 transitions: binomial standard errors 1.2e-4 (slow) and 3.4e-4 (fast).
    assert switches[0] == pytest.approx(SLOW_SWITCH, abs=1e-3)
    assert switches[1] == pytest.approx(FAST_SWITCH, abs=2e-3)
    assert (x - states.sum(-1)).std() == pytest.approx(NOISE, rel=1e-2)


def test_chain_task_holds_the_chains_draws_in_order():
    task = two_level_chain_task(5, 3, 12, seed=4)
    rng = np.random.default_rng(4)
    parts = [two_level_chain(n, 12, rng) for n in (5, 3)]
    splits = [(task.x_train, task.y_train), (task.x_test, task.y_test)]
    for (x, y), (tx, ty) in zip(parts, splits, strict=True):
        np.testing.assert_array_equal(tx[..., 0].numpy(), x)
        np.testing.assert_array_equal(ty.numpy(), y)
    assert task.per_step and task.kind == "regression" and task.output_size == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"slow_switch": 1.5}, ValueError, "slow_switch: expected a probability in (0, 1)"),
        ({"noise": 0.0}, ValueError, "noise: expected a positive"),
        ({"fast_switch": "x"}, TypeError, "fast_switch"),
    ],
)
def test_chain_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        two_level_chain(2, 3, np.random.default_rng(0), **kwargs)
