"""Training loop: seeded minibatch optimisation of a model with a ``loss(x, y)`` method.

The model (a ``SequenceModel``, ``PredictiveCoding`` or anything with
``loss(x, y) -> (loss, parts)`` and ``forward(x) -> prediction``) is trained on a ``Task``'s
batches. A run is a pure function of the model's initial weights, the seed and the settings on
the CPU: batches come from ``Task.batches(batch_size, seed)``, torch's global generator (dropout)
is seeded with ``seed`` at step 0, and a checkpoint stores everything that changes (weights,
optimiser state, step, generator state, history), so a run resumed from a checkpoint continues
exactly as the uninterrupted run.

The history records per step the loss and its parts and, for models that report their solves'
statistics (``SequenceModel``), the forward and backward NFE of the step's solve; it is a pure
function of the run, as above. The wall-clock seconds of each step are kept apart from it
(``Trainer.seconds``, ``metrics()["seconds"]``): they differ on every run, so a history stays
byte-identical across runs and resumes.

What stops a run, and what is left on disk: a step is checked at each stage, and a step that
fails writes no checkpoint, so the checkpoint on disk is always that of the last good step.

- The solve refuses its settings before solving (a fixed step beyond the method's stable step
  for tau): its ``ValueError`` is passed on as raised; it names the setting to change.
- The solve diverges (non-finite states, or states outside the box the exact flow keeps):
  ``NonFiniteLossError`` with the solve's ``DivergenceError`` as its cause; nothing is updated.
- The loss, or a gradient, is NaN or infinite: ``NonFiniteLossError``; nothing is updated.
- The update makes a weight NaN or infinite: ``NonFiniteLossError`` at that step, before any
  save (``save`` refuses non-finite weights in any case).

A finite but absurd loss is not judged here: what "absurd" means belongs to the model and its
solve, which raise as above when their states leave what the dynamics allow.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn
from tqdm.auto import tqdm

from .._io import atomic_write
from .._solve import DivergenceError
from .._validate import check_bool, check_choice, check_int, check_positive
from ._losses import task_metrics
from ._tasks import Task

__all__ = ["OPTIMIZERS", "NonFiniteLossError", "Trainer", "train"]


@runtime_checkable
class _HasLoss(Protocol):
    """What the trainer calls besides ``nn.Module``'s members: ``loss(x, y)``."""

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]: ...


