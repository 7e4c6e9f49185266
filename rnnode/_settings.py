"""The settings of a solve, and how a call's keywords override a model's defaults.

A model holds its default solve as a frozen ``SolveSettings``; a call's keywords override it one
by one (``settings.override(method=..., ...)``). A keyword the call did not give is ``NOT_GIVEN``,
not ``None``, because ``None`` is a value: ``step_size=None`` asks for one step per sample
interval.

One rule links two settings: ``step_size`` belongs to the fixed-step methods. A default step size
follows the default method; a call that switches to an adaptive method without giving a step
size solves adaptively (the default step size does not apply to it), and a call that switches
between fixed-step methods keeps the default step size. A step size *given* together with an
adaptive method, in the same call or the same constructor, is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from ._methods import ENGINES, FIXED_METHODS, check_method
from ._paths import INTERPOLATIONS
from ._semi_implicit import FUSED_METHODS
from ._validate import check_choice, check_positive

__all__ = ["COUPLINGS", "NOT_GIVEN", "SolveSettings"]

#: How the layers of a stack are coupled (see ``ODERNN``).
COUPLINGS: tuple[str, ...] = ("sampled", "continuous")
#: Methods that step on a fixed grid (and so take a ``step_size``).
_STEPPED: tuple[str, ...] = FIXED_METHODS + FUSED_METHODS


class _NotGiven:
    """The type of ``NOT_GIVEN``: a keyword the caller did not give."""

    _instance: _NotGiven | None = None

    def __new__(cls) -> _NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


#: Marks a keyword the caller did not give (the model's default applies). Typed ``Any`` so that
#: it may stand as the default of a keyword of any type (``method: str = NOT_GIVEN``).
NOT_GIVEN: Final[Any] = _NotGiven()


@dataclass(frozen=True)
class SolveSettings:
    """How a stack is solved: one frozen value, checked when made.

    Attributes:
        method: a torchdiffeq method (``rnnode.METHODS``).
        step_size: the largest step of a fixed-step method; None: one step per sample interval.
            Must be None for adaptive methods.
        rtol, atol: tolerances of adaptive methods (positive).
        interpolation: how samples become a path (``rnnode.INTERPOLATIONS``).
        coupling: ``"sampled"`` or ``"continuous"`` (``rnnode.COUPLINGS``).
        engine: who steps the solve: ``"rnnode"`` (its own loops) or ``"torchdiffeq"`` (the
            same solve through ``torchdiffeq.odeint``: the same steps, slower).

    The defaults are the discrete RNN: Euler, one step per interval, held input, sampled coupling.

    Raises:
        TypeError, ValueError: a setting of the wrong type or value, or a step size with an
            adaptive method.
    """

    method: str = "euler"
    step_size: float | None = None
    rtol: float = 1e-6
    atol: float = 1e-8
    interpolation: str = "hold"
    coupling: str = "sampled"
    engine: str = "rnnode"

    def __post_init__(self) -> None:
        check_method(self.method)  # says why the Adams methods and heun2 are refused
        step_size = check_positive("step_size", self.step_size, allow_none=True)
        if step_size is not None and self.method not in _STEPPED:
            raise ValueError(
                f"step_size: applies to the fixed-step methods {FIXED_METHODS}; expected None "
                f"with the adaptive method {self.method!r} (which takes rtol/atol), "
                f"got {self.step_size!r}"
            )
        object.__setattr__(self, "step_size", step_size)
        object.__setattr__(self, "rtol", check_positive("rtol", self.rtol))
        object.__setattr__(self, "atol", check_positive("atol", self.atol))
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        check_choice("coupling", self.coupling, COUPLINGS)
        check_choice("engine", self.engine, ENGINES)

    def override(self, **given: object) -> SolveSettings:
        """These settings with every keyword that is not ``NOT_GIVEN`` replaced.

        A new adaptive ``method`` without a ``step_size`` drops the default step size (it
        belongs to the fixed-step methods); everything else overrides independently.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(given) - names
        if unknown:
            raise TypeError(
                f"override: unknown settings {sorted(unknown)}; expected some of {sorted(names)}"
            )
        # Any: each value is checked by __post_init__ of the replaced settings.
        values: dict[str, Any] = {k: v for k, v in given.items() if v is not NOT_GIVEN}
        if not values:
            return self
        if "method" in values and "step_size" not in values and values["method"] not in _STEPPED:
            values["step_size"] = None
        return dataclasses.replace(self, **values)
