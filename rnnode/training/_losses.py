"""Losses: task losses and metrics, the layer-output accessor, the LSTM gate-coupling penalty."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .._stack import Solution
from .._validate import check_choice
from ._tasks import TASK_KINDS

__all__ = ["gate_coupling_penalty", "layer_features", "task_loss", "task_metrics"]


def task_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """The task's loss: cross-entropy for ``"classification"``, mean squared error otherwise.

    Arguments:
        prediction: (..., outputs) (class scores for classification).
        target: regression targets of ``prediction``'s shape, or (...) int64 class indices.
        kind: one of ``TASK_KINDS``.

    Returns:
        A 0-d tensor, the mean over all entries.
    """
    check_choice("kind", kind, TASK_KINDS)
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
    (after consuming x_T..x_k), as in ``ODERNN``'s output: ``solution.layer_output(layer)``.

    Returns:
        (T, batch, D * hidden), time first (unbatched: (T, D * hidden)).
    """
    return solution.layer_output(layer)


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
