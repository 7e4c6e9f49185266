"""
Fixed points of a GRU trained on the 3-bit flip-flop
=====================================================

Sussillo & Barak (2013) trained an RNN to hold three bits, each set by the sign of the last pulse
on its input channel, and found the memories as stable fixed points of the network at zero input,
one per corner of the cube, with saddle points between them. Here a small ``torch.nn.GRU`` is
trained on :func:`rnnode.training.flip_flop_task`, bridged with :func:`rnnode.from_torch`, and
its fixed points are found by :func:`rnnode.analysis.find_fixed_points` from states on its own
trajectories, then drawn in the trajectories' principal components by
:func:`rnnode.analysis.plot_fixed_points`.
"""

import matplotlib.pyplot as plt
import torch

import rnnode
from rnnode.analysis import find_fixed_points, plot_fixed_points, trajectory_starts
from rnnode.training import flip_flop_task

torch.manual_seed(0)

# %%
# Train a GRU with plain torch
# ----------------------------
# The task's tensors are batch first, (N, T, 3) inputs of sparse +-1 pulses and (N, T, 3)
# targets. A GRU of 16 units and a linear readout learn it in 600 Adam steps.

task = flip_flop_task(num_train=512, num_test=64, length=40, seed=0)
gru = torch.nn.GRU(3, 16, batch_first=True)
head = torch.nn.Linear(16, 3)
optimiser = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=1e-2)
generator = torch.Generator().manual_seed(0)
for _step in range(600):
    batch = torch.randint(len(task.x_train), (64,), generator=generator)
    loss = ((head(gru(task.x_train[batch])[0]) - task.y_train[batch]) ** 2).mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
with torch.no_grad():
    test_mse = ((head(gru(task.x_test)[0]) - task.y_test) ** 2).mean()
print(f"test mean squared error: {test_mse:.4f}")

# %%
# Bridge it and search for fixed points
# -------------------------------------
# The bridged model reproduces the GRU exactly (Euler, step 1, held input). The discrete map's
# fixed points at zero input are the minima of ``q(h) = |step(h) - h|^2 / 2``; the search starts
# from 256 states the network visits on test sequences.

model = rnnode.from_torch(gru.double())
x_test = task.x_test.double().transpose(0, 1)  # (T, batch, 3): time first, as torch.nn.GRU
with torch.no_grad():
    solution = model.solve(x_test)
starts = trajectory_starts(solution, 256, seed=0)
found = find_fixed_points(
    model, torch.zeros(3, dtype=torch.float64), starts, kind="discrete", noise=0.05, opt_steps=300
)
fixed = found.is_fixed
classes = [c for c, f in zip(found.classification, fixed.tolist(), strict=True) if f]
print(
    f"{int(fixed.sum())} fixed points: {classes.count('stable')} stable, "
    f"{classes.count('saddle')} saddles"
)

# %%
# Where the stable points sit: the readout of each is a corner of the cube (the sign pattern of
# the three remembered bits).

with torch.no_grad():
    stable = [i for i, c in enumerate(found.classification) if c == "stable" and fixed[i]]
    corners = torch.sign(head.double()(found.points[stable, -1]))
print("readout signs of the stable points:")
print(corners.int())

# %%
# The figure: the trajectories and the fixed points in the top three principal components of
# the states, stable points filled, saddles open.

trajectories = solution.states[-1, 0, 1:].transpose(0, 1)  # (batch, T, hidden): top layer
fig = plot_fixed_points(found, trajectories, title="GRU on the 3-bit flip-flop")
plt.figure(fig)  # hand rnnode's Figure to pyplot (matplotlib >= 3.11), which shows it
plt.show()