def _progress_bar(show: bool, total: int, initial: int):
    """A tqdm bar when ``show``, else a silent stand-in."""
    if show:
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
    """Training diverged: the loss or a gradient became NaN or infinite, an update made a weight
    non-finite, or the forward or backward solve diverged (then the solver's
    ``rnnode.DivergenceError`` is this error's ``__cause__``).

    The one exception ``Trainer.fit`` raises for a run that diverged. No checkpoint of the
    diverged state is written (``Trainer.save`` refuses non-finite weights), so the last
    checkpoint is the last good state; a diverging loss, gradient or solve updates nothing.
    """


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
        check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
        lr = check_positive("lr", lr)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        seed = check_int("seed", seed, minimum=0)
        clip_grad = check_positive("clip_grad", clip_grad, allow_none=True)
        checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=0)
        progress = check_bool("progress", progress)
        if not isinstance(model, _HasLoss):  # hasattr(model, "loss")
            raise ValueError(
                f"model: expected a module with loss(x, y), got {type(model).__name__}"
            )
        if not isinstance(task, Task):
            raise TypeError(f"task: expected an rnnode.training.Task, got {type(task).__name__}")
        self.model = model
        self.task = task
        self.lr = lr
        self.optimizer_name = optimizer
        self.batch_size = batch_size
        self.seed = seed
        self.clip_grad = clip_grad
        # Checked now, not at the first save after the whole training.
        self.checkpoint = None if checkpoint is None else _check_checkpoint_path(checkpoint)
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.optimizer = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
        self.step = 0
        #: Per step (a pure function of the run): ``step``, ``loss``, the loss's parts and, for
        #: models that report solver statistics, ``nfe`` and ``backward_nfe``.
        self.history: dict[str, list[float]] = {"step": [], "loss": []}
        #: Wall-clock seconds of each step (forward, backward and update), apart from the
        #: history because no two runs share them.
        self.seconds: list[float] = []

    # -- running ---------------------------------------------------------------------------------

    def fit(self, steps: int) -> dict:
        """Train until ``steps`` steps in all have been taken (a resumed trainer continues).

        Returns:
            ``metrics()``: plain data.

        A step that raises writes no checkpoint: the checkpoints on disk are those of the
        steps before it.

        Raises:
            NonFiniteLossError: training diverged: the loss or a gradient became NaN or
                infinite (nothing is updated by that batch), an update made a weight non-finite,
                or the solve diverged (``rnnode.DivergenceError``, chained as the cause).
            ValueError: the model refused its input or its solve before solving (for example
                a fixed step beyond the method's stable step for the model's tau), passed on
                as raised: the model's own message names the setting to change.
        """
        steps = check_int("steps", steps, minimum=0)
        if self.step == 0:
            torch.manual_seed(self.seed)
        batches = self.task.batches(self.batch_size, self.seed, start=self.step)
        self.model.train()
        with _progress_bar(self.progress, total=steps, initial=min(self.step, steps)) as bar:
            while self.step < steps:
                x, y = next(batches)
                started = time.perf_counter()
                try:
                    loss, parts = self.model.loss(x, y)
                except DivergenceError as error:
                    raise self._diverged("forward", error) from error
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"loss: became {value} at step {self.step + 1} "
                        f"(parts {parts}; last finite loss "
                        f"{self.history['loss'][-1] if self.history['loss'] else None}); "
                        "lower the learning rate, clip gradients or check the data"
                    )
                self.optimizer.zero_grad()
                try:
                    loss.backward()
                except DivergenceError as error:
                    self.optimizer.zero_grad()
                    raise self._diverged("backward", error) from error
                bad = _non_finite(self.model, grad=True)
                if bad:
                    self.optimizer.zero_grad()
                    raise NonFiniteLossError(
                        f"gradient: became non-finite at step {self.step + 1} in {bad} (loss "
                        f"{value}); nothing was updated; lower the learning rate, clip "
                        "gradients or check the data"
                    )
                if self.clip_grad is not None:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
                self.optimizer.step()
                bad = _non_finite(self.model)
                if bad:
                    # The update overflowed: the model is lost, the checkpoint is not written.
                    raise NonFiniteLossError(
                        f"weights: the update of step {self.step + 1} made {bad} non-finite "
                        f"(loss {value}); the last checkpoint is the last good state; lower "
                        "the learning rate or clip gradients"
                    )
                if loss.is_cuda:  # the step's kernels are queued: wait for them before timing
                    torch.cuda.synchronize(loss.device)
                self.seconds.append(time.perf_counter() - started)
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

    def _diverged(self, where: str, error: DivergenceError) -> NonFiniteLossError:
        if self.history["loss"]:
            advice = (
                f"last finite loss {self.history['loss'][-1]}; lower the learning rate, clip "
                "gradients or check the data"
            )
        else:  # no update yet: the model diverges as it was built, whatever the training
            advice = "before any update: the model diverges as built; change its solve or tau"
        return NonFiniteLossError(
            f"loss: the {where} solve diverged at step {self.step + 1} ({error}); {advice}"
        )

    def _record(self, loss: float, parts: dict[str, float]) -> None:
        self.history["step"].append(float(self.step))
        self.history["loss"].append(loss)
        for name, value in parts.items():
            self.history.setdefault(name, []).append(float(value))
        stats = _solver_stats(self.model)
        if stats is not None:
            self.history.setdefault("nfe", []).append(float(sum(s.nfe for s in stats)))
            self.history.setdefault("backward_nfe", []).append(
                float(sum(s.backward_nfe for s in stats))
            )

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
        """``{"step": int, "history": {name: [float, ...]}, "seconds": [float, ...],
        "test": {name: float}}``; ``seconds`` (wall clock, per step) is the one entry that
        differs between two runs of the same settings."""
        return {
            "step": self.step,
            "history": {k: list(v) for k, v in self.history.items()},
            "seconds": list(self.seconds),
            "test": self.evaluate("test"),
        }

    # -- checkpoints -----------------------------------------------------------------------------

    def settings(self) -> dict:
        """The settings a resumed run must share with the run it resumes (plain data): the
        learning rate, optimizer, batch size, seed, gradient clipping and the task (its name,
        kind and a SHA-256 of its training data); for readout models on an ``ODERNN``
        (``SequenceModel``, ``PredictiveCoding``) also ``"model"``, the architecture (sizes,
        cell, nonlinearity, ...), and ``"solve"``, the solve of every step (the stack's default
        ``SolveSettings`` overridden by the model's ``solve_options``)."""
        settings = {
            "lr": self.lr,
            "optimizer": self.optimizer_name,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "clip_grad": self.clip_grad,
            "task": _task_fingerprint(self.task),
        }
        for name, report in (("model", "_architecture"), ("solve", "_solve_settings")):
            method = getattr(self.model, report, None)
            if method is not None:
                settings[name] = method()
        return settings

    def state_dict(self) -> dict:
        """Everything a resumed run needs: weights, optimiser, step, generator, history, and the
        ``settings()`` it was trained with."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "rng": torch.get_rng_state(),
            "history": {k: list(v) for k, v in self.history.items()},
            "seconds": list(self.seconds),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "settings": self.settings(),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` to ``path`` atomically (a temporary file, then a rename).

        Raises:
            NonFiniteLossError: a weight is NaN or infinite (such a state is never written).
        """
        bad = _non_finite(self.model)
        if bad:
            raise NonFiniteLossError(
                f"weights: {bad} non-finite at step {self.step}; not writing the checkpoint {path}"
            )
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        atomic_write(path, buffer.getvalue())  # flushed to disk before the rename

    def load(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by ``save`` (``torch.load(..., weights_only=True)``).

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not a readable checkpoint (truncated, empty, or not written
                by ``save``), or it was trained with other settings than this trainer's or its
                model's solve, or holds a model of another architecture (the message names the
                setting: a resumed run never changes a setting silently). Nothing is loaded.
        """
        state = _read_checkpoint(path)
        saved = _saved_settings(state)
        for name, value in self.settings().items():
            if name in _GROUPS and name in saved:
                _compare_group(path, name, saved[name], value)
            elif name in saved and saved[name] != value:
                raise ValueError(
                    f"{name}: the checkpoint {path} was trained with {name}={saved[name]!r}, "
                    f"got {name}={value!r}; a resumed run must use the same settings (or "
                    "write a new checkpoint)"
                )
        _compare_weights(path, state["model"], self.model.state_dict())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        torch.set_rng_state(state["rng"])
        self.history = {k: [float(v) for v in vs] for k, vs in state["history"].items()}
        # Checkpoints written before the seconds were kept: NaN, not measured.
        self.seconds = [float(v) for v in state.get("seconds", [math.nan] * self.step)]


_CHECKPOINT_KEYS = ("model", "optimizer", "step", "rng", "history", "seed", "batch_size")

#: Settings that are dicts of settings, compared (and named) one entry at a time.
_GROUPS = {
    "model": "holds a model with",
    "solve": "was trained with the solve's",
}


def _compare_group(path: str | os.PathLike, group: str, saved: dict, now: dict) -> None:
    """ValueError naming the first entry of ``group`` in which the checkpoint differs."""
    for key in [*now, *(k for k in saved if k not in now)]:
        old, new = saved.get(key, _ABSENT), now.get(key, _ABSENT)
        if old != new:
            what = "architecture" if group == "model" else "solve"
            raise ValueError(
                f"{key}: the checkpoint {path} {_GROUPS[group]} {key}={old!r}, got "
                f"{key}={new!r}; a resumed run must use the checkpoint's {what} (or write a "
                "new checkpoint)"
            )


class _Absent:
    def __repr__(self) -> str:
        return "<not given>"


_ABSENT = _Absent()


def _compare_weights(path: str | os.PathLike, saved: dict, now: dict) -> None:
    """ValueError naming the weights whose names or shapes differ between a checkpoint and the
    model it is loaded into (instead of ``load_state_dict``'s size-mismatch RuntimeError)."""
    missing = [k for k in now if k not in saved]
    extra = [k for k in saved if k not in now]
    shapes = [
        f"{k} {tuple(saved[k].shape)} there, {tuple(v.shape)} here"
        for k, v in now.items()
        if k in saved and tuple(saved[k].shape) != tuple(v.shape)
    ]
    if not (missing or extra or shapes):
        return
    parts = []
    if shapes:
        parts.append("other shapes: " + "; ".join(shapes[:3]) + (" ..." if len(shapes) > 3 else ""))
    if missing:
        parts.append(f"weights the checkpoint lacks: {missing[:3]}")
    if extra:
        parts.append(f"weights this model lacks: {extra[:3]}")
    raise ValueError(
        f"model: the checkpoint {path} holds the weights of another architecture ("
        + "; ".join(parts)
        + "); resume into a model built like the checkpoint's (hidden size, cell, layers), or "
        "write a new checkpoint"
    )


def _solver_stats(model: nn.Module) -> list | None:
    """The ``rnnode.SolverStats`` of the model's last solve, if it reports them (a private
    ``_solver_stats()`` method, as ``SequenceModel``'s); None otherwise."""
    report = getattr(model, "_solver_stats", None)
    return None if report is None else list(report())


def _non_finite(model: nn.Module, *, grad: bool = False) -> str | None:
    """The names of the parameters (or, with ``grad``, their gradients) holding a NaN or an
    infinity, or None when all are finite: one host synchronisation."""
    named = []
    for name, p in model.named_parameters():
        value = p.grad if grad else p.detach()
        if value is not None:
            named.append((name, value))
    if not named:
        return None
    finite = torch.stack([torch.isfinite(t).all() for _, t in named]).tolist()
    if all(finite):
        return None
    names = [name for (name, _), ok in zip(named, finite, strict=True) if not ok]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _check_checkpoint_path(checkpoint: object) -> Path:
    """A checkpoint path whose folder exists (made if needed) and can be written to."""
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint: expected a file path or None, got {type(checkpoint).__name__}"
        )
    path = Path(checkpoint)
    if path.is_dir():
        raise ValueError(f"checkpoint: expected a file path, got the folder {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        raise ValueError(
            f"checkpoint: expected a path in a writable folder, got {path} "
            f"({error.strerror or type(error).__name__})"
        ) from None
    return path


