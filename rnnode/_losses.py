"""Readouts and losses: task losses, auxiliary readout heads on intermediate layers, and the LSTM
gate-coupling penalty.

A ``SequenceModel`` is an ``ODERNN`` with a linear readout on its top layer and, optionally,

- auxiliary readouts on chosen lower layers, L = L_task(top) + sum_l w_l L_task(head_l(h^l)),
  which hand each of those layers an error signal that does not pass through the layers above
  (deep supervision: the remedy for gradients that vanish on their way down the stack);
- for LSTM stacks, the gate-coupling penalty w * mean(relu(1 - o^(l) - i^(l+1))^2) over adjacent
  layers, which pushes a lower layer's output gate and the upper layer's input gate not to be
  closed at the same time, so that information (and gradient) can pass between them.

Its ``loss(x, y)`` returns the total loss and its parts; ``rnnode.train`` drives it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ._stack import ODERNN, Solution
from ._tasks import TASK_KINDS, Task


def task_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """The task's loss: cross-entropy for ``"classification"``, mean squared error otherwise.

    Arguments:
        prediction: (..., outputs) (class scores for classification).
        target: regression targets of ``prediction``'s shape, or (...) int64 class indices.
        kind: one of ``TASK_KINDS``.

    Returns:
        A 0-d tensor, the mean over all entries.
    """
    if kind not in TASK_KINDS:
        raise ValueError(f"kind: expected one of {TASK_KINDS}, got {kind!r}")
    if kind == "classification":
        return F.cross_entropy(prediction.reshape(-1, prediction.shape[-1]), target.reshape(-1))
    if prediction.shape != target.shape:
        raise ValueError(
            f"target: expected the prediction's shape {tuple(prediction.shape)}, "
            f"got {tuple(target.shape)}"
        )
    return F.mse_loss(prediction, target)


def task_metrics(prediction: torch.Tensor, target: torch.Tensor, kind: str) -> dict[str, float]:
    """Plain-number scores: ``loss`` (``task_loss``), plus ``accuracy`` for classification or
    ``rmse`` otherwise."""
    with torch.no_grad():
        loss = float(task_loss(prediction, target, kind))
        if kind == "classification":
            correct = prediction.argmax(dim=-1) == target
            return {"loss": loss, "accuracy": float(correct.double().mean())}
        return {"loss": loss, "rmse": loss**0.5}


def layer_features(solution: Solution, layer: int) -> torch.Tensor:
    """Hidden state of ``layer`` at the sample times t_1..t_T, in ODERNN's output layout.

    Forward direction h(t_k); the reverse direction's output at sample k is its state at t_{k-1}
    (after consuming x_T..x_k), as in ``ODERNN``'s output.

    Returns:
        (T, batch, D * hidden), time first (unbatched: (T, D * hidden)).
    """
    h = solution.hidden[layer]  # (D, T + 1, [batch,] hidden)
    if h.shape[0] == 1:
        return h[0, 1:]
    return torch.cat([h[0, 1:], h[1, :-1]], dim=-1)


def gate_coupling_penalty(gates: Mapping[str, torch.Tensor], weight: float = 1.0) -> torch.Tensor:
    """weight * mean(relu(1 - o_t^(l) - i_t^(l+1))^2) over adjacent layers l, l + 1.

    The mean runs over every adjacent pair, direction, step, sequence and unit. It is zero when
    at every step the lower layer's output gate and the upper layer's input gate sum to at least
    one (neither closes the path between the layers while the other is nearly shut).

    Arguments:
        gates: ``Solution.gates`` of an LSTM stack: ``"i"`` and ``"o"`` of shape
            (num_layers, D, T, batch, hidden), num_layers >= 2.
        weight: the penalty's weight.

    Returns:
        A 0-d tensor.
    """
    if gates is None or "i" not in gates or "o" not in gates:
        raise ValueError(
            "gates: expected LSTM gates with 'i' and 'o' (solve(..., return_gates=True)), "
            f"got {None if gates is None else sorted(gates)}"
        )
    i, o = gates["i"], gates["o"]
    if i.shape[0] < 2:
        raise ValueError(f"gates: expected at least 2 layers to couple, got {i.shape[0]}")
    return weight * torch.relu(1 - o[:-1] - i[1:]).pow(2).mean()


class SequenceModel(nn.Module):
    """An ODERNN with a linear readout on its top layer and optional auxiliary readouts.

    prediction = head(h^top) at every step (``per_step``) or at the last step; the loss is

        L = L_task(prediction, y) + sum_l w_l L_task(head_l(h^l), y) + gate_weight * P_gates,

    with P_gates the ``gate_coupling_penalty`` (LSTM stacks).

    Arguments:
        rnn: the recurrent stack.
        output_size: features of the prediction (classes for classification).
        kind: ``"regression"``, ``"classification"`` or ``"forecast"`` (the loss).
        per_step: predict at every sample time (else from the last one).
        aux_weights: ``{layer: weight}``, 0-based layers below the top that get a readout head.
        gate_weight: weight of the gate-coupling penalty (0: off; LSTM with >= 2 layers).
        solve_options: keyword arguments for every ``rnn.solve`` call (method, step_size, ...).

    Notes:
        Inputs are batch first, (batch, T, input_size), as tasks supply them, whatever
        ``rnn.batch_first`` says.
    """

    def __init__(
        self,
        rnn: ODERNN,
        output_size: int,
        *,
        kind: str = "regression",
        per_step: bool = False,
        aux_weights: Mapping[int, float] | None = None,
        gate_weight: float = 0.0,
        solve_options: Mapping[str, object] | None = None,
    ):
        super().__init__()
        if kind not in TASK_KINDS:
            raise ValueError(f"kind: expected one of {TASK_KINDS}, got {kind!r}")
        aux_weights = dict(aux_weights or {})
        for layer, weight in aux_weights.items():
            if not isinstance(layer, int) or not 0 <= layer < rnn.num_layers - 1:
                raise ValueError(
                    f"aux_weights: expected layers 0..{rnn.num_layers - 2} below the top, "
                    f"got layer {layer!r}"
                )
            if not weight >= 0:
                raise ValueError(f"aux_weights: expected non-negative weights, got {weight!r}")
        if gate_weight and (rnn.cell != "lstm" or rnn.num_layers < 2):
            raise ValueError(
                "gate_weight: the gate-coupling penalty needs an LSTM stack of >= 2 layers, got "
                f"cell={rnn.cell!r}, num_layers={rnn.num_layers}"
            )
        self.rnn = rnn
        self.kind = kind
        self.per_step = per_step
        self.aux_weights = {int(k): float(v) for k, v in sorted(aux_weights.items())}
        self.gate_weight = float(gate_weight)
        self.solve_options = dict(solve_options or {})
        features = rnn.num_directions * rnn.hidden_size
        self.head = nn.Linear(features, output_size)
        self.aux_heads = nn.ModuleDict(
            {str(layer): nn.Linear(features, output_size) for layer in self.aux_weights}
        )

    @classmethod
    def for_task(cls, rnn: ODERNN, task: Task, **kwargs) -> SequenceModel:
        """The model whose readout fits ``task`` (output size, kind, per-step targets)."""
        return cls(rnn, task.output_size, kind=task.kind, per_step=task.per_step, **kwargs)

    def _read(self, head: nn.Module, features: torch.Tensor) -> torch.Tensor:
        # features (T, batch, F) -> (batch, T, out) per step, else (batch, out) at t_T.
        return head(features).transpose(0, 1) if self.per_step else head(features[-1])

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor], Solution]:
        """Solve the stack and read it out.

        Arguments:
            x: (batch, T, input_size).

        Returns:
            ``(prediction, aux_predictions, solution)``: prediction (batch, T, outputs) per step
            or (batch, outputs); ``aux_predictions[layer]`` of the same shape.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a batch-first tensor (batch, T, input_size), got {got}")
        solution = self.rnn.solve(
            x if self.rnn.batch_first else x.transpose(0, 1),
            return_gates=self.gate_weight > 0,
            **self.solve_options,
        )
        top = self._read(self.head, layer_features(solution, self.rnn.num_layers - 1))
        aux = {
            layer: self._read(self.aux_heads[str(layer)], layer_features(solution, layer))
            for layer in self.aux_weights
        }
        return top, aux, solution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The top readout's prediction for x (batch, T, input_size)."""
        return self.run(x)[0]

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its parts as numbers: ``task``, ``auxiliary``, ``gate_penalty``."""
        prediction, aux, solution = self.run(x)
        main = task_loss(prediction, y, self.kind)
        total = main
        parts = {"task": float(main.detach())}
        if aux:
            extra = sum(
                w * task_loss(aux[layer], y, self.kind) for layer, w in self.aux_weights.items()
            )
            total = total + extra
            parts["auxiliary"] = float(extra.detach())
        if self.gate_weight:
            penalty = gate_coupling_penalty(solution.gates, self.gate_weight)
            total = total + penalty
            parts["gate_penalty"] = float(penalty.detach())
        return total, parts
