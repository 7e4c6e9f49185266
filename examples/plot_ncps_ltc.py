"""
A liquid time-constant network from ncps: fixed points and eigenvalues
======================================================================

A liquid time-constant (LTC) layer (Hasani et al., AAAI 2021) is the ODE
cm dv/dt = -gleak (v - vleak) - sum_j w_j s_j(.) (v - erev_j): every synapse is a conductance
gated by a sigmoid of the presynaptic potential, so the time constant of each neuron changes
with the state and the input. ``ncps.torch.LTC`` integrates it with 6 fused semi-implicit
Euler steps per sample. Here an ``ncps.torch.LTC`` with an ``AutoNCP`` wiring is trained briefly
with ncps's own step on a sine task, moved to rnnode with :func:`rnnode.from_ncps` (the same
parameters: the outputs agree to rounding), and then read as the continuous-time system its
weights stand for: :func:`rnnode.analysis.find_fixed_points` finds the fixed points of the
ODE for inputs held constant, :func:`rnnode.analysis.plot_fixed_points` draws them among the
network's trajectories, and :func:`rnnode.analysis.plot_eigenvalues` draws the eigenvalues of
the Jacobian at them (``kind="continuous"``). Needs ncps: ``pip install "rnnode[ncps]"``.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from ncps import wirings
from ncps.torch import LTC

import rnnode
from rnnode.analysis import (
    STEP_POLYNOMIALS,
    find_fixed_points,
    plot_eigenvalues,
    plot_fixed_points,
)

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # Newton's polish of the fixed points needs float64
torch.set_num_threads(1)  # 12 neurons: threads would only wait on each other

# %%
# The task and a brief training with ncps
# ---------------------------------------
# Sequence i turns the input x_k = (sin theta_k, cos theta_k) around the unit circle, with
# theta_k = omega_i k + phi_i at samples k = 1..48 (one time unit apart) and a random frequency
# and phase per sequence; the target is sin(2 theta_k), the doubled frequency. The network has
# 12 neurons wired by ``AutoNCP(12, 1)`` (inter, command and one motor neuron read out).


def sine_task(count: int, rng: np.random.Generator, length: int = 48):
    """x (count, length, 2) = (sin, cos) of theta_k; y (count, length, 1) = sin(2 theta_k)."""
    omega = rng.uniform(0.5, 1.5, size=(count, 1)) * 3 * math.pi / length
    phi = rng.uniform(0.0, 2 * math.pi, size=(count, 1))
    theta = omega * np.arange(1, length + 1) + phi
    x = np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    return torch.as_tensor(x), torch.as_tensor(np.sin(2 * theta)[..., None])


rng = np.random.default_rng(0)
x_train, y_train = sine_task(64, rng)
x_test, y_test = sine_task(16, rng)

module = LTC(2, wirings.AutoNCP(12, 1, seed=0), batch_first=True).double()
optimiser = torch.optim.Adam(module.parameters(), lr=0.02)
generator = torch.Generator().manual_seed(0)
for _step in range(150):
    batch = torch.randperm(len(x_train), generator=generator)[:16]
    loss = ((module(x_train[batch])[0] - y_train[batch]) ** 2).mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
with torch.no_grad():
    test_mse = ((module(x_test)[0] - y_test) ** 2).mean()
print(f"test mean squared error after 150 Adam steps: {test_mse:.4f} (target variance 0.5)")

# %%
# Move it to rnnode
# -----------------
# :func:`rnnode.from_ncps` copies the parameters into an :class:`rnnode.LTC` whose default solve
# is ncps's fused step, so the two agree to rounding; ``model.solve`` returns every state.

model = rnnode.from_ncps(module)
with torch.no_grad():
    gap = (model(x_test)[0] - module(x_test)[0]).abs().max()
    solution = model.solve(x_test)  # states (num_layers, 1, T + 1, batch, hidden)
print(f"bridge: max |rnnode - ncps| over the test outputs = {gap:.1e}")

# %%
# Fixed points of the ODE at held inputs
# --------------------------------------
# For an input x held constant the LTC relaxes to a fixed point of dv/dt = F(v, x). Four
# inputs on the task's circle (angles 0, 90, 180 and 270 degrees) each get a search from 64
# states the network visits on the test sequences.

starts_all = solution.states[:, 0].permute(1, 2, 0, 3).reshape(-1, 1, model.hidden_size)
pick = torch.linspace(0, len(starts_all) - 1, 64).round().long()
angles = [0, 90, 180, 270]
found = {}
for angle in angles:
    a = math.radians(angle)
    x = torch.tensor([math.sin(a), math.cos(a)])
    found[angle] = find_fixed_points(model, x, starts_all[pick])
    fixed = found[angle].is_fixed
    classes = [c for c, f in zip(found[angle].classification, fixed.tolist(), strict=True) if f]
    slowest = -1 / found[angle].eigenvalues[fixed].real.max(dim=-1).values
    print(
        f"input at {angle:3d} degrees: {len(classes)} fixed point(s), "
        f"{classes.count('stable')} stable; slowest time constant "
        f"-1 / max Re(lambda) = {slowest.max():.2f} time units"
    )

# %%
# The fixed points among the trajectories
# ---------------------------------------
# The test trajectories (driven by the turning input) and the fixed points of the four held
# inputs, in the top three principal components of the trajectories' states. The fixed points
# of the four searches are drawn together (``plot_fixed_points`` reads any object with
# ``points``, ``classification`` and ``is_fixed``).


class AllPoints:
    """The fixed points of every held input, as one ``FixedPoints``-like object."""

    def __init__(self, results):
        kept = [r.is_fixed for r in results]
        self.points = torch.cat([r.points[k] for r, k in zip(results, kept, strict=True)])
        self.is_fixed = torch.cat([r.is_fixed[k] for r, k in zip(results, kept, strict=True)])
        self.classification = [
            c
            for r, k in zip(results, kept, strict=True)
            for c, f in zip(r.classification, k.tolist(), strict=True)
            if f
        ]


trajectories = solution.states[0, 0].transpose(0, 1)  # (batch, T + 1, hidden)
fig = plot_fixed_points(
    AllPoints(list(found.values())),
    trajectories,
    title="LTC on the sine task: fixed points at four held inputs",
)
plt.figure(fig)  # hand rnnode's Figure to pyplot (matplotlib >= 3.11), which shows it
plt.show()

# %%
# Eigenvalues at the fixed points
# -------------------------------
# Drawn as dt * lambda with dt = 1, the sample interval, against the stability regions
# {z : abs(R(z)) <= 1} of Euler and RK4 (``rnnode.analysis.STEP_POLYNOMIALS``): an explicit
# solver taking one step per sample is stable at a fixed point only where all of its points lie
# inside the region. ncps's fused step is semi-implicit and needs no such bound.

eigen = [r.eigenvalues[r.is_fixed].reshape(-1) for r in found.values()]
every = torch.cat(eigen).numpy()
print(f"eigenvalues at the fixed points: {every.size}, largest real part {every.real.max():.3f}")
for method in ("euler", "rk4"):
    inside = np.abs(np.polynomial.polynomial.polyval(every, STEP_POLYNOMIALS[method])) <= 1
    print(f"  inside the {method} region at dt = 1: {int(inside.sum())} of {every.size}")
fig = plot_eigenvalues(
    eigen, kind="continuous", dt=1.0, labels=[f"input at {a} degrees" for a in angles]
)
fig.axes[0].set_title("Jacobian eigenvalues of the LTC at its fixed points")
plt.figure(fig)
plt.show()
