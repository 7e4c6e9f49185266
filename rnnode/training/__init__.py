"""rnnode.training: tasks, readout models, losses, the trainer and predictive coding.

Everything needed to fit an ``ODERNN`` to data: ``Task`` and the bundled tasks (synthetic
problems, the 3-bit flip-flop; scikit-learn's digits and statsmodels' CO2 and sunspots with
``rnnode[studies]``),
``SequenceModel`` (readouts, auxiliary heads, the LSTM gate-coupling penalty),
``PredictiveCoding`` (local prediction-error learning), and ``Trainer`` / ``train`` (seeded,
resumable minibatch training).
"""

from ._losses import gate_coupling_penalty as gate_coupling_penalty
from ._losses import layer_features as layer_features
from ._losses import task_loss as task_loss
from ._losses import task_metrics as task_metrics
from ._model import SequenceModel as SequenceModel
from ._more_tasks import future_task as future_task
from ._more_tasks import two_level_chain as two_level_chain
from ._more_tasks import two_level_chain_filter as two_level_chain_filter
from ._more_tasks import two_level_chain_task as two_level_chain_task
from ._more_tasks import two_sided_task as two_sided_task
from ._predictive import PredictiveCoding as PredictiveCoding
from ._tasks import TASK_KINDS as TASK_KINDS
from ._tasks import TASK_NAMES as TASK_NAMES
from ._tasks import Task as Task
from ._tasks import adding_task as adding_task
from ._tasks import co2_task as co2_task
from ._tasks import digits_task as digits_task
from ._tasks import flip_flop_task as flip_flop_task
from ._tasks import forecast_task as forecast_task
from ._tasks import make_task as make_task
from ._tasks import sines_task as sines_task
from ._tasks import sunspots_task as sunspots_task
from ._trainer import NonFiniteLossError as NonFiniteLossError
from ._trainer import Trainer as Trainer
from ._trainer import train as train

__all__ = [
    "NonFiniteLossError",
    "PredictiveCoding",
    "SequenceModel",
    "TASK_KINDS",
    "TASK_NAMES",
    "Task",
    "Trainer",
    "adding_task",
    "co2_task",
    "digits_task",
    "flip_flop_task",
    "forecast_task",
    "future_task",
    "gate_coupling_penalty",
    "layer_features",
    "make_task",
    "sines_task",
    "sunspots_task",
    "task_loss",
    "task_metrics",
    "train",
    "two_level_chain",
    "two_level_chain_filter",
    "two_level_chain_task",
    "two_sided_task",
]
