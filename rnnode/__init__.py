"""rnnode: stacked recurrent neural networks as continuous-time dynamical systems.

Layers are vector fields dh/dt = F(t, h, x) integrated with torchdiffeq; explicit Euler with step 1
and a held input recovers torch.nn.RNN, GRU and LSTM exactly (``from_torch`` / ``to_torch``).
"""

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
from ._fields import make_field as make_field
from ._losses import SequenceModel as SequenceModel
from ._losses import gate_coupling_penalty as gate_coupling_penalty
from ._losses import layer_features as layer_features
from ._losses import task_loss as task_loss
from ._losses import task_metrics as task_metrics
from ._paths import INTERPOLATIONS as INTERPOLATIONS
from ._paths import CubicPath as CubicPath
from ._paths import HoldPath as HoldPath
from ._paths import InputPath as InputPath
from ._paths import LinearPath as LinearPath
from ._paths import make_path as make_path
from ._predictive import PredictiveCoding as PredictiveCoding
from ._predictive import compare_with_backprop as compare_with_backprop
from ._solve import ADAPTIVE_METHODS as ADAPTIVE_METHODS
from ._solve import FIXED_METHODS as FIXED_METHODS
from ._solve import METHODS as METHODS
from ._solve import DivergenceError as DivergenceError
from ._stack import COUPLINGS as COUPLINGS
from ._stack import ODERNN as ODERNN
from ._stack import Solution as Solution
from ._tasks import TASK_KINDS as TASK_KINDS
from ._tasks import TASKS as TASKS
from ._tasks import Task as Task
from ._tasks import adding_task as adding_task
from ._tasks import co2_task as co2_task
from ._tasks import digits_task as digits_task
from ._tasks import forecast_task as forecast_task
from ._tasks import make_task as make_task
from ._tasks import sines_task as sines_task
from ._tasks import sunspots_task as sunspots_task
from ._train import NonFiniteLossError as NonFiniteLossError
from ._train import Trainer as Trainer
from ._train import train as train

__version__ = "0.1.0"
