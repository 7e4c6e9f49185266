"""Argument checks that name the argument, what was expected and what came.

One rule everywhere: a value of the wrong *type* raises ``TypeError``, a value of the right type
but outside what is allowed raises ``ValueError``; both messages read
``"<name>: expected <what>, got <value>"``. Numbers are Python (or NumPy) reals; ``bool`` is not
taken for a number and a tensor is not taken for a Python number (pass ``float(tensor)``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import torch

__all__ = [
    "check_array",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_int",
    "check_nonnegative",
    "check_positive",
    "check_probability",
    "check_real",
    "check_tensor",
    "check_times",
]


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return repr(value)


def check_real(name: str, value: object, *, expected: str = "a real number") -> float:
    """A Python or NumPy real number (not a bool, not a tensor), returned as a float.

    Raises:
        TypeError: ``value`` is not a real number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (pass float(t) for a 0-d tensor)" if isinstance(value, torch.Tensor) else ""
        raise TypeError(f"{name}: expected {expected}, got {_describe(value)}{hint}")
    return float(value)


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """An integer (not a bool), at least ``minimum`` when given.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: ``value < minimum``.
    """
    if minimum == 1:
        what = "a positive integer"
    elif minimum == 0:
        what = "a non-negative integer"
    elif minimum is not None:
        what = f"an integer >= {minimum}"
    else:
        what = "an integer"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected {what}, got {_describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """A bool (Python's or NumPy's).

    Raises:
        TypeError: anything else (an integer 0/1 included: say True or False).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {_describe(value)}")
    return bool(value)


@overload
def check_positive(name: str, value: object, *, allow_none: Literal[False] = False) -> float: ...


@overload
def check_positive(name: str, value: object, *, allow_none: bool) -> float | None: ...


def check_positive(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """A positive finite real number (or None when ``allow_none``), returned as a float.

    Raises:
        TypeError: not a real number.
        ValueError: not positive, or not finite.
    """
    if value is None and allow_none:
        return None
    what = "a positive finite number" + (" or None" if allow_none else "")
    number = check_real(name, value, expected=what)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return number


def check_nonnegative(name: str, value: object) -> float:
    """A finite real number >= 0, returned as a float.

    Raises:
        TypeError: not a real number.
        ValueError: negative, NaN or infinite.
    """
    what = "a non-negative finite number"
    number = check_real(name, value, expected=what)
    if not (number >= 0 and math.isfinite(number)):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return number


def check_probability(name: str, value: object, *, include_one: bool = False) -> float:
    """A probability in [0, 1) (or [0, 1] with ``include_one``), returned as a float.

    Raises:
        TypeError: not a real number.
        ValueError: outside the interval (NaN included).
    """
    what = f"a probability in [0, 1{']' if include_one else ')'}"
    number = check_real(name, value, expected=what)
    if not (0.0 <= number <= 1.0) or (number == 1.0 and not include_one):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return number


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """One of ``choices`` (strings).

    Raises:
        TypeError: ``value`` is not a string.
        ValueError: a string that is not one of ``choices``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected one of {tuple(choices)}, got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_tensor(
    name: str,
    value: object,
    *,
    shape: Sequence[int | None],
    layout: str,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Check rank, sizes (None = any), dtype and finiteness of a tensor argument."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor of shape {layout}, got {type(value).__name__}")
    if value.dim() != len(shape) or any(
        want is not None and got != want for want, got in zip(shape, value.shape, strict=True)
    ):
        want = tuple("*" if s is None else s for s in shape)
        raise ValueError(
            f"{name}: expected shape {layout} = {want}, got {tuple(value.shape)}".replace("'", "")
        )
    if value.dtype != dtype:
        raise ValueError(
            f"{name}: expected dtype {dtype} (the model's parameters), got {value.dtype}"
        )
    check_finite(name, value)
    return value


def check_finite(name: str, value: torch.Tensor) -> None:
    """Every entry of ``value`` finite, else ValueError counting the NaN and inf entries."""
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN or inf entries")


def check_times(
    name: str,
    t: object,
    *,
    num_samples: int,
    dtype: torch.dtype,
    batch: int | None = None,
    batch_first: bool = False,
) -> torch.Tensor:
    """Knot times (t_0, ..., t_T): length T + 1, finite and strictly increasing.

    Shared times are (T + 1,). With ``batch`` given, per-sequence times are accepted too:
    (T + 1, batch), or (batch, T + 1) with ``batch_first``, each sequence strictly increasing.
    The times are cast to ``dtype`` (the model's) *before* they are checked, so that times that
    differ only below that precision are refused rather than collapsed into equal times.

    Returns:
        ``t`` as a tensor of ``dtype``, time first: (T + 1,) or (T + 1, batch) (differentiable
        where ``t`` was).
    """
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t, dtype=dtype)
    T1 = num_samples + 1
    if batch is not None and t.dim() == 2:
        layout, want = (
            ("(batch, T + 1)", (batch, T1)) if batch_first else ("(T + 1, batch)", (T1, batch))
        )
        if tuple(t.shape) != want:
            raise ValueError(
                f"{name}: expected shape {layout} = {want} for per-sequence times, "
                f"got {tuple(t.shape)}"
            )
        if batch_first:
            t = t.transpose(0, 1)
    elif t.dim() != 1 or t.shape[0] != T1:
        per_sequence = " (or per-sequence times, batch first as x)" if batch is not None else ""
        raise ValueError(
            f"{name}: expected shape (T + 1,) = ({T1},){per_sequence} holding the start time t_0 "
            f"and the {num_samples} sample times, got {tuple(t.shape)}"
        )
    original = t.dtype
    t = t.to(dtype)
    check_finite(name, t)
    steps = t[1:] - t[:-1]
    if not bool((steps > 0).all()):
        bad = torch.nonzero(steps <= 0)[0].tolist()
        k, where = bad[0], "" if t.dim() == 1 else f" in sequence {bad[1]}"
        at = (k,) if t.dim() == 1 else (k, bad[1])
        later, earlier = float(t[(k + 1, *at[1:])].detach()), float(t[at].detach())
        cast = f" (after the cast from {original} to {dtype})" if original != dtype else ""
        raise ValueError(
            f"{name}: expected strictly increasing times{cast}, got t[{k + 1}] = "
            f"{later} <= t[{k}] = {earlier}{where}"
        )
    return t


def check_array(name: str, value: object, *, expected: str = "real numbers") -> np.ndarray:
    """An array-like of real numbers (number, sequence, NumPy array, CPU tensor) as float64.

    Raises:
        TypeError: ``value`` is None, a string, or holds something that is not a real number.
    """
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected {expected}, got {_describe(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected {expected}, got {_describe(value)}") from None
    return array
