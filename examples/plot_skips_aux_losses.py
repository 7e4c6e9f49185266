"""
Skip connections and auxiliary losses in training
=================================================

Two remedies for a deep stack that trains slowly: skip connections (layer l also reads layer
l-2: ``skips=(1, 2)``), and auxiliary losses (a readout on a lower layer adds its task loss,
weighted: ``SequenceModel(..., aux_weights={layer: weight})``), which send a gradient straight
into the bottom of the stack. This example trains a 5-layer tanh stack on
:func:`rnnode.training.sines_task` (read the slow and the fast sine out of their noisy sum)
four ways with :func:`rnnode.training.train`, same seed and steps, and compares the training
curves and test errors.
"""

import matplotlib.pyplot as plt
import torch

import rnnode
from rnnode.training import SequenceModel, sines_task, train

task = sines_task(num_train=128, num_test=64, length=24, seed=0)

variants = {
    "plain": dict(skips=(1,), aux_weights=None),
    "skips (1, 2)": dict(skips=(1, 2), aux_weights=None),
    "auxiliary losses on layers 1 and 3": dict(skips=(1,), aux_weights={0: 0.3, 2: 0.3}),
    "both": dict(skips=(1, 2), aux_weights={0: 0.3, 2: 0.3}),
}

results = {}
for name, variant in variants.items():
    torch.manual_seed(0)  # the same initial weights in every variant
    rnn = rnnode.ODERNN(task.x_train.shape[-1], 12, num_layers=5, skips=variant["skips"])
    model = SequenceModel(rnn, task.output_size, per_step=True, aux_weights=variant["aux_weights"])
    results[name] = train(model, task, steps=60, lr=1e-2, batch_size=32, seed=0, progress=False)
    print(f"{name:36s} test RMSE {results[name]['test']['rmse']:.3f}")

# %%
# The training curves. With auxiliary losses the recorded loss includes the auxiliary terms;
# the task loss alone is the history's ``task`` part, drawn here.

fig, ax = plt.subplots(layout="constrained", figsize=(6, 4))
for name, result in results.items():
    history = result["history"]
    task_loss = history.get("task", history["loss"])
    ax.semilogy(history["step"], task_loss, label=name)
ax.set_xlabel("training step")
ax.set_ylabel("task loss (mean squared error)")
ax.set_title("A 5-layer tanh stack on the two-sines task")
ax.legend()
plt.show()
