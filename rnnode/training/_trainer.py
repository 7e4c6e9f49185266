"""Training loop: seeded minibatch optimisation of a model with a ``loss(x, y)`` method.

The model (a ``SequenceModel``, ``PredictiveCoding`` or anything with
``loss(x, y) -> (loss, parts)`` and ``forward(x) -> prediction``) is trained on a ``Task``'s
batches. A run is a pure function of the model's initial weights, the seed and the settings on
the CPU: batches come from ``Task.batches(batch_size, seed)``, torch's global generator (dropout)
is seeded with ``seed`` at step 0, and a checkpoint stores everything that changes (weights,
optimiser state, step, generator state, history), so a run resumed from a checkpoint continues
exactly as the uninterrupted run.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write
from ._losses import task_metrics
from ._tasks import Task


def _progress_bar(show: bool, total: int, initial: int):
    """A tqdm bar when ``show`` (tqdm comes with ``rnnode[studies]``), else a silent stand-in."""
    if show:
        try:
            from tqdm.auto import tqdm
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "progress: the progress bar needs tqdm (pip install 'rnnode[studies]')"
            ) from error
        return tqdm(total=total, initial=initial, desc="train")
    return _NoBar()


class _NoBar:
    """The part of tqdm's interface the trainer uses, doing nothing."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None

    def set_postfix(self, **kwargs: object) -> None:
        return None


OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class Trainer:
    """Minibatch training of ``model`` on ``task``, with checkpoints and plain-data metrics.

    Arguments:
        model: a module with ``loss(x, y) -> (loss, parts: dict[str, float])`` and
            ``forward(x) -> prediction`` (``SequenceModel``, ``PredictiveCoding``).
        task: the task (its training batches and test split).
        lr: learning rate.
        batch_size: sequences per step.
        seed: seed of the batch order and of torch's generator (dropout).
        optimizer: ``"adam"`` or ``"sgd"``.
        clip_grad: clip the gradient's total norm to this value (None: no clipping).
        checkpoint: file to save checkpoints to (None: no checkpoints).
        checkpoint_every: save every this many steps (0: only at the end of ``fit``).
        progress: show a tqdm progress bar.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        *,
        lr: float = 1e-2,
        batch_size: int = 32,
        seed: int = 0,
        optimizer: str = "adam",
        clip_grad: float | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
        progress: bool = True,
    ):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
        if clip_grad is not None and not clip_grad > 0:
            raise ValueError(f"clip_grad: expected a positive norm or None, got {clip_grad!r}")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int):
            raise ValueError(f"checkpoint_every: expected an integer, got {checkpoint_every!r}")
        if checkpoint_every < 0:
            raise ValueError(f"checkpoint_every: expected >= 0, got {checkpoint_every}")
        if not hasattr(model, "loss"):
            raise ValueError(
                f"model: expected a module with loss(x, y), got {type(model).__name__}"
            )
        self.model = model
        self.task = task
        self.batch_size = batch_size
        self.seed = seed
        self.clip_grad = clip_grad
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.optimizer = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
        self.step = 0
        self.history: dict[str, list[float]] = {"step": [], "loss": []}

    # -- running ---------------------------------------------------------------------------------

    def fit(self, steps: int) -> dict:
        """Train until ``steps`` steps in all have been taken (a resumed trainer continues).

        Returns:
            ``metrics()``: plain data.

        Raises:
            NonFiniteLossError: the loss became NaN or infinite (nothing is updated by that
                batch; the last checkpoint is the last good state).
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps: expected a non-negative integer, got {steps!r}")
        if self.step == 0:
            torch.manual_seed(self.seed)
        batches = self.task.batches(self.batch_size, self.seed, start=self.step)
        self.model.train()
        with _progress_bar(self.progress, total=steps, initial=min(self.step, steps)) as bar:
            while self.step < steps:
                x, y = next(batches)
                loss, parts = self.model.loss(x, y)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"loss: became {value} at step {self.step + 1} "
                        f"(parts {parts}; last finite loss "
                        f"{self.history['loss'][-1] if self.history['loss'] else None}); "
                        "lower the learning rate, clip gradients or check the data"
                    )
                self.optimizer.zero_grad()
                loss.backward()
                if self.clip_grad is not None:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
                self.optimizer.step()
                self.step += 1
                self._record(value, parts)
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4g}")
                if (
                    self.checkpoint
                    and self.checkpoint_every
                    and (self.step % self.checkpoint_every == 0)
                ):
                    self.save(self.checkpoint)
        if self.checkpoint:
            self.save(self.checkpoint)
        return self.metrics()

    def _record(self, loss: float, parts: dict[str, float]) -> None:
        self.history["step"].append(float(self.step))
        self.history["loss"].append(loss)
        for name, value in parts.items():
            self.history.setdefault(name, []).append(float(value))

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """Scores of the model on the ``"train"`` or ``"test"`` split (``task_metrics``)."""
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        x, y = getattr(self.task, f"x_{split}"), getattr(self.task, f"y_{split}")
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            prediction = self.model(x)
        self.model.train(was_training)
        return task_metrics(prediction, y, self.task.kind)

    def metrics(self) -> dict:
        """``{"step": int, "history": {name: [float, ...]}, "test": {name: float}}``."""
        return {
            "step": self.step,
            "history": {k: list(v) for k, v in self.history.items()},
            "test": self.evaluate("test"),
        }

    # -- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything a resumed run needs: weights, optimiser, step, generator, history."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "rng": torch.get_rng_state(),
            "history": {k: list(v) for k, v in self.history.items()},
            "seed": self.seed,
            "batch_size": self.batch_size,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` to ``path`` atomically (a temporary file, then a rename)."""
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        atomic_write(path, buffer.getvalue())  # flushed to disk before the rename

    def load(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by ``save`` (``torch.load(..., weights_only=True)``)."""
        state = torch.load(path, weights_only=True)
        for name in ("seed", "batch_size"):
            if state[name] != getattr(self, name):
                raise ValueError(
                    f"{name}: the checkpoint was trained with {name}={state[name]}, got "
                    f"{getattr(self, name)}; a resumed run must use the same settings"
                )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        torch.set_rng_state(state["rng"])
        self.history = {k: [float(v) for v in vs] for k, vs in state["history"].items()}


def train(
    model: nn.Module,
    task: Task,
    *,
    steps: int,
    lr: float = 1e-2,
    batch_size: int = 32,
    seed: int = 0,
    optimizer: str = "adam",
    clip_grad: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train ``model`` on ``task`` for ``steps`` steps in all; see ``Trainer`` for arguments.

    ``resume=True`` continues from ``checkpoint`` when that file exists (the model's weights are
    replaced by the checkpoint's).

    Returns:
        Plain data: ``{"step": int, "history": {"step", "loss", parts...: [float]},
        "test": {"loss": float, "accuracy" or "rmse": float}}``.
    """
    trainer = Trainer(
        model,
        task,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        optimizer=optimizer,
        clip_grad=clip_grad,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        progress=progress,
    )
    if resume:
        if checkpoint is None:
            raise ValueError("resume: expected a checkpoint path to resume from, got None")
        if Path(checkpoint).exists():
            trainer.load(checkpoint)
    return trainer.fit(steps)
