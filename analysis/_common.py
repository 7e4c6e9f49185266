"""The model argument of the analysis modules (private); argument checks: rnnode._validate."""

from __future__ import annotations

from torch import nn

from rnnode import ODERNN, from_torch


def as_model(model: object, name: str = "model") -> ODERNN:
    """An ``ODERNN`` as is; a torch.nn.RNN, GRU or LSTM converted by ``rnnode.from_torch``."""
    if isinstance(model, ODERNN):
        return model
    if isinstance(model, (nn.RNN, nn.GRU, nn.LSTM)):
        return from_torch(model)
    raise TypeError(
        f"{name}: expected an rnnode.ODERNN (or a torch.nn.RNN, GRU or LSTM, which is converted "
        f"with rnnode.from_torch), got {type(model).__name__}"
    )