def _read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint at ``path``, read with ``weights_only=True``, or one clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no checkpoint file at {path}")
    if path.stat().st_size == 0:
        reason = "the file is empty"
    else:
        try:
            state = torch.load(path, weights_only=True)
        except Exception as error:  # noqa: BLE001 - every failure to read is the same answer
            # torch's own message may suggest weights_only=False: never follow it for a file
            # that does not read, so it is not repeated here.
            reason = f"{type(error).__name__} while reading it"
        else:
            missing = (
                [k for k in _CHECKPOINT_KEYS if k not in state]
                if isinstance(state, dict)
                else list(_CHECKPOINT_KEYS)
            )
            if not missing:
                return state
            reason = f"it lacks {missing}"
    raise ValueError(
        f"checkpoint: {path} is not a readable Trainer checkpoint ({reason}); it may be "
        "truncated or written by something else: delete it to start afresh, or resume from "
        "another file"
    )


def _saved_settings(state: dict) -> dict:
    """The settings a checkpoint was trained with (older checkpoints: read from its state)."""
    if "settings" in state:
        return dict(state["settings"])
    group = state["optimizer"]["param_groups"][0]
    optimizer = "adam" if "betas" in group else "sgd" if "momentum" in group else None
    saved = {"lr": group["lr"], "seed": state["seed"], "batch_size": state["batch_size"]}
    if optimizer is not None:
        saved["optimizer"] = optimizer
    return saved


