"""
A stability map with the solvers' stability regions
===================================================

A continuous-time stack can be stable while the discrete RNN that steps it is not, and the other
way round. :func:`rnnode.analysis.stability_map` finds the fixed point over a grid of two
parameters (here: a scale p of every recurrent weight matrix, and a constant input level q) and
reports, at each, the largest real part of the Jacobian's eigenvalues (the ODE's stability) and
the spectral radius of one solver step of size dt (the discretisation's stability). Where the
two disagree, some dt * lambda lies outside the solver's stability region, which
:func:`rnnode.analysis.plot_eigenvalues` draws.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

import rnnode
from rnnode.analysis import eigenvalues, plot_eigenvalues, plot_stability_map, stability_map

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

# %%
# Map a 2-layer tanh stack with time constant 0.6
# -----------------------------------------------
# A time constant below 1 makes the relaxation fast: an Euler step of size 1 overshoots.

model = rnnode.ODERNN(2, 8, num_layers=2, tau=0.6)
p = np.linspace(0.2, 3.0, 24)  # recurrent weight scale
q = np.linspace(-2.0, 2.0, 24)  # input level
euler = stability_map(model, p, q, method="euler", dt=1.0)
rk4 = stability_map(model, p, q, h0=euler.fixed_points, method="rk4", dt=1.0)
ode_stable = euler.max_real < 0
print(f"grid points where the ODE is stable: {int(ode_stable.sum())} of {ode_stable.numel()}")
for name, smap in [("Euler", euler), ("RK4", rk4)]:
    both = (ode_stable & (smap.spectral_radius < 1)).sum()
    print(f"  of them with a stable {name} step of size 1: {int(both)}")

# %%
# The ODE (left) and the Euler step map (right)
# ---------------------------------------------

fig = plot_stability_map(euler, p_label="recurrent weight scale p", q_label="input level q")
plt.figure(fig)  # hand rnnode's Figure to pyplot (matplotlib >= 3.11), which shows it
plt.show()

# %%
# RK4's step map: its larger stability region keeps more of the ODE's stable fixed points
# stable.

fig = plot_stability_map(
    rk4, p_label="recurrent weight scale p", q_label="input level q", panels=("spectral_radius",)
)
plt.figure(fig)
plt.show()

# %%
# The eigenvalues at one grid point against the regions
# -----------------------------------------------------
# At p = 1 and q = 0 the scaled eigenvalues dt * lambda of the Jacobian at the fixed point,
# with the boundary of each method's region ``{z : |R(z)| <= 1}``: a step is stable where every
# point lies inside.

i, j = np.argmin(np.abs(p - 1.0)), np.argmin(np.abs(q))
layers = eigenvalues(model, euler.fixed_points[i, j], torch.zeros(2))
fig = plot_eigenvalues(layers, kind="continuous", dt=1.0, methods=("euler", "rk4"))
plt.figure(fig)
plt.show()
