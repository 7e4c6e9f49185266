"""Axis ticks and colour limits that read as numbers a reader would write (private).

Used by ``plots``: logarithmic axes labelled in plain decimals (0.5, 1, 2, never 8x10^-1 on a
minor tick), phase axes at multiples of pi/2 written with pi, integer ticks for layers, and
colour limits rounded outwards to 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from matplotlib.axis import Axis
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

_NICE = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceil(value: float) -> float:
    """The smallest number m * 10^k >= value with m one of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for m in _NICE:
        # A relative slack of 1e-9: a value that is already nice stays itself.
        if m * power >= value * (1 - 1e-9):
            return m * power
    return 10.0 * power  # pragma: no cover - the loop ends at 10


def plain_number(value: float, _pos: object = None) -> str:
    """0.5, 1, 20, 0.0005; beyond 1e-4 .. 1e5 a power of ten in math text (10^{-5})."""
    if value == 0:
        return "0"
    if 1e-4 * (1 - 1e-9) <= abs(value) < 1e5:
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)) + 1e-9)
    mantissa = value / 10.0**exponent
    if abs(mantissa - round(mantissa)) < 1e-9 and round(mantissa) == 1:
        return f"$10^{{{exponent}}}$"
    return f"${mantissa:g}\\times10^{{{exponent}}}$"


def readable_log_axis(axis: Axis, low: float, high: float) -> None:
    """Major ticks labelled in plain numbers, unlabelled minor ticks, on a log axis [low, high].

    Decades when the range spans 3 or more, 1-2-5 from 0.7 decades, every digit below that,
    and where even those leave fewer than two ticks, 3 to 5 evenly spaced round numbers.
    """
    span = math.log10(high / low)
    subs = (1.0,) if span >= 3 else (1.0, 2.0, 5.0) if span >= 0.7 else tuple(range(1, 10))
    candidates = LogLocator(base=10.0, subs=subs).tick_values(low, high)
    inside = [v for v in candidates if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)]
    if len(inside) >= 2:
        axis.set_major_locator(LogLocator(base=10.0, subs=subs))
    else:
        even = MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
        axis.set_major_locator(FixedLocator([v for v in even if low <= v <= high]))
    axis.set_major_formatter(FuncFormatter(plain_number))
    axis.set_minor_locator(LogLocator(base=10.0, subs=tuple(np.arange(2, 10))))
    axis.set_minor_formatter(NullFormatter())


def pi_label(value: float, _pos: object = None) -> str:
    """A multiple of pi / 4 written with pi in math text: 0, pi/2, -pi, 3pi/2."""
    frac = Fraction(round(value / (np.pi / 4)), 4)
    if frac == 0:
        return "0"
    sign = "-" if frac < 0 else ""
    num, den = abs(frac.numerator), frac.denominator
    top = r"\pi" if num == 1 else rf"{num}\pi"
    return f"${sign}{top}$" if den == 1 else f"${sign}{top}/{den}$"


def pi_axis(axis: Axis, low: float, high: float) -> None:
    """Ticks at multiples of pi / 4, pi / 2, pi, 2 pi, ... (at most 7 in view), written with pi."""
    step = np.pi / 4
    while (high - low) / step > 6:
        step *= 2
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    axis.set_major_locator(FixedLocator([k * step for k in range(first, last + 1)]))
    axis.set_major_formatter(FuncFormatter(pi_label))


def integer_ticks(count: int) -> list[int]:
    """Ticks 1..count, every one up to 10, else 1 and about 8 round integers up to count."""
    if count <= 10:
        return list(range(1, count + 1))
    values = MaxNLocator(nbins=8, integer=True, steps=[1, 2, 5, 10]).tick_values(1, count)
    return sorted({1} | {int(v) for v in values if 1 <= v <= count})


def centred_limits(values: np.ndarray, centre: float, floor: float | None) -> tuple[float, float]:
    """(low, high) = centre -+ nice_ceil(max |values - centre|), low clipped at ``floor``."""
    finite = values[np.isfinite(values)]
    half = nice_ceil(float(np.abs(finite - centre).max())) if finite.size else 1.0
    low = centre - half if floor is None else max(centre - half, floor)
    return low, centre + half


def round_ticks(low: float, high: float, centre: float) -> list[float]:
    """About 5 round ticks in [low, high], the centre among them."""
    values = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    slack = 1e-9 * (high - low)
    ticks = {round(float(v), 12) for v in values if low - slack <= v <= high + slack}
    ticks.add(float(centre))
    return sorted(ticks)
