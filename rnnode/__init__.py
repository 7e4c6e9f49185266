"""rnnode: stacked recurrent neural networks as continuous-time dynamical systems.

Layers are vector fields dh/dt = F(t, h, x) integrated with torchdiffeq; explicit Euler with step 1
and a held input recovers torch.nn.RNN, GRU and LSTM exactly (``from_torch`` / ``to_torch``).

The core is this namespace: the model (``ODERNN``, ``Solution``), the bridge to torch, the vector
fields and input paths users subclass, the error types and the supported choices. The rest lives
in its own namespace:

- ``rnnode.fields``: the vector fields, and the protocol a field of one's own provides
  (``ODERNN.from_fields`` stacks them);
- ``rnnode.training``: tasks, readout models, losses, the trainer, predictive coding;
- ``rnnode.analysis``: gains, frequency responses, stability, gradient flow, figures;
- ``rnnode.studies``: the reproducible studies behind the ``rnnode-study`` command.
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import TYPE_CHECKING

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
from ._liquid import LTC as LTC
from ._ltc import LTCField as LTCField
from ._ncps import from_ncps as from_ncps
from ._ncps import to_ncps as to_ncps
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

if TYPE_CHECKING:  # loaded on use at run time (``__getattr__``); typed for checkers and editors
    from . import analysis as analysis
    from . import fields as fields
    from . import studies as studies
    from . import training as training

try:  # one source of the version: the installed distribution's metadata (pyproject.toml)
    __version__: str = _metadata.version("rnnode")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
    __version__ = "0+unknown"

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
    "LTC",
    "LTCField",
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
    "from_ncps",
    "from_torch",
    "integrate",
    "to_ncps",
    "to_torch",
]

_NAMESPACES = ("fields", "training", "analysis", "studies")

# Names removed from the top level in 0.2.0 (CHANGELOG.md), to say where they went: no aliases.
_TRAINING_NAMES = (
    "SequenceModel gate_coupling_penalty layer_features task_loss task_metrics PredictiveCoding "
    "TASK_KINDS Task adding_task co2_task digits_task forecast_task make_task sines_task "
    "sunspots_task NonFiniteLossError Trainer train"
).split()
_REMOVED = {
    **{name: f"rnnode.training.{name}" for name in _TRAINING_NAMES},
    "TASKS": "rnnode.training.TASK_NAMES and rnnode.training.make_task",
    "compare_with_backprop": "rnnode.studies.predictive_coding.compare_with_backprop",
    "make_field": "ODERNN(cell=...) or the field classes",
    "make_path": "the path classes (HoldPath, LinearPath, CubicPath)",
}


def __getattr__(name: str) -> object:
    if name in _NAMESPACES:  # ``import rnnode`` then ``rnnode.training.train``: loaded on use
        return importlib.import_module(f"rnnode.{name}")
    if name in _REMOVED:
        raise AttributeError(
            f"module 'rnnode' has no attribute {name!r}: removed from the top level in 0.2.0, "
            f"use {_REMOVED[name]} (see CHANGELOG.md)"
        )
    raise AttributeError(f"module 'rnnode' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
