"""Shared checks of the analysis modules (private)."""

from __future__ import annotations

import math

import numpy as np
import torch
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


def check_real(
    name: str, value: object, *, low: float = 0.0, inclusive: bool = False, integer: bool = False
) -> float:
    """A finite real number (Python, numpy or 0-d tensor) above ``low``: TypeError / ValueError."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_complex():
        value = value.item()
    if isinstance(value, np.generic) and np.isrealobj(value):
        value = value.item()
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "an integer" if integer else "a real number"
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__} {value!r}")
    ok = math.isfinite(value) and (value >= low if inclusive else value > low)
    if not ok:
        if low == 0:
            what = "a non-negative" if inclusive else "a positive"
        else:
            what = f"a number {'>=' if inclusive else '>'} {low:g}, a"
        raise ValueError(f"{name}: expected {what} finite number, got {value!r}")
    return value
