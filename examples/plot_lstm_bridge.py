"""
Bridge a trained torch LSTM and solve it continuously
=====================================================

A ``torch.nn.LSTM`` is the Euler discretisation, with step 1 and a held input, of a
continuous-time system: :func:`rnnode.from_torch` makes that system an :class:`rnnode.ODERNN`
with the same weights, whose default solve returns the LSTM's numbers. The same weights can then
be solved as an ODE: with the layers coupled at every instant (``coupling="continuous"``), a
smooth input path, and any step size or tolerance. This example trains a small LSTM, checks the
bridge, and measures how far the continuous solves lie from the discrete model against the
number of function evaluations (NFE) they take.
"""

import matplotlib.pyplot as plt
import torch

import rnnode
from rnnode.training import sines_task

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

# %%
# Train an LSTM on two superposed sines
# -------------------------------------
# :func:`rnnode.training.sines_task` asks for the slow and the fast component of a noisy sum;
# its tensors are batch first.

task = sines_task(num_train=128, num_test=32, length=48, seed=0)
lstm = torch.nn.LSTM(task.x_train.shape[-1], 16, num_layers=2, batch_first=True)
head = torch.nn.Linear(16, task.output_size)
optimiser = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-2)
for _step in range(60):
    loss = ((head(lstm(task.x_train)[0]) - task.y_train) ** 2).mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
print(f"training loss after 60 steps: {loss.item():.4f}")

# %%
# The bridge is exact
# -------------------
# With no solver arguments the model steps Euler with step 1 on the held input: torch's LSTM.

model = rnnode.from_torch(lstm)
x = task.x_test
with torch.no_grad():
    reference, _ = lstm(x)
    output, (h_n, c_n) = model(x)
print(f"bridge: max |rnnode - torch| = {(output - reference).abs().max():.1e}")

# %%
# Solve the same weights as an ODE
# --------------------------------
# RK4 with steps of 1, 1/2, ..., 1/16 and dopri5 at tolerances from 1e-2 to 1e-7, all with
# continuous coupling and a linearly interpolated input. ``Solution.stats`` holds the solver
# statistics of each solved ODE; their NFE summed is the cost. The finest dopri5 solve is the
# reference of the continuous system.

settings = dict(coupling="continuous", interpolation="linear")
with torch.no_grad():
    exact = model.solve(x, method="dopri5", rtol=1e-10, atol=1e-10, **settings).output


def cost_and_error(solution):
    nfe = sum(stats.nfe for stats in solution.stats.values())
    return nfe, (solution.output - exact).abs().max().item()


rk4 = []
for step_size in [1.0, 0.5, 0.25, 0.125, 0.0625]:
    with torch.no_grad():
        rk4.append(cost_and_error(model.solve(x, method="rk4", step_size=step_size, **settings)))
dopri5 = []
for tol in [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]:
    with torch.no_grad():
        dopri5.append(
            cost_and_error(model.solve(x, method="dopri5", rtol=tol, atol=tol, **settings))
        )
for (nfe, error), step_size in zip(rk4, [1.0, 0.5, 0.25, 0.125, 0.0625], strict=True):
    print(f"rk4, step {step_size:<6}: NFE {nfe:5d}, error {error:.1e}")

# %%
# The continuous system is not the discrete one: the LSTM's output differs from the ODE
# solution by far more than the solvers' errors (the Euler step of size 1 is coarse).

discrete_gap = (reference - exact).abs().max().item()
print(f"discrete LSTM against the ODE solution: {discrete_gap:.2f}")

fig, ax = plt.subplots(layout="constrained", figsize=(6, 4))
ax.loglog(*zip(*rk4, strict=True), "o-", label="RK4, step 1 to 1/16")
ax.loglog(*zip(*dopri5, strict=True), "s-", label="dopri5, tolerance 1e-2 to 1e-7")
ax.axhline(discrete_gap, color="k", ls="--", label="discrete LSTM (Euler, step 1)")
ax.set_xlabel("function evaluations (NFE)")
ax.set_ylabel("max |output - reference|")
ax.set_title("Continuous solves of a trained 2-layer LSTM")
ax.legend()
plt.show()
