"""
Linearise a stack: Bode plot and eigenvalues
============================================

Around a state h and a constant input x, a stack is a linear system: one step of the solve is
s_{k+1} = A s_k + B u_k with outputs y_k = C s_k + D u_k (every layer's hidden units).
:func:`rnnode.analysis.linearize` returns it as a :class:`~rnnode.analysis.StateSpace` from the
exact Jacobians, :func:`rnnode.analysis.frequency_response` evaluates
H(omega) = C (e^{i omega} I - A)^{-1} B + D with gain and phase per unit, and the eigenvalues of
A say whether the state is stable. The numbers are checked against ``scipy.signal`` and against
sine probes of the nonlinear model (:func:`rnnode.analysis.measure_response`).
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

import rnnode
from rnnode.analysis import (
    frequency_response,
    linearize,
    measure_response,
    plot_bode,
    plot_eigenvalues,
)

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

# %%
# A 3-layer tanh stack, linearised at rest
# ----------------------------------------
# Leaky layers (tau = 4) low-pass their input; stacked, each filters the one below. Without
# biases the zero state at zero input is a fixed point, the state the probes below start from
# and oscillate around (with biases, linearise at the fixed point that ``find_fixed_points``
# finds instead).

model = rnnode.ODERNN(1, 6, num_layers=3, tau=4.0, bias=False)
h = torch.zeros(3, 6)  # (num_layers, state_size): the resting state
x = torch.zeros(1)
system = linearize(model, h, x)  # discrete: one Euler step of size 1
print(f"A {tuple(system.A.shape)}, B {tuple(system.B.shape)}, C {tuple(system.C.shape)}")

omegas = np.logspace(-2, np.log10(3.0), 60)
response = frequency_response(system, omegas, num_layers=3)

# %%
# The same numbers from numpy, and from sine probes of the nonlinear model
# -------------------------------------------------------------------------
# An independent check: ``numpy.linalg.solve`` of the full 18 x 18 system per frequency
# (``frequency_response`` solves block by block over the layers). ``StateSpace.to_scipy()``
# hands the system to ``scipy.signal`` as a ``dlti`` for its other tools. Sine probes of small
# amplitude drive the nonlinear model itself and read gain and phase off its output.

A, B, C, D = (m.numpy() for m in system)
direct = np.stack([C @ np.linalg.solve(np.exp(1j * w) * np.eye(len(A)) - A, B) + D for w in omegas])
print(
    f"frequency_response against numpy.linalg.solve: "
    f"{np.abs(direct - response.response.numpy()).max():.1e}"
)
print(f"as scipy sees it: {type(system.to_scipy()).__name__}")

probe_omegas = omegas[20::8]
measured = measure_response(model, probe_omegas, amplitude=1e-6, num_steps=400)
gain_error = (measured.gain / response.gain[:, 20::8] - 1).abs().max()
print(f"sine probes against the linearisation: relative gain difference {gain_error:.1e}")

# %%
# The Bode plot: unit 0 of each layer, the linearisation solid and the probes dashed. Each layer
# lags further behind and passes less of the high frequencies.

fig = plot_bode([response, measured], units=[(0, 0), (1, 0), (2, 0)])
plt.figure(fig)  # hand rnnode's Figure to pyplot (matplotlib >= 3.11), which shows it
plt.show()

# %%
# Eigenvalues of the step map
# ---------------------------
# The multipliers of A lie inside the unit circle: the resting state is stable, and the
# multipliers near 1 (slow decay, 1 - 1/tau per step and the recurrent weights' spread) are the
# layers' long timescales.

multipliers = torch.linalg.eigvals(system.A)
print(f"largest |multiplier|: {multipliers.abs().max():.3f}")
layers = [
    torch.linalg.eigvals(system.A[6 * l : 6 * (l + 1), 6 * l : 6 * (l + 1)]) for l in range(3)
]
fig = plot_eigenvalues(layers, kind="discrete")
plt.figure(fig)
plt.show()
