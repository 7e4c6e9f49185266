"""What every readout model on an ``ODERNN`` shares (``SequenceModel``, ``PredictiveCoding``).

The checks of the stack and of the readout's size, kind and timing; the options of every solve;
the solver statistics of the last solve, which ``rnnode.training.train`` records per step; and
the model's architecture and solve as plain data, which a resumed ``Trainer`` must share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from .._settings import SolveSettings
from .._solve import FIXED_METHODS, SolverStats
from .._stack import ODERNN, Solution
from .._validate import check_bool, check_choice, check_int
from ._tasks import TASK_KINDS, Task

_R = TypeVar("_R", bound="_Readout")


class _Readout(nn.Module):
    """A readout on an ODERNN.

    Arguments:
        rnn: the recurrent stack.
        output_size: features of the prediction (classes for classification).
        kind: ``"regression"``, ``"classification"`` or ``"forecast"``.
        per_step: predict at every sample time (else from the last one).
        solve_options: keyword arguments for every ``rnn.solve`` call.
    """

    def __init__(
        self,
        rnn: ODERNN,
        output_size: int,
        *,
        kind: str,
        per_step: bool,
        solve_options: Mapping[str, object] | None,
    ):
        super().__init__()
        if not isinstance(rnn, ODERNN):
            raise TypeError(f"rnn: expected an rnnode.ODERNN, got {type(rnn).__name__}")
        check_int("output_size", output_size, minimum=1)
        check_choice("kind", kind, TASK_KINDS)
        check_bool("per_step", per_step)
        self.rnn = rnn
        self.kind = kind
        self.per_step = per_step
        # Any: ``rnn.solve`` checks each option when called.
        self.solve_options: dict[str, Any] = dict(solve_options or {})
        # The statistics of the last ``_solve`` (filled in further by its backward).
        self._last_stats: dict[tuple[int, int], SolverStats] = {}

    @classmethod
    def for_task(cls: type[_R], rnn: ODERNN, task: Task, **kwargs) -> _R:
        """The model whose readout fits ``task`` (output size, kind, per-step targets)."""
        return cls(rnn, task.output_size, kind=task.kind, per_step=task.per_step, **kwargs)

    def _solve(self, x: torch.Tensor, **kwargs) -> Solution:
        """``rnn.solve`` of batch-first x (batch, T, input_size) with the model's options."""
        solution = self.rnn.solve(
            x if self.rnn.batch_first else x.transpose(0, 1), **kwargs, **self.solve_options
        )
        self._last_stats = solution.stats
        return solution

    def _solver_stats(self) -> list[SolverStats]:
        """``rnnode.SolverStats`` of every ODE the last solve solved (its ``backward_nfe``
        counts once that solve's loss has been backpropagated); what ``rnnode.training.train``
        records per step."""
        return list(self._last_stats.values())

    def _solve_settings(self) -> dict[str, Any]:
        """The solve every training step runs, as plain data: the stack's default
        ``SolveSettings`` overridden by ``solve_options`` (tolerances only for adaptive
        methods, which alone read them), then the other solve keywords (``adjoint``,
        ``options`` and any more given). A resumed ``Trainer`` must run the same solve."""
        names = {f.name for f in dataclasses.fields(SolveSettings)}
        given = {k: v for k, v in self.solve_options.items() if k in names}
        record: dict[str, Any] = dataclasses.asdict(self.rnn.defaults.override(**given))
        if record["method"] in FIXED_METHODS:
            del record["rtol"], record["atol"]
        record["adjoint"] = bool(self.solve_options.get("adjoint", False))
        record["options"] = None
        for name, value in self.solve_options.items():
            if name not in names and name != "adjoint":
                record[name] = _plain(value)
        return record

    def _architecture(self) -> dict[str, Any]:
        """What the weights mean, as plain data: the model's class, the stack's sizes, cell,
        nonlinearity, bias, directions, skips, field classes and dropout, and the readout's kind
        and timing. A resumed ``Trainer`` refuses a checkpoint of another architecture, naming
        what differs (the shapes of the weights alone cannot tell tanh from relu)."""
        rnn = self.rnn
        return {
            "model": type(self).__name__,
            "input_size": rnn.input_size,
            "hidden_size": rnn.hidden_size,
            "num_layers": rnn.num_layers,
            "cell": rnn.cell,
            "nonlinearity": rnn.nonlinearity,
            "bias": rnn.bias,
            "bidirectional": rnn.bidirectional,
            "skips": list(rnn.skips),
            "fields": [type(layer).__name__ for layer in rnn.layers],  # user-defined ones too
            "dropout": rnn.dropout,
            "kind": self.kind,
            "per_step": self.per_step,
        }


def _plain(value: object) -> object:
    """``value`` with tensors as nested lists (a checkpoint's settings are plain data)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
