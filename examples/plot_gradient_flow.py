"""
Gradient flow through depth and time
====================================

A loss on the last output of a stack sends its gradient back through time (within each layer)
and through depth (down the layers). :func:`rnnode.analysis.gradient_norms` measures
``||dLoss/dh_t^l||`` for every layer l and sample time t from one backward pass, and
:func:`rnnode.analysis.depth_singular_values` the singular values of the Jacobian products
dh^l/dh^1 through depth. This example compares a plain 6-layer tanh stack with the same stack
whose layers also read the layer two below (``skips=(1, 2)``): the skips open more paths down
the stack (:func:`rnnode.analysis.count_gradient_paths`) and the gradient reaches the bottom
layers less attenuated.
"""

import matplotlib.pyplot as plt
import torch

import rnnode
from rnnode.analysis import (
    count_gradient_paths,
    depth_singular_values,
    gradient_norms,
    plot_gradient_norms,
)

torch.set_default_dtype(torch.float64)

T, batch, layers, hidden = 40, 8, 6, 16
x = torch.randn(T, batch, 4, generator=torch.Generator().manual_seed(0))


def last_output_loss(output, h_n):
    return output[-1].pow(2).sum()


models = {}
for skips in [(1,), (1, 2)]:
    torch.manual_seed(0)  # the same weights for the shared parameters
    models[skips] = rnnode.ODERNN(4, hidden, num_layers=layers, skips=skips)

# %%
# Through time and depth
# ----------------------
# The gradient norm at every layer and sample time (log scale): it is largest at the top layer
# and the last time, and shrinks going back in time and down the stack.

norms = {skips: gradient_norms(model, x, last_output_loss) for skips, model in models.items()}
fig = plot_gradient_norms(norms[(1,)])
fig.axes[0].set_title("Plain stack: log10 ||dLoss/dh_t^l||")
plt.figure(fig)  # hand rnnode's Figure to pyplot (matplotlib >= 3.11), which shows it
plt.show()

# %%
# With skips (1, 2) the bottom layers receive more.

fig = plot_gradient_norms(norms[(1, 2)])
fig.axes[0].set_title("Skips (1, 2): log10 ||dLoss/dh_t^l||")
plt.figure(fig)
plt.show()

for skips, n in norms.items():
    paths = count_gradient_paths(layers, skips)
    print(
        f"skips {skips}: {paths} paths from the top layer down to layer 1; "
        f"gradient at layer 1, last time: {n[0, -1]:.2e} (top: {n[-1, -1]:.2e})"
    )

# %%
# Through depth alone
# -------------------
# The singular values of dh^l/dh^1 at the zero state, layer by layer: the largest and the
# smallest. Without skips they fall geometrically with depth.

h0 = torch.zeros(layers, hidden)
fig, ax = plt.subplots(layout="constrained", figsize=(6, 4))
for (skips, model), colour in zip(models.items(), ["C0", "C1"], strict=True):
    s = depth_singular_values(model, h0, torch.zeros(4))
    label = "plain" if skips == (1,) else "skips (1, 2)"
    ax.semilogy(range(1, layers + 1), s[:, 0], "o-", color=colour, label=f"{label}: largest")
    ax.semilogy(range(1, layers + 1), s[:, -1], "s--", color=colour, label=f"{label}: smallest")
ax.set_xlabel("layer l")
ax.set_ylabel("singular value of dh^l / dh^1")
ax.set_xticks(range(1, layers + 1))
ax.set_title("Jacobian products through depth at the zero state")
ax.legend()
plt.show()
