"""
A symbolic gain with sympy, against the numeric response
========================================================

For linear layers the frequency response has a closed form. A scalar layer
h_t = a h_{t-1} + x_t has the gain 1 / sqrt(a^2 - 2 a cos(omega) + 1);
:func:`rnnode.analysis.linear_gain` derives it with sympy, and
:func:`rnnode.analysis.stack_gain` does the same for a whole stack, where layer l is driven by
layer l-1 at the same step. This example derives the gains of a 2-layer stack with symbolic
weights, substitutes numbers, and compares the formula with sine probes of the model
(:func:`rnnode.analysis.measure_gain`) and with its linearisation
(:func:`rnnode.analysis.frequency_response`).
"""

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch

import rnnode
from rnnode.analysis import frequency_response, linear_gain, measure_gain, plot_gain, stack_gain

torch.manual_seed(0)  # the weights are set by hand below; seeded all the same
torch.set_default_dtype(torch.float64)

# %%
# The formulas
# ------------

print("one layer:", linear_gain())
a1, a2 = sp.symbols("a_1 a_2", real=True)
gains = stack_gain([a1, a2])  # W_ih = 1: each layer feeds the next unscaled
for layer, gain in enumerate(gains, start=1):
    print(f"layer {layer}:", sp.simplify(gain))

# %%
# Substitute a low-pass first layer (a_1 = 0.8) and a high-pass second layer (a_2 = -0.5); the
# second layer's gain is the product of the two layers' own gains.

weights = {a1: sp.Rational(4, 5), a2: sp.Rational(-1, 2)}
omega = next(s for s in gains[0].free_symbols if s.name == "omega")
formula = [sp.lambdify(omega, g.subs(weights), "numpy") for g in gains]

# %%
# The same stack as a model
# -------------------------
# ``cell="linear"`` layers without bias, their scalar weights set by hand.

model = rnnode.ODERNN(1, 1, num_layers=2, cell="linear", bias=False)
with torch.no_grad():
    for field, a in zip(model.layers, [0.8, -0.5], strict=True):
        field.weight_ih.fill_(1.0)
        field.weight_hh.fill_(a)

omegas = np.geomspace(0.05, 3.0, 12)
measured = measure_gain(model, omegas, amplitude=1.0, num_steps=400)
linearised = frequency_response(model, omegas, h=torch.zeros(2, 1), x=torch.zeros(1)).gain
theory = np.array([f(omegas) for f in formula])
print(f"sine probes against the formula: {np.abs(measured.numpy() / theory - 1).max():.1e}")
print(f"linearisation against the formula: {np.abs(linearised.numpy() / theory - 1).max():.1e}")

# %%
# The figure: probes as points, the formula dashed on top.

dense = np.geomspace(0.05, 3.0, 200)
fig = plot_gain(
    omegas,
    measured,
    theory=np.array([f(dense) for f in formula]),
    theory_omegas=dense,
    labels=["layer 1 (a = 0.8)", "layer 2 (a = -0.5)"],
    theory_source="sympy formula",
)
plt.figure(fig)  # hand rnnode's Figure to pyplot (matplotlib >= 3.11), which shows it
plt.show()
