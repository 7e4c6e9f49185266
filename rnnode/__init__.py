"""rnnode: stacked recurrent neural networks as continuous-time dynamical systems.

Layers are vector fields dh/dt = F(t, h, x) integrated with torchdiffeq; explicit Euler with step 1
and a held input recovers torch.nn.RNN, GRU and LSTM exactly (``from_torch`` / ``to_torch``).

The core is this namespace: the model (``ODERNN``, ``Solution``), the bridge to torch, the vector
fields and input paths users subclass, the error types and the supported choices. The rest lives
in its own namespace:

- ``rnnode.training``: tasks, readout models, losses, the trainer, predictive coding;
- ``rnnode.analysis``: gains, frequency responses, stability, gradient flow, figures;
- ``rnnode.studies``: the reproducible studies behind the ``rnnode-study`` command.
"""

from __future__ import annotations

import importlib
import warnings

from ._bridge import from_torch as from_torch
from ._bridge import to_torch as to_torch
from ._fields import CELLS as CELLS
from ._fields import AntisymmetricField as AntisymmetricField
from ._fields import CoupledOscillatorField as CoupledOscillatorField
from ._fields import ElmanField as ElmanField
from ._fields import GRUField as GRUField
from ._fields import LinearField as LinearField
from ._fields import LSTMField as LSTMField
from ._fields import RelaxationField as RelaxationField
from ._fields import VectorField as VectorField
from ._paths import INTERPOLATIONS as INTERPOLATIONS
from ._paths import CubicPath as CubicPath
from ._paths import HoldPath as HoldPath
from ._paths import InputPath as InputPath
from ._paths import LinearPath as LinearPath
from ._settings import COUPLINGS as COUPLINGS
from ._settings import SolveSettings as SolveSettings
from ._solve import ADAPTIVE_METHODS as ADAPTIVE_METHODS
from ._solve import FIXED_METHODS as FIXED_METHODS
from ._solve import METHODS as METHODS
from ._solve import DivergenceError as DivergenceError
from ._solve import SolverStats as SolverStats
from ._solve import StepBudgetError as StepBudgetError
from ._solve import integrate as integrate
from ._stack import ODERNN as ODERNN
from ._stack import Solution as Solution

__version__ = "0.1.0"

__all__ = [
    "ADAPTIVE_METHODS",
    "AntisymmetricField",
    "CELLS",
    "COUPLINGS",
    "CoupledOscillatorField",
    "CubicPath",
    "DivergenceError",
    "ElmanField",
    "FIXED_METHODS",
    "GRUField",
    "HoldPath",
    "INTERPOLATIONS",
    "InputPath",
    "LSTMField",
    "LinearField",
    "LinearPath",
    "METHODS",
    "ODERNN",
    "RelaxationField",
    "Solution",
    "SolverStats",
    "StepBudgetError",
    "SolveSettings",
    "VectorField",
    "from_torch",
    "integrate",
    "to_torch",
]

# Names that moved out of the top level: old imports keep working, with a DeprecationWarning,
# until they are removed. Old name -> (module, name there, what to use instead).
_TRAINING = (
    "SequenceModel",
    "gate_coupling_penalty",
    "layer_features",
    "task_loss",
    "task_metrics",
    "PredictiveCoding",
    "TASK_KINDS",
    "Task",
    "adding_task",
    "co2_task",
    "digits_task",
    "forecast_task",
    "make_task",
    "sines_task",
    "sunspots_task",
    "NonFiniteLossError",
    "Trainer",
    "train",
)
_MOVED: dict[str, tuple[str, str, str]] = {
    **{name: ("rnnode.training", name, f"rnnode.training.{name}") for name in _TRAINING},
    "TASKS": (
        "rnnode.training._tasks",
        "_TASK_BUILDERS",
        "rnnode.training.TASK_NAMES and make_task",
    ),
    "compare_with_backprop": (
        "rnnode.studies.predictive_coding",
        "compare_with_backprop",
        "rnnode.studies.predictive_coding.compare_with_backprop",
    ),
    "make_field": ("rnnode._fields", "make_field", "ODERNN(cell=...) or the field classes"),
    "make_path": (
        "rnnode._paths",
        "make_path",
        "the path classes (HoldPath, LinearPath, CubicPath)",
    ),
}


_NAMESPACES = ("training", "analysis", "studies")


def __getattr__(name: str) -> object:
    if name in _NAMESPACES:  # ``import rnnode`` then ``rnnode.training.train``: loaded on use
        return importlib.import_module(f"rnnode.{name}")
    if name in _MOVED:
        module, attribute, instead = _MOVED[name]
        warnings.warn(
            f"rnnode.{name} is deprecated: use {instead}; the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        value = getattr(importlib.import_module(module), attribute)
        return dict(value) if isinstance(value, dict) else value
    raise AttributeError(f"module 'rnnode' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
