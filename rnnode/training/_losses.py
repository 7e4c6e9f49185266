"""Losses: task losses and metrics, the layer-output accessor, the LSTM gate-coupling penalty
(uniform or weighted by the upper input gate's weights)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from .._stack import Solution
from .._validate import check_choice
from ._tasks import TASK_KINDS

__all__ = [
    "gate_coupling_penalty",
    "layer_features",
    "task_loss",
    "task_metrics",
]


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


#: How ``gate_coupling_penalty`` pairs lower and upper units.
_GATE_WEIGHTINGS = ("uniform", "input_weight")


def gate_coupling_penalty(
    gates: Mapping[str, torch.Tensor],
    weight: float = 1.0,
    *,
    weighting: str = "uniform",
    input_weights: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """The LSTM gate-coupling penalty: a lower layer's output gate plus the upper layer's input
    gate should reach one.

    ``weighting="uniform"`` (the default) pairs unit h of layer l with unit h of layer l + 1:

        P = weight * mean_{l, d, t, b, h} relu(1 - o_{t,h}^(l,d) - i_{t,h}^(l+1,d))^2,

    the mean over every adjacent pair of layers, direction, step, sequence and unit. It is zero
    when at every step the two gates sum to at least one (neither closes the path between the
    layers while the other is nearly shut).

    ``weighting="input_weight"`` pairs every lower unit j (the D * hidden features of layer l's
    output, directions concatenated as the upper layer reads them) with every upper unit i,
    weighted by how strongly the upper layer's input gate reads it:

        P = weight * mean_{l, d, t, b} sum_{i, j} w_ij relu(1 - o_{t,j}^(l) - i_{t,i}^(l+1,d))^2,
        w_ij = w_ij^(l+1,d) = |W_ij^(l+1,d)| / sum_{i', j'} |W_i'j'^(l+1,d)|,

    with W^(l+1,d) the input-gate rows of layer l + 1's ``weight_ih`` (direction d). The weights
    are constants of the penalty (detached): it moves the gates, not W. With W = identity it is
    the uniform penalty.

    Arguments:
        gates: ``Solution.gates`` of an LSTM stack: ``"i"`` and ``"o"`` of shape
            (num_layers, D, T, batch, hidden) (unbatched: (num_layers, D, T, hidden)),
            num_layers >= 2.
        weight: the penalty's weight.
        weighting: ``"uniform"`` or ``"input_weight"``.
        input_weights: for ``"input_weight"`` only: num_layers - 1 tensors, entry l of shape
            (D, hidden, D * hidden): layer l + 1's input-gate rows of ``weight_ih`` per
            direction, ``torch.stack([rnn.field(l + 1, d).weight_ih[:hidden] for d in
            range(D)])`` (torch's gate order i, f, g, o puts the input gate first).

    Returns:
        A 0-d tensor.
    """
    if gates is None or "i" not in gates or "o" not in gates:
        raise ValueError(
            "gates: expected LSTM gates with 'i' and 'o' (solve(..., return_gates=True)), "
            f"got {None if gates is None else sorted(gates)}"
        )
    check_choice("weighting", weighting, _GATE_WEIGHTINGS)
    i, o = gates["i"], gates["o"]
    if i.shape[0] < 2:
        raise ValueError(f"gates: expected at least 2 layers to couple, got {i.shape[0]}")
    if weighting == "uniform":
        if input_weights is not None:
            raise ValueError(
                "input_weights: expected None with weighting='uniform' (it is read only by "
                f"weighting='input_weight'), got {type(input_weights).__name__}"
            )
        return weight * torch.relu(1 - o[:-1] - i[1:]).pow(2).mean()
    return weight * _input_weighted_penalty(i, o, input_weights)


def _input_weighted_penalty(
    i: torch.Tensor, o: torch.Tensor, input_weights: Sequence[torch.Tensor] | None
) -> torch.Tensor:
    """mean_{l, d, t, b} sum_{i, j} w_ij relu(1 - o_j - i_i)^2 (``gate_coupling_penalty``)."""
    if i.dim() == 4:  # unbatched gates (num_layers, D, T, hidden)
        i, o = i.unsqueeze(3), o.unsqueeze(3)
    num_layers, directions, _, _, hidden = i.shape
    expected = (directions, hidden, directions * hidden)
    if input_weights is None or len(input_weights) != num_layers - 1:
        got = None if input_weights is None else f"{len(input_weights)} tensors"
        raise ValueError(
            f"input_weights: expected {num_layers - 1} tensors (one per upper layer) of shape "
            f"{expected} with weighting='input_weight', got {got}"
        )
    terms = []
    for layer, w in enumerate(input_weights):
        if not isinstance(w, torch.Tensor) or tuple(w.shape) != expected:
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise ValueError(f"input_weights[{layer}]: expected shape {expected}, got {shape}")
        w = w.detach().abs()
        total = w.sum(dim=(1, 2), keepdim=True)
        if not bool(torch.isfinite(total).all()) or bool((total == 0).any()):
            raise ValueError(
                f"input_weights[{layer}]: expected finite weights, not all zero per direction, "
                f"got sums {total.flatten().tolist()}"
            )
        w = (w / total).to(i.dtype)  # (D, hidden_upper, D * hidden_lower)
        # Lower layer's output gates as the upper layer reads them: (T, batch, D * hidden).
        lower = o[layer].permute(1, 2, 0, 3).reshape(*o.shape[2:4], directions * hidden)
        upper = i[layer + 1]  # (D, T, batch, hidden)
        hinge = torch.relu(1 - lower[None, :, :, None, :] - upper[..., None]).pow(2)
        terms.append((hinge * w[:, None, None]).sum(dim=(-2, -1)))  # (D, T, batch)
    return torch.stack(terms).mean()
