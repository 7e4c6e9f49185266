"""More synthetic tasks, with their optimal predictors: future-dependent targets (for
bidirectional stacks) and a two-level hidden Markov chain (for timescales).

- ``future_task``: y_k = 1[x_{k+1} > x_{k-1}] of standard normal x: the target needs the next
  input, which a causal model can only guess (the best causal rule scores 3/4).
- ``two_sided_task``: y_k = 1[x_{k-1} x_{k+1} > 0]: the XOR of a feature of each side.
- ``two_level_chain_task``: x_k = s_k + f_k + noise e_k, s and f telegraph states (+-1) that
  switch with probability ``slow_switch`` and ``fast_switch`` per step; the target is (s_k, f_k)
  at every step. ``two_level_chain_filter`` is the exact forward filter of the 4-state product
  chain: the posterior means E[(s_k, f_k) | x_1..x_k], the best causal predictions in mean
  square. The slow state needs memory of tens of steps, the fast one the present sample.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validate import check_int, check_real
from ._tasks import Task

__all__ = [
    "future_task",
    "two_level_chain",
    "two_level_chain_filter",
    "two_level_chain_task",
    "two_sided_task",
]

#: The two-level chain's defaults: switch probabilities per step and the observation noise.
SLOW_SWITCH = 1 / 40
FAST_SWITCH = 1 / 4
NOISE = 0.6
#: The product chain's states (s, f), in the order of ``two_level_chain_filter``'s posterior.
STATES = np.array([(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)])


def _dtype(dtype: torch.dtype | None) -> torch.dtype:
    return torch.get_default_dtype() if dtype is None else dtype


def _split(name: str, x: torch.Tensor, y: torch.Tensor, num_train: int, **kwargs) -> Task:
    return Task(
        name,
        x_train=x[:num_train],
        y_train=y[:num_train],
        x_test=x[num_train:],
        y_test=y[num_train:],
        **kwargs,
    )


def future_task(
    num_train: int = 512,
    num_test: int = 128,
    length: int = 10,
    *,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> Task:
    """Per-step classification y_k = 1[x_{k+1} > x_{k-1}] of standard normal x (x_0 = x_{T+1} = 0).

    Arguments:
        num_train, num_test: sequences in each split.
        length: sample times T (>= 2).
        seed: seed of the inputs (``numpy.random.default_rng``).
        dtype: dtype of x (default: torch's default).

    Returns:
        A ``"classification"`` ``Task`` named ``"future"`` with ``per_step=True``: x (N, T, 1),
        y (N, T) int64 in {0, 1}, 2 classes.
    """
    check_int("num_train", num_train, minimum=1)
    check_int("num_test", num_test, minimum=1)
    check_int("length", length, minimum=2)
    x = np.random.default_rng(seed).standard_normal((num_train + num_test, length))
    padded = np.pad(x, ((0, 0), (1, 1)))  # x_0 = x_{T+1} = 0
    y = torch.as_tensor(padded[:, 2:] > padded[:, :-2], dtype=torch.int64)
    x_t = torch.as_tensor(x[..., None], dtype=_dtype(dtype))
    return _split("future", x_t, y, num_train, kind="classification", output_size=2, per_step=True)


def two_sided_task(
    num_train: int = 512,
    num_test: int = 128,
    length: int = 10,
    *,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> Task:
    """Per-step classification y_k = 1[x_{k-1} x_{k+1} > 0] of standard normal x
    (x_0 = x_{T+1} = 0): do the previous and the next input have the same sign?

    The inputs are ``future_task``'s (same arguments, same x); shapes as there. The answer needs
    one feature from each side combined by XOR, which a linear readout of [forward state;
    backward state] cannot form (additive rules score at most 3/4 at the inner steps).

    Returns:
        A ``"classification"`` ``Task`` named ``"two_sided"`` with ``per_step=True``.
    """
    task = future_task(num_train, num_test, length, seed=seed, dtype=dtype)
    x = torch.cat([task.x_train, task.x_test])
    padded = torch.nn.functional.pad(x[..., 0], (1, 1))  # x_0 = x_{T+1} = 0
    y = (padded[:, :-2] * padded[:, 2:] > 0).to(torch.int64)
    return _split("two_sided", x, y, num_train, kind="classification", output_size=2, per_step=True)


def _switch(p: float) -> np.ndarray:
    return np.array([[1 - p, p], [p, 1 - p]])


def _check_chain(slow_switch: float, fast_switch: float, noise: float) -> None:
    for name, p in (("slow_switch", slow_switch), ("fast_switch", fast_switch)):
        if not 0 < check_real(name, p) < 1:
            raise ValueError(f"{name}: expected a probability in (0, 1), got {p!r}")
    if not check_real("noise", noise) > 0:
        raise ValueError(f"noise: expected a positive number, got {noise!r}")


def two_level_chain(
    num: int,
    length: int,
    rng: np.random.Generator,
    *,
    slow_switch: float = SLOW_SWITCH,
    fast_switch: float = FAST_SWITCH,
    noise: float = NOISE,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw sequences of the two-level chain x_k = s_k + f_k + noise e_k (e_k standard normal).

    Both telegraph states start from their stationary distribution (+-1 with probability 1/2)
    and flip with probability ``slow_switch`` (s) and ``fast_switch`` (f) at each step.

    Arguments:
        num, length: sequences and steps.
        rng: the numpy generator the draws come from (in a fixed order: the flips of s and f,
            the initial states, the noise).

    Returns:
        ``x`` (num, length) and ``states`` (num, length, 2): (s, f).
    """
    check_int("num", num, minimum=1)
    check_int("length", length, minimum=1)
    _check_chain(slow_switch, fast_switch, noise)
    flips = np.stack([rng.random((num, length)) < p for p in (slow_switch, fast_switch)], axis=-1)
    flips[:, 0] = rng.random((num, 2)) < 0.5  # the initial state, uniform
    states = np.where(np.cumsum(flips, axis=1) % 2 == 1, 1.0, -1.0)
    x = states.sum(-1) + noise * rng.standard_normal((num, length))
    return x, states


def two_level_chain_filter(
    x: np.ndarray,
    *,
    slow_switch: float = SLOW_SWITCH,
    fast_switch: float = FAST_SWITCH,
    noise: float = NOISE,
) -> np.ndarray:
    """The exact forward filter of the two-level chain: E[(s_k, f_k) | x_1..x_k] for every k.

    alpha_k(z) = N(x_k; s + f, noise^2) sum_z' alpha_{k-1}(z') P(z', z), normalised at each
    step, z = (s, f) over ``STATES``, P = kron(switch(slow), switch(fast)) and alpha_0 uniform.

    Arguments:
        x: (num, length) observations (or (length,)).

    Returns:
        (num, length, 2) posterior means of s and f.
    """
    _check_chain(slow_switch, fast_switch, noise)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    P = np.kron(_switch(slow_switch), _switch(fast_switch))
    means = STATES.sum(-1)
    alpha = np.full((x.shape[0], 4), 0.25)
    out = np.empty((*x.shape, 2))
    for k in range(x.shape[1]):
        like = np.exp(-0.5 * ((x[:, k, None] - means) / noise) ** 2)
        alpha = (alpha @ P) * like
        alpha /= alpha.sum(-1, keepdims=True)
        out[:, k] = alpha @ STATES
    return out


def two_level_chain_task(
    num_train: int = 512,
    num_test: int = 64,
    length: int = 100,
    *,
    slow_switch: float = SLOW_SWITCH,
    fast_switch: float = FAST_SWITCH,
    noise: float = NOISE,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> Task:
    """The two-level chain as a per-step regression: x_k -> (s_k, f_k).

    Training then test sequences are drawn by ``two_level_chain`` from
    ``numpy.random.default_rng(seed)``; ``two_level_chain_filter`` of the inputs is the best
    causal prediction.

    Returns:
        A ``"regression"`` ``Task`` named ``"two_level_chain"`` with ``per_step=True``:
        x (N, T, 1), y (N, T, 2).
    """
    check_int("num_train", num_train, minimum=1)
    check_int("num_test", num_test, minimum=1)
    rng = np.random.default_rng(seed)
    chain = {"slow_switch": slow_switch, "fast_switch": fast_switch, "noise": noise}
    parts = [two_level_chain(n, length, rng, **chain) for n in (num_train, num_test)]
    x = torch.as_tensor(np.concatenate([p[0] for p in parts])[..., None], dtype=_dtype(dtype))
    y = torch.as_tensor(np.concatenate([p[1] for p in parts]), dtype=_dtype(dtype))
    return _split(
        "two_level_chain", x, y, num_train, kind="regression", output_size=2, per_step=True
    )
