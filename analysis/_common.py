"""The model argument of the analysis modules (private); other checks: rnnode._validate."""

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


def check_model(model: object, *, unidirectional: bool = False) -> ODERNN:
    """``model`` itself when it is an ``ODERNN`` (unidirectional when asked).

    Raises:
        TypeError: not an ``ODERNN`` (a torch RNN module: convert it with ``from_torch``).
        ValueError: ``unidirectional`` and the stack is bidirectional.
    """
    if not isinstance(model, ODERNN):
        raise TypeError(
            f"model: expected an rnnode.ODERNN (convert a torch.nn.RNN, GRU or LSTM with "
            f"rnnode.from_torch), got {type(model).__name__}"
        )
    if unidirectional and model.bidirectional:
        raise ValueError(
            "model: expected a unidirectional stack (the analysis uses its joint field, defined "
            "forward in time), got bidirectional=True"
        )
    return model
