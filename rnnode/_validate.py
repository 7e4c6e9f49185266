"""Argument checks that name the argument, what was expected and what came."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def check_positive(name: str, value: float | None, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


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
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN or inf entries")


def check_times(name: str, t: object, *, num_samples: int, dtype: torch.dtype) -> torch.Tensor:
    """Knot times (t_0, ..., t_T): 1-D, length T + 1, finite and strictly increasing."""
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t, dtype=dtype)
    if t.dim() != 1 or t.shape[0] != num_samples + 1:
        raise ValueError(
            f"{name}: expected shape (T + 1,) = ({num_samples + 1},) holding the start time t_0 "
            f"and the {num_samples} sample times, got {tuple(t.shape)}"
        )
    if not t.is_floating_point():
        t = t.to(dtype)
    check_finite(name, t)
    steps = t[1:] - t[:-1]
    if not bool((steps > 0).all()):
        k = int(torch.nonzero(steps <= 0)[0])
        raise ValueError(
            f"{name}: expected strictly increasing times, got t[{k + 1}] = {float(t[k + 1])} "
            f"<= t[{k}] = {float(t[k])}"
        )
    return t.to(dtype)
