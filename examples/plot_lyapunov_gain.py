"""
Chaos in random tanh networks: the largest Lyapunov exponent against the gain
=============================================================================

A random Elman (tanh) network without input or bias, recurrent weights g W with
W_ij ~ N(0, 1 / N), is quiet for small gains g and chaotic for large ones. This example measures
its largest Lyapunov exponent with :func:`rnnode.analysis.lyapunov_exponents` (the QR method of
Benettin et al. 1980) over a range of gains, for two readings of the same weights:

- the **discrete map** h_{t+1} = tanh(g W h_t) (``torch.nn.RNN``'s cell: the layer solved by
  Euler with step 1), against the mean-field exponent of Molgedey, Schuster & Ritter (1992),
  ``lambda = 1/2 ln(g^2 E[sech^4(sqrt(q*) z)])``
  (:func:`rnnode.analysis.meanfield.lyapunov_exponent`), which is ln g below g = 1;
- the **continuous field** dh/dt = -h + tanh(g W h), which has the exponents of the rate
  network dx/dt = -x + g W tanh(x) (x = g W h is a linear change of coordinates), against the
  mean-field transition to chaos at g = 1 of Sompolinsky, Crisanti & Sommers (1988): below it
  the origin attracts every trajectory and the exponent is g - 1 (N -> infinity).

Each gain is measured on 5 networks (seeds 0 to 4, the same W at every gain of a seed); the
markers are the means over networks and the error bars Student-t 95% intervals of the mean
(:func:`rnnode.studies.t_interval`). The study ``chaos`` (``rnnode-study run chaos``) makes the
same measurement with 20 networks, larger N and longer averages, under claims fixed in advance.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

import rnnode
from rnnode.analysis import lyapunov_exponents
from rnnode.analysis.meanfield import lyapunov_exponent
from rnnode.studies import t_interval

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # QR of the tangent vectors: logs of small numbers
torch.set_num_threads(1)  # a 200-unit network: threads would only wait on each other

SIZE = 200  # N, units of the network
SEEDS = range(5)  # one random W per seed


def network(gain: float, seed: int) -> rnnode.ODERNN:
    """One tanh layer, no bias, no input weights, W_hh = g W with W_ij ~ N(0, 1 / N)."""
    generator = torch.Generator().manual_seed(seed)
    model = rnnode.ODERNN(1, SIZE, 1, cell="rnn", bias=False)
    with torch.no_grad():
        field = model.layers[0]
        field.weight_ih.zero_()
        weight = torch.randn(SIZE, SIZE, generator=generator)
        field.weight_hh.copy_(gain * weight / SIZE**0.5)
    return model


def largest_exponent(model: rnnode.ODERNN, seed: int, *, continuous: bool) -> float:
    """The leading exponent from one random start: per step (Euler, step 1, the discrete map),
    or per unit time (RK4, step 0.5, re-orthonormalised every 2 time units)."""
    generator = torch.Generator().manual_seed(1000 + seed)
    h0 = torch.randn(1, SIZE, generator=generator)  # (num_layers, state_size)
    options = (
        {"method": "rk4", "step_size": 0.5, "interval": 2.0, "duration": 100.0}
        if continuous
        else {"method": "euler", "step_size": 1.0, "interval": 1.0, "duration": 100.0}
    )
    exponents = lyapunov_exponents(
        model, h0, torch.zeros(1), transient=50.0, num_exponents=1, **options
    )
    return float(exponents)


def summary(samples: list[float]) -> tuple[float, float, float]:
    """Mean over networks and the half-widths below and above it of the t interval."""
    lo, hi = t_interval(np.array(samples))
    mean = float(np.mean(samples))
    return mean, mean - lo, hi - mean


# %%
# The discrete map against mean-field theory
# ------------------------------------------
# One Euler step of size 1 of the field is the map h <- tanh(g W h), so its exponent is per step.
# The measurement follows the mean-field curve, a little below it at N = 200 (a finite-size
# effect that shrinks with N: the study ``chaos`` measures it).

gains = np.array([0.5, 0.8, 1.0, 1.5, 2.0, 3.0])
discrete = np.array(
    [summary([largest_exponent(network(g, s), s, continuous=False) for s in SEEDS]) for g in gains]
)
theory = lyapunov_exponent(gains)
print("gain   measured (95% interval)        mean field")
for g, (mean, below, above), t in zip(gains, discrete, theory, strict=True):
    print(f"{g:4.2f}  {mean:+.3f} [{mean - below:+.3f}, {mean + above:+.3f}]   {t:+.3f}")

# %%
# The continuous field against the transition at g = 1
# ----------------------------------------------------
# Below g = 1 the origin of a given W is stable while -1 + g max Re eig(W) < 0, and then it is
# the attractor: the exponent is that number, which tends to g - 1 as N grows (the circular law
# puts the eigenvalues of W in the unit disc). Above the transition a finite network may still
# settle on a fixed point or a limit cycle (exponent <= 0) instead of chaos, the more often the
# closer g is to 1; the chaotic ones have small positive exponents.

continuous_gains = np.array([0.5, 0.8, 1.2, 1.6, 2.0, 3.0])
continuous = []
chaotic = []
for g in continuous_gains:
    samples = [largest_exponent(network(g, s), s, continuous=True) for s in SEEDS]
    continuous.append(summary(samples))
    chaotic.append(sum(value > 0 for value in samples))
continuous = np.array(continuous)


def origin_exponent(model: rnnode.ODERNN) -> float:
    """-1 + max Re eig(g W): the largest real part of the Jacobian at h = 0."""
    return -1 + float(torch.linalg.eigvals(model.layers[0].weight_hh.detach()).real.max())


origin = np.array(
    [np.mean([origin_exponent(network(g, s)) for s in SEEDS]) for g in continuous_gains]
)
print("gain   measured (95% interval)       at the origin   chaotic networks")
for g, (mean, below, above), o, c in zip(
    continuous_gains, continuous, origin, chaotic, strict=True
):
    print(
        f"{g:4.2f}  {mean:+.3f} [{mean - below:+.3f}, {mean + above:+.3f}]   {o:+.3f}"
        f"          {c} of {len(SEEDS)}"
    )

# %%
# The figure
# ----------
# Left, the map per step with the mean-field curve; right, the field per unit time with the
# N -> infinity exponent g - 1 below the transition, the exponent at the origin of the same
# networks while the origin is stable, and the transition itself.

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
fine = np.linspace(gains.min(), gains.max(), 200)
left.plot(fine, lyapunov_exponent(fine), "k--", lw=1.5, label="mean field (Molgedey et al.)")
left.errorbar(
    gains,
    discrete[:, 0],
    yerr=discrete[:, 1:].T,
    fmt="o",
    color="C0",
    capsize=3,
    label=f"measured, N = {SIZE}: mean of {len(SEEDS)} networks, t 95% interval",
)
left.axhline(0, color="0.6", lw=0.8)
left.set_xlabel("gain g")
left.set_ylabel("largest Lyapunov exponent (per step)")
left.set_title("Discrete map h <- tanh(g W h)", fontsize=10)
left.legend(fontsize=8)

below = np.linspace(continuous_gains.min(), 1.0, 50)
right.plot(below, below - 1, "k--", lw=1.5, label="mean field: g - 1 (N -> infinity)")
right.axvline(1.0, color="k", ls=":", lw=1, label="mean-field transition to chaos, g = 1")
stable_origin = np.where(origin <= 0, origin, np.nan)  # only where the origin is stable
right.plot(
    continuous_gains,
    stable_origin,
    "s:",
    color="C1",
    ms=4,
    label="-1 + max Re eig(g W): the stable origin, mean",
)
right.errorbar(
    continuous_gains,
    continuous[:, 0],
    yerr=continuous[:, 1:].T,
    fmt="o",
    color="C2",
    capsize=3,
    label=f"measured, N = {SIZE}: mean of {len(SEEDS)} networks, t 95% interval",
)
right.axhline(0, color="0.6", lw=0.8)
right.set_xlabel("gain g")
right.set_ylabel("largest Lyapunov exponent (per unit time)")
right.set_title("Continuous field dh/dt = -h + tanh(g W h)", fontsize=10)
right.legend(fontsize=8)
plt.show()
