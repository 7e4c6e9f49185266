"""Predictive coding: every layer learns only from its own prediction error.

Layer l carries a linear predictor P_l of its own next activity from its present state and its
present input (the outputs of its source layers, or x):

    e_k^(l) = P_l([h_k^(l); s_k^(l)]) - sg(h_{k+1}^(l)),     L_l = mean |e^(l)|^2,  k = 1..T-1,

where sg stops the gradient (the next activity is the observation the prediction is scored
against, as in predictive coding; only the prediction side is trained). The stack is solved with
``detach_layers=True`` and s^(l) is detached, so no gradient crosses a layer boundary: L_l trains
layer l's field and P_l only. A linear readout on the (detached) top layer learns the task. The
total loss sum_l w L_l + L_task is therefore the sum of independent local problems, one
optimiser step serving them all.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .._settings import NOT_GIVEN
from .._stack import ODERNN, Solution
from .._validate import check_nonnegative
from ._losses import layer_features, task_loss
from ._readout import _Readout

__all__ = ["PredictiveCoding"]


class PredictiveCoding(_Readout):
    """An ODERNN trained layer by layer from local prediction errors, with a readout on top.

    Arguments:
        rnn: a unidirectional stack (sampled coupling when it has more than one layer).
        output_size: features of the readout (classes for classification).
        kind: ``"regression"``, ``"classification"`` or ``"forecast"`` (the readout's loss).
        per_step: read out at every sample time (else at the last).
        local_weight: weight w of every layer's prediction loss.
        solve_options: keyword arguments for every ``rnn.solve`` call.

    Attributes:
        head: the readout, ``nn.Linear(hidden, output_size)`` (built first, so that a
            ``SequenceModel`` made after the same seed has the same readout).
        predictors: ``predictors[l]`` maps [h^(l); s^(l)] (hidden + layer l's input size) to the
            prediction of h^(l) one sample later.

    Inputs are batch first, (batch, T, input_size), T >= 2.
    """

    def __init__(
        self,
        rnn: ODERNN,
        output_size: int,
        *,
        kind: str = "regression",
        per_step: bool = False,
        local_weight: float = 1.0,
        solve_options: Mapping[str, object] | None = None,
    ):
        super().__init__(
            rnn, output_size, kind=kind, per_step=per_step, solve_options=solve_options
        )
        if rnn.bidirectional:
            raise ValueError(
                "rnn: predictive coding predicts forward in time; expected a unidirectional "
                "stack, got bidirectional=True"
            )
        coupling = rnn.defaults.override(
            coupling=dict(solve_options or {}).get("coupling", NOT_GIVEN)
        ).coupling
        if coupling != "sampled" and rnn.num_layers > 1:
            raise ValueError(
                "rnn: layer-local learning needs layers that can be cut apart; expected "
                f"coupling='sampled', got {coupling!r}"
            )
        local_weight = check_nonnegative("local_weight", local_weight)
        self.local_weight = float(local_weight)
        H = rnn.hidden_size
        self.head = nn.Linear(H, output_size)
        self.predictors = nn.ModuleList(
            nn.Linear(H + rnn.field(layer).input_size, H) for layer in range(rnn.num_layers)
        )

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, Solution]:
        """Solve the stack with the layers cut apart and read out the (detached) top layer.

        Arguments:
            x: (batch, T, input_size).

        Returns:
            ``(prediction, solution)``: prediction (batch, T, outputs) per step, else
            (batch, outputs).
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[1] < 2:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected (batch, T, input_size) with T >= 2, got {got}")
        solution = self._solve(x, detach_layers=True)
        top = layer_features(solution, self.rnn.num_layers - 1).detach()
        prediction = self.head(top).transpose(0, 1) if self.per_step else self.head(top[-1])
        return prediction, solution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The readout's prediction for x (batch, T, input_size)."""
        return self.run(x)[0]

    def local_losses(self, solution: Solution, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's prediction loss L_l, a list of 0-d tensors (layer order).

        Arguments:
            solution: ``run(x)``'s solution.
            x: the input, (batch, T, input_size).
        """
        x = x.transpose(0, 1)  # time first, as the solution's states
        losses = []
        for layer in range(self.rnn.num_layers):
            h = solution.hidden[layer, 0]  # (T + 1, batch, hidden), h[k] at t_k
            # [sources of the layer] at t_1..t_T: s[k - 1] drives the step into t_k.
            s = self.rnn.topology.drive_inputs(layer, x, solution.layer_output).detach()
            guess = self.predictors[layer](torch.cat([h[1:-1], s[:-1]], dim=-1))
            losses.append(F.mse_loss(guess, h[2:].detach()))
        return losses

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """w * sum_l L_l + L_task (readout); parts ``task`` and ``local_<l>`` as numbers."""
        prediction, solution = self.run(x)
        local = self.local_losses(solution, x)
        readout = task_loss(prediction, y, self.kind)
        total = readout + self.local_weight * sum(local)
        parts = {"task": float(readout.detach())}
        parts.update({f"local_{layer}": float(value.detach()) for layer, value in enumerate(local)})
        return total, parts
