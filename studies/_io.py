"""Files of the studies: canonical JSON of plain data, written atomically.

Everything a run or a sweep writes goes through ``write_json`` (or ``atomic_write`` for bytes):
a temporary file in the same folder, fsynced, then ``os.replace``, so a reader never sees half a
file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnode._io import atomic_write

__all__ = ["atomic_write", "json_bytes", "plain", "read_json", "write_json"]


def plain(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data: dicts with str keys, lists, str, int, float, bool, None.

    Tensors and numpy arrays become (nested) lists, numpy scalars Python numbers, tuples lists.
    Non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (strict JSON has
    no such numbers). Anything else raises ValueError naming where it sits.
    """
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return plain(value.tolist(), where)
    if isinstance(value, np.generic):
        return plain(value.item(), where)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: expected string keys, got {k!r} ({type(k).__name__})")
            out[k] = plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(
        f"{where}: expected JSON data (dict, list, str, number, bool, None, tensor, array), "
        f"got {type(value).__name__}"
    )


def json_bytes(value: Any, where: str = "value") -> bytes:
    """Canonical JSON of ``value`` (see ``plain``): sorted keys, indent 2, a final newline."""
    text = json.dumps(plain(value, where), sort_keys=True, indent=2, allow_nan=False)
    return (text + "\n").encode()


def write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write ``value`` as canonical JSON, atomically."""
    return atomic_write(path, json_bytes(value, Path(path).name))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file (plain data only: ``json`` never executes anything)."""
    return json.loads(Path(path).read_text())
