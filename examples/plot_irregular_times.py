"""
Sequences observed at their own times
=====================================

Clinical records, sensors that report on change, event streams: each sequence arrives at its own
irregular times. A continuous-time RNN takes them as they are. A call with ``t`` of shape
``(T + 1, batch)`` solves every sequence on its own time grid, all in one batched solve; with
``interpolation="causal"`` the input between observations is the last observation carried
forward, so nothing from the future leaks into the past. This example checks the batched solve
against solving each sequence alone and draws the hidden state between the observations.
"""

import matplotlib.pyplot as plt
import torch

import rnnode

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

# %%
# Three sequences of 12 observations at random times
# --------------------------------------------------
# ``t[0]`` is the start time, ``t[1:]`` the observation times of each sequence (column).

T, batch = 12, 3
gaps = torch.distributions.Exponential(1.0).sample((T, batch)) + 0.05
t = torch.cat([torch.zeros(1, batch), gaps.cumsum(0)])  # (T + 1, batch)
x = torch.randn(T, batch, 1)  # one observation per time
model = rnnode.ODERNN(1, 8, num_layers=2, cell="gru", tau=2.0)

# %%
# One batched solve against one solve per sequence
# ------------------------------------------------
# dopri5 steps exactly onto each sequence's own times; the per-sequence solves use the same
# tolerances. The layers are coupled at every instant (``coupling="continuous"``), so that the
# solution does not depend on the grid the layers exchange their outputs on. The two agree to
# the tolerance, not to rounding: the batched solve's step-size control sees every sequence.

settings = dict(method="dopri5", rtol=1e-9, atol=1e-9, coupling="continuous")
settings["interpolation"] = "causal"
with torch.no_grad():
    together = model.solve(x, t=t, **settings)
    alone = [model.solve(x[:, b], t=t[:, b], **settings) for b in range(batch)]
difference = max((together.output[:, b] - alone[b].output).abs().max().item() for b in range(batch))
print(f"batched against one by one: max difference {difference:.1e}")

# %%
# The hidden state between the observations
# -----------------------------------------
# To see the trajectory between samples, each sequence is solved again on a fine grid that
# contains its observation times, with the input on each fine interval the last observation
# before it (zero before the first): the causal path, written out. The fine solve passes
# through the batched solve's outputs (the dots).

fig, axes = plt.subplots(batch, 1, sharex=True, layout="constrained", figsize=(6, 6))
for b, ax in enumerate(axes):
    times = t[:, b].contiguous()
    grid = torch.unique(torch.cat([torch.linspace(0, float(times[-1]), 300), times]))
    last = torch.searchsorted(times[1:], grid[1:], right=False) - 1  # observed before
    held = torch.where(last[:, None] >= 0, x[last.clamp(min=0), b], torch.zeros(1))
    with torch.no_grad():
        fine = model.solve(held, t=grid, **{**settings, "interpolation": "hold"})
    h = fine.states[-1, 0, :, :3]  # top layer, 3 of its 8 units, at every fine time
    at_samples = h[torch.searchsorted(grid, times[1:])]
    print(
        f"sequence {b + 1}: fine solve against the batched one at the observations: "
        f"{(at_samples - together.output[:, b, :3]).abs().max():.1e}"
    )
    ax.plot(grid, h, lw=1)
    ax.plot(times[1:], together.output[:, b, :3], "k.", ms=4)
    ax.set_ylabel(f"sequence {b + 1}")
axes[0].set_title("Top-layer units between observations (dots: the batched solve)")
axes[-1].set_xlabel("time")
plt.show()
