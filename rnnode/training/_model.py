"""SequenceModel: an ODERNN with a linear readout on its top layer and optional auxiliary readouts.

A ``SequenceModel`` is an ``ODERNN`` with a linear readout on its top layer and, optionally,

- auxiliary readouts on chosen lower layers, L = L_task(top) + sum_l w_l L_task(head_l(h^l)),
  which hand each of those layers an error signal that does not pass through the layers above
  (deep supervision: the remedy for gradients that vanish on their way down the stack);
- for LSTM stacks, the gate-coupling penalty w * mean(relu(1 - o^(l) - i^(l+1))^2) over adjacent
  layers, which pushes a lower layer's output gate and the upper layer's input gate not to be
  closed at the same time, so that information (and gradient) can pass between them.

Its ``loss(x, y)`` returns the total loss and its parts; ``rnnode.training.train`` drives it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .._stack import ODERNN, Solution
from .._validate import check_choice, check_int, check_nonnegative
from ._losses import gate_coupling_penalty, layer_features, task_loss
from ._readout import _Readout

__all__ = ["READOUTS", "SequenceModel"]

#: What ``SequenceModel``'s main head reads: the top layer, or every layer concatenated.
READOUTS = ("top", "all")


class SequenceModel(_Readout):
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
        readout: what the main head reads: ``"top"`` (the top layer's state) or ``"all"``
            (every layer's state, concatenated bottom first, as in Hermans & Schrauwen 2013).

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
        readout: str = "top",
    ):
        super().__init__(
            rnn, output_size, kind=kind, per_step=per_step, solve_options=solve_options
        )
        gate_weight = check_nonnegative("gate_weight", gate_weight)
        self.readout = check_choice("readout", readout, READOUTS)
        aux_weights = dict(aux_weights or {})
        for layer, weight in aux_weights.items():
            check_int("aux_weights", layer)
            if not 0 <= layer < rnn.num_layers - 1:
                raise ValueError(
                    f"aux_weights: expected layers 0..{rnn.num_layers - 2} below the top, "
                    f"got layer {layer!r}"
                )
            check_nonnegative(f"aux_weights[{layer}]", weight)
        if gate_weight and (rnn.cell != "lstm" or rnn.num_layers < 2):
            raise ValueError(
                "gate_weight: the gate-coupling penalty needs an LSTM stack of >= 2 layers, got "
                f"cell={rnn.cell!r}, num_layers={rnn.num_layers}"
            )
        self.aux_weights = {int(k): float(v) for k, v in sorted(aux_weights.items())}
        self.gate_weight = float(gate_weight)
        features = rnn.num_directions * rnn.hidden_size
        layers = rnn.num_layers if self.readout == "all" else 1
        self.head = nn.Linear(features * layers, output_size)
        self.aux_heads = nn.ModuleDict(
            {str(layer): nn.Linear(features, output_size) for layer in self.aux_weights}
        )

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
        solution = self._solve(x, return_gates=self.gate_weight > 0)
        read = range(self.rnn.num_layers) if self.readout == "all" else [self.rnn.num_layers - 1]
        features = torch.cat([layer_features(solution, layer) for layer in read], -1)
        top = self._read(self.head, features)
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
            assert isinstance(extra, torch.Tensor)  # aux holds a prediction per weighted layer
            total = total + extra
            parts["auxiliary"] = float(extra.detach())
        if self.gate_weight:
            assert solution.gates is not None  # run solves with return_gates here
            penalty = gate_coupling_penalty(solution.gates, self.gate_weight)
            total = total + penalty
            parts["gate_penalty"] = float(penalty.detach())
        return total, parts
