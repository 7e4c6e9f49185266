"""Short-term memory capacity (Jaeger 2001): how much of its past white-noise input a network's
state holds, read out linearly.

For a network driven by i.i.d. inputs u_t whose state h_t has seen u_1..u_t, the delay-k memory
function is the squared correlation between u_{t-k} and its best linear reconstruction from h_t,

    m_k = max_w corr(w . h_t + c, u_{t-k})^2,      MC = sum_{k >= 0} m_k <= N

(the bound holds because the reconstructions of different delays are linear functions of the same
N-dimensional state while the delayed inputs are uncorrelated). For the linear network
h_t = A h_{t-1} + b u_t + xi_t with unit-variance input, state noise xi_t of covariance Q and
stationary state covariance C = A C A^T + b b^T + Q, the reconstruction is exact in closed form:
m_k = (A^k b)^T C^{-1} (A^k b). Without noise sum_k m_k = tr(C^{-1} C) = N whenever (A, b) is
controllable and rho(A) < 1; noise lowers it, the more the faster A forgets.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import solve_discrete_lyapunov

from rnnode._validate import check_array, check_int, check_real

__all__ = ["memory_function", "linear_memory_function"]


def memory_function(
    states: ArrayLike,
    inputs: ArrayLike,
    max_delay: int,
    *,
    washout: int = 0,
    train_fraction: float = 0.5,
) -> np.ndarray:
    """Estimated memory function m_k, k = 0..max_delay - 1, from one driven trajectory.

    The readout (least squares with an intercept, one per delay) is fitted on the first
    ``train_fraction`` of the usable samples and m_k is the squared Pearson correlation on the
    rest, so the estimate is not inflated by fitting noise (it tends to the true m_k from below
    as the trajectory grows).

    Arguments:
        states: (T, N) states h_t, h_t having seen inputs up to u_t.
        inputs: (T,) the inputs u_t.
        max_delay: K, the number of delays (0..K-1).
        washout: initial samples dropped (transient from the initial state).
        train_fraction: share of the samples used to fit the readouts.

    Returns:
        (K,) array of m_k in [0, 1]; its sum is the estimated capacity.
    """
    h = check_array("states", states)
    u = check_array("inputs", inputs)
    if h.ndim != 2 or u.ndim != 1 or h.shape[0] != u.shape[0]:
        raise ValueError(
            f"states, inputs: expected shapes (T, N) and (T,), got {h.shape} and {u.shape}"
        )
    K = check_int("max_delay", max_delay, minimum=1)
    washout = check_int("washout", washout, minimum=0)
    train_fraction = check_real("train_fraction", train_fraction, expected="a number in (0, 1)")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction: expected a number in (0, 1), got {train_fraction!r}")
    start = max(washout, K - 1)
    T = h.shape[0] - start
    if T < 4:
        raise ValueError(f"states: expected more than washout + max_delay + 3 samples, got {T}")
    times = np.arange(start, h.shape[0])
    X = np.column_stack([h[times], np.ones(T)])
    Y = np.stack([u[times - k] for k in range(K)], axis=1)  # (T, K)
    split = int(round(train_fraction * T))
    w, *_ = np.linalg.lstsq(X[:split], Y[:split], rcond=None)
    pred, target = X[split:] @ w, Y[split:]
    pred = pred - pred.mean(axis=0)
    target = target - target.mean(axis=0)
    denom = (pred**2).sum(axis=0) * (target**2).sum(axis=0)
    cov = (pred * target).sum(axis=0)
    return np.where(denom > 0, cov**2 / np.where(denom > 0, denom, 1.0), 0.0)


def linear_memory_function(
    A: ArrayLike, b: ArrayLike, max_delay: int, noise: ArrayLike | None = None
) -> np.ndarray:
    """Closed-form memory function of h_t = A h_{t-1} + b u_t + xi_t, unit-variance white-noise
    u and white state noise xi of covariance Q.

    m_k = (A^k b)^T C^{-1} (A^k b) with C the stationary covariance (C = A C A^T + b b^T + Q,
    ``scipy.linalg.solve_discrete_lyapunov``).

    Arguments:
        A: (N, N) with spectral radius < 1.
        b: (N,) input weights.
        max_delay: K, the number of delays (0..K-1).
        noise: Q, (N, N) covariance of the state noise (None: no noise).

    Returns:
        (K,) array; without noise sum_{k < K} m_k = N - tr(C^{-1} A^K C A^K^T) -> N as K grows.
    """
    A = check_array("A", A)
    b = check_array("b", b)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or b.shape != (A.shape[0],):
        raise ValueError(f"A, b: expected shapes (N, N) and (N,), got {A.shape} and {b.shape}")
    K = check_int("max_delay", max_delay, minimum=1)
    radius = float(np.abs(np.linalg.eigvals(A)).max())
    if not radius < 1:
        raise ValueError(f"A: expected spectral radius < 1 (a stationary state), got {radius}")
    Q = np.outer(b, b)
    if noise is not None:
        noise = check_array("noise", noise)
        if noise.shape != A.shape:
            raise ValueError(f"noise: expected shape {A.shape}, got {noise.shape}")
        Q = Q + noise
    C = solve_discrete_lyapunov(A, Q)
    out = np.empty(K)
    r = b.copy()
    for k in range(K):
        out[k] = r @ np.linalg.solve(C, r)
        r = A @ r
    return out