def _task_fingerprint(task: Task) -> dict:
    """Name, kind and a SHA-256 of the training data: the same task, or not."""
    digest = hashlib.sha256()
    for tensor in (task.x_train, task.y_train):
        digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {"name": task.name, "kind": task.kind, "sha256": digest.hexdigest()}


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
    replaced by the checkpoint's); a checkpoint trained with other settings (learning rate,
    optimizer, batch size, seed, clipping, task, the solve) or of another architecture (hidden
    size, cell, ...) is refused with an error naming the setting, before any weight is replaced.

    Returns:
        Plain data: ``{"step": int, "history": {"step", "loss", parts..., and for models that
        report solver statistics "nfe", "backward_nfe": [float]}, "seconds": [float],
        "test": {"loss": float, "accuracy" or "rmse": float}}``. ``history["nfe"][i]`` is the
        forward NFE of step i's solve summed over its ODEs (``Solution.stats``),
        ``backward_nfe`` the evaluations its ``backward()`` made (0 with plain backprop);
        ``seconds[i]`` the step's wall-clock time (forward, backward and update), kept out of
        the history because it differs on every run.
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
    if check_bool("resume", resume):
        if checkpoint is None:
            raise ValueError("resume: expected a checkpoint path to resume from, got None")
        if Path(checkpoint).exists():
            trainer.load(checkpoint)
    return trainer.fit(steps)
