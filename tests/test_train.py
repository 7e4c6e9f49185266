"""Training loop: determinism, checkpoints and resume, NaN detection, plain-data metrics.

References: a second identical run, an uninterrupted run, a hand-written SGD step, and the NFE
of a fixed-step solve counted by hand.
"""

import copy
import json
import math
import types

import pytest
import torch

import rnnode
from rnnode.studies import run_study
from rnnode.studies._run import train_with
from rnnode.training import SequenceModel, Trainer


def _task():
    return rnnode.training.sines_task(16, 8, 6, seed=2)


def _model(seed=0, dropout=0.3):
    torch.manual_seed(seed)
    rnn = rnnode.ODERNN(1, 4, 2, cell="gru", dropout=dropout)
    return SequenceModel(rnn, 2, per_step=True, aux_weights={0: 0.5})


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _without_seconds(metrics):
    return {k: v for k, v in metrics.items() if k != "seconds"}


def test_same_seed_gives_the_same_numbers_twice():
    runs = []
    for _ in range(2):
        model = _model()
        metrics = rnnode.training.train(
            model, _task(), steps=4, batch_size=4, seed=3, progress=False
        )
        runs.append((metrics, _params(model)))
    assert _without_seconds(runs[0][0]) == _without_seconds(runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    other = rnnode.training.train(_model(), _task(), steps=4, batch_size=4, seed=4, progress=False)
    assert other["history"]["loss"] != runs[0][0]["history"]["loss"]


def test_interrupted_and_resumed_run_equals_the_uninterrupted_run(tmp_path):
    task = _task()
    whole = Trainer(_model(), task, batch_size=4, seed=1, progress=False)
    expected = whole.fit(6)

    path = tmp_path / "run" / "checkpoint.pt"
    first = Trainer(_model(), task, batch_size=4, seed=1, checkpoint=path, progress=False)
    first_seconds = first.fit(3)["seconds"]
    torch.manual_seed(123)  # the interruption disturbs the global generator
    # A fresh process: a differently initialised model, restored from the checkpoint.
    resumed_model = _model(seed=9)
    got = rnnode.training.train(
        resumed_model,
        task,
        steps=6,
        batch_size=4,
        seed=1,
        checkpoint=path,
        resume=True,
        progress=False,
    )
    assert _without_seconds(got) == _without_seconds(expected)
    assert got["seconds"][:3] == first_seconds and len(got["seconds"]) == 6  # restored, then new
    assert all(
        torch.equal(a, b) for a, b in zip(_params(whole.model), _params(resumed_model), strict=True)
    )
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_checkpoint_holds_everything_and_loads_with_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    trainer = Trainer(
        _model(), _task(), batch_size=4, checkpoint=path, checkpoint_every=2, progress=False
    )
    trainer.fit(2)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 2 and state["seed"] == 0 and state["batch_size"] == 4
    assert set(state) == {
        "model",
        "optimizer",
        "step",
        "rng",
        "history",
        "seconds",
        "seed",
        "batch_size",
        "settings",
    }
    assert state["settings"] == trainer.settings()
    assert state["settings"]["lr"] == 1e-2 and state["settings"]["optimizer"] == "adam"
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(state["model"][name], value)
    assert torch.equal(state["rng"], torch.get_rng_state())
    assert state["optimizer"]["state"][0]["step"] == 2  # Adam's step count


def test_one_sgd_step_is_the_gradient_step():
    task = _task()
    model = _model(dropout=0.0)
    before = _params(model)
    x, y = next(task.batches(4, seed=0))
    loss, _ = model.loss(x, y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    Trainer(model, task, lr=0.1, batch_size=4, optimizer="sgd", progress=False).fit(1)
    for p0, g, p1 in zip(before, grads, _params(model), strict=True):
        torch.testing.assert_close(p1, p0 - 0.1 * g, rtol=0, atol=1e-15)


def test_nan_loss_stops_with_a_clear_error():
    task = _task()
    task.y_train[:] = float("nan")
    model = _model()
    before = _params(model)
    with pytest.raises(rnnode.training.NonFiniteLossError, match=r"loss: became nan at step 1"):
        rnnode.training.train(model, task, steps=3, batch_size=4, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))


def test_metrics_are_plain_data():
    metrics = rnnode.training.train(_model(), _task(), steps=2, batch_size=4, progress=False)
    assert json.loads(json.dumps(metrics)) == metrics
    assert set(metrics["history"]) == {"step", "loss", "task", "auxiliary", "nfe", "backward_nfe"}
    assert metrics["history"]["step"] == [1.0, 2.0]
    assert set(metrics["test"]) == {"loss", "rmse"}
    history = metrics["history"]
    for total, task, aux in zip(
        history["loss"], history["task"], history["auxiliary"], strict=True
    ):
        assert abs(total - task - aux) < 1e-12


def test_classification_metrics_report_accuracy():
    task = rnnode.training.digits_task("rows")
    task.x_train, task.y_train = task.x_train[:32], task.y_train[:32]
    task.x_test, task.y_test = task.x_test[:16], task.y_test[:16]
    model = SequenceModel.for_task(rnnode.ODERNN(8, 4), task)
    metrics = rnnode.training.train(model, task, steps=1, batch_size=8, progress=False)
    prediction = model(task.x_test).argmax(-1)
    assert metrics["test"]["accuracy"] == (prediction == task.y_test).double().mean().item()


def test_progress_bar_is_shown_and_can_be_disabled(capsys):
    rnnode.training.train(_model(), _task(), steps=1, batch_size=4, progress=True)
    assert "train" in capsys.readouterr().err
    rnnode.training.train(_model(), _task(), steps=1, batch_size=4, progress=False)
    assert capsys.readouterr().err == ""


def test_resume_with_other_settings_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    Trainer(_model(), _task(), batch_size=4, checkpoint=path, progress=False).fit(1)
    with pytest.raises(ValueError, match="seed"):
        rnnode.training.train(
            _model(),
            _task(),
            steps=2,
            batch_size=4,
            seed=5,
            checkpoint=path,
            resume=True,
            progress=False,
        )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"clip_grad": -1.0}, "clip_grad"),
        ({"checkpoint_every": -1}, "checkpoint_every"),
        ({"resume": True}, "resume"),
        ({"steps": -1}, "steps"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    kwargs = {"steps": 1, "progress": False, "batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=name):
        rnnode.training.train(_model(), _task(), **kwargs)


class _Diverging(torch.nn.Module):
    """A model whose forward (or backward) solve diverges."""

    def __init__(self, backward: bool):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.backward_fails = backward

    def loss(self, x, y):
        if not self.backward_fails:
            raise rnnode.DivergenceError("the state became non-finite: the dynamics diverge")

        class Fail(torch.autograd.Function):
            @staticmethod
            def forward(ctx, w):
                return w * 1.0

            @staticmethod
            def backward(ctx, grad):
                raise rnnode.DivergenceError("adjoint diverged")

        return Fail.apply(self.w), {}

    def forward(self, x):
        return torch.zeros(x.shape[0], 2)


@pytest.mark.parametrize("backward", [False, True])
def test_a_diverging_solve_is_the_documented_non_finite_loss_error(backward):
    with pytest.raises(rnnode.training.NonFiniteLossError, match="diverged at step 1") as caught:
        Trainer(_Diverging(backward), _task(), batch_size=4, progress=False).fit(2)
    assert isinstance(caught.value.__cause__, rnnode.DivergenceError)


class _Scripted(torch.nn.Module):
    """A one-weight model, loss (w - 1)^2, whose loss at step ``bad`` is ``kind``: a finite loss
    with an infinite gradient, sqrt(w - w) = 0; a solve that diverges; or a solve that refuses
    its step (ValueError, as rnnode's step-stability check)."""

    def __init__(self, bad: int, kind: str):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.bad, self.kind, self.calls = bad, kind, 0

    def loss(self, x, y):
        self.calls += 1
        if self.calls == self.bad:
            if self.kind == "inf_gradient":
                return torch.sqrt(self.w - self.w.detach()), {}
            if self.kind == "diverging_solve":
                raise rnnode.DivergenceError("the state left the box the flow keeps")
            raise ValueError("step_size: 1 is beyond euler's stable step 0.1 for tau = 0.05")
        return (self.w - 1.0) ** 2, {}

    def forward(self, x):
        return torch.zeros(*x.shape[:2], 2, dtype=x.dtype)  # the per-step shape of _task()


def _checkpoint_step(path):
    return torch.load(path, weights_only=True)["step"] if path.exists() else None


@pytest.mark.parametrize(
    ("kind", "error", "match"),
    [
        ("inf_gradient", rnnode.training.NonFiniteLossError, "^gradient: became non-finite at"),
        ("diverging_solve", rnnode.training.NonFiniteLossError, "forward solve diverged at"),
        ("refused_step", ValueError, "^step_size: "),
    ],
)
@pytest.mark.parametrize("bad", [1, 3])
def test_a_failing_step_updates_nothing_and_writes_no_checkpoint_of_it(
    tmp_path, kind, error, match, bad
):
    """Before: an infinite gradient (finite loss) made Adam's update NaN, the checkpoint of the
    next save held the NaN weights, and the error came one step later."""
    path = tmp_path / "c.pt"
    model = _Scripted(bad, kind)
    trainer = Trainer(
        model, _task(), batch_size=4, checkpoint=path, checkpoint_every=1, progress=False
    )
    before = None
    if bad > 1:
        trainer.fit(bad - 1)
        before = model.w.detach().clone()
    with pytest.raises(error, match=match):
        trainer.fit(bad + 2)
    assert trainer.step == bad - 1 and len(trainer.history["loss"]) == bad - 1
    assert _checkpoint_step(path) == (None if bad == 1 else bad - 1)
    assert torch.isfinite(model.w).all()
    if before is not None:
        assert torch.equal(model.w.detach(), before)
        assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], before)


def test_training_an_unstable_euler_step_stops_before_any_step(tmp_path):
    """Issue 20's case: tau = 0.05 with the default Euler step 1 (step / tau = 20, beyond Euler's
    limit 2). Before: three steps with states ~4e12 and losses ~5e23, and a checkpoint."""
    task = rnnode.training.adding_task(64, 16, length=10)
    torch.manual_seed(0)
    model = SequenceModel.for_task(rnnode.ODERNN(2, 4, tau=0.05, batch_first=True), task)
    before = _params(model)
    path = tmp_path / "c.pt"
    with pytest.raises(ValueError, match=r"^step_size: .*tau = 0\.05.*Use step_size <= 0\.1"):
        rnnode.training.train(
            model, task, steps=3, checkpoint=path, checkpoint_every=1, progress=False
        )
    assert not path.exists()
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))


def test_a_solve_that_leaves_the_flows_box_stops_training_without_a_checkpoint(tmp_path):
    """Euler step 1 at tau = 0.6 is within Euler's stability limit (1 / 0.6 < 2) but, with large
    weights, overshoots |h| <= 1, which the exact tanh flow never leaves: the solve raises
    DivergenceError, the trainer NonFiniteLossError (no update yet: the advice is not the
    learning rate's)."""
    task = rnnode.training.adding_task(64, 16, length=10)
    torch.manual_seed(0)
    model = SequenceModel.for_task(rnnode.ODERNN(2, 4, tau=0.6, batch_first=True), task)
    with torch.no_grad():
        for p in model.rnn.parameters():
            p.mul_(8.0)
    path = tmp_path / "c.pt"
    with pytest.raises(rnnode.training.NonFiniteLossError, match="before any update") as caught:
        rnnode.training.train(
            model, task, steps=3, checkpoint=path, checkpoint_every=1, progress=False
        )
    assert isinstance(caught.value.__cause__, rnnode.DivergenceError)
    assert "lower the learning rate" not in str(caught.value)
    assert not path.exists()


def test_an_update_that_overflows_the_weights_stops_at_that_step(tmp_path):
    """SGD with lr 1e308 on a float64 weight w = 0: w - lr * 2 (w - 1) = +inf after one step.
    Before: the inf weight was checkpointed and the error came at the next step's loss."""
    path = tmp_path / "c.pt"
    model = _Scripted(bad=0, kind="")
    trainer = Trainer(
        model,
        _task(),
        lr=1e308,
        optimizer="sgd",
        batch_size=4,
        checkpoint=path,
        checkpoint_every=1,
        progress=False,
    )
    with pytest.raises(
        rnnode.training.NonFiniteLossError, match="^weights: the update of step 1 made w"
    ):
        trainer.fit(3)
    assert not path.exists() and trainer.step == 0


def test_a_non_finite_model_is_never_saved(tmp_path):
    model = _Scripted(bad=0, kind="")
    trainer = Trainer(model, _task(), batch_size=4, progress=False)
    with torch.no_grad():
        model.w.fill_(math.nan)
    with pytest.raises(rnnode.training.NonFiniteLossError, match="^weights: w non-finite"):
        trainer.save(tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"clip_grad": "1"}, "clip_grad"),
        ({"lr": "0.1"}, "lr"),
        ({"batch_size": "4"}, "batch_size"),
        ({"seed": 1.5}, "seed"),
        ({"optimizer": None}, "optimizer"),
        ({"checkpoint_every": 1.0}, "checkpoint_every"),
        ({"checkpoint": 3}, "checkpoint"),
        ({"steps": "2"}, "steps"),
        ({"resume": "yes"}, "resume"),
    ],
)
def test_wrong_types_are_type_errors_naming_the_argument(kwargs, name):
    kwargs = {"steps": 1, "progress": False, "batch_size": 4, **kwargs}
    with pytest.raises(TypeError, match=f"^{name}: expected"):
        rnnode.training.train(_model(), _task(), **kwargs)


@pytest.mark.parametrize(
    ("build", "name", "error"),
    [
        (lambda rnn: SequenceModel(rnn, "2"), "output_size", TypeError),
        (lambda rnn: SequenceModel(rnn, 2, kind=3), "kind", TypeError),
        (lambda rnn: SequenceModel(rnn, 2, kind="ranking"), "kind", ValueError),
        (lambda rnn: SequenceModel(rnn, 2, per_step=1), "per_step", TypeError),
        (lambda rnn: SequenceModel(rnn, 2, aux_weights={"0": 1.0}), "aux_weights", TypeError),
        (lambda rnn: SequenceModel(rnn, 2, aux_weights={0: "1"}), r"aux_weights\[0\]", TypeError),
        (lambda rnn: SequenceModel(torch.nn.GRU(1, 4), 2), "rnn", TypeError),
        (
            lambda rnn: rnnode.training.PredictiveCoding(rnn, 2, local_weight="1"),
            "local_weight",
            TypeError,
        ),
        (lambda rnn: rnnode.training.PredictiveCoding(rnn, 0), "output_size", ValueError),
        (
            lambda rnn: rnnode.training.task_loss(torch.zeros(2), torch.zeros(2), 1),
            "kind",
            TypeError,
        ),
    ],
)
def test_training_arguments_name_themselves(build, name, error):
    with pytest.raises(error, match=f"^{name}: expected"):
        build(rnnode.ODERNN(1, 4, 2, cell="gru"))


def test_resume_restores_the_time_constants_the_solve_uses(tmp_path):
    path = tmp_path / "c.pt"
    torch.manual_seed(0)
    saved = SequenceModel(rnnode.ODERNN(1, 4, cell="gru", tau=3.0), 2, per_step=True)
    Trainer(saved, _task(), batch_size=4, checkpoint=path, progress=False).fit(1)
    resumed = SequenceModel(rnnode.ODERNN(1, 4, cell="gru"), 2, per_step=True)  # tau = 1
    Trainer(resumed, _task(), batch_size=4, progress=False).load(path)
    x = _task().x_test
    with torch.no_grad():
        torch.testing.assert_close(resumed(x), saved(x), rtol=0, atol=0)


# -- solver statistics and time per step ----------------------------------------------------------


@pytest.mark.parametrize("coupling", ["sampled", "continuous"])
def test_the_history_records_each_steps_forward_nfe(coupling):
    """rk4 with step 0.5 on unit sample intervals: 2 steps of 4 evaluations per interval, in each
    solved ODE (one per layer with sampled coupling, one for the stack with continuous)."""
    task, layers, steps = _task(), 3, 2
    rnn = rnnode.ODERNN(1, 4, layers, cell="gru", method="rk4", step_size=0.5, coupling=coupling)
    model = SequenceModel(rnn, 2, per_step=True)
    metrics = rnnode.training.train(model, task, steps=steps, batch_size=4, progress=False)
    groups = layers if coupling == "sampled" else 1
    expected = 4 * (task.length * math.ceil(1 / 0.5)) * groups
    assert metrics["history"]["nfe"] == [float(expected)] * steps
    assert metrics["history"]["backward_nfe"] == [0.0] * steps  # plain backprop evaluates nothing


def test_the_history_records_the_backward_nfe_of_the_adjoint():
    """Each step's NFE equals the stats of that step's solve, replayed by hand from the same
    weights and batch (dopri5: the counts depend on the weights)."""
    task = _task()
    torch.manual_seed(0)
    rnn = rnnode.ODERNN(1, 4, cell="gru", method="dopri5", rtol=1e-4, atol=1e-6)
    model = SequenceModel(rnn, 2, per_step=True, solve_options={"adjoint": True})
    replay = copy.deepcopy(model)  # the weights of step 1, before training changes them
    history = rnnode.training.train(model, task, steps=1, batch_size=4, lr=1e-3, progress=False)[
        "history"
    ]
    x, y = next(task.batches(4, seed=0))
    _, _, solution = replay.run(x)
    replay.loss(x, y)[0].backward()
    stats = replay._solver_stats()
    assert history["nfe"] == [float(solution.nfe)] == [float(sum(s.nfe for s in stats))]
    assert history["backward_nfe"] == [float(sum(s.backward_nfe for s in stats))]
    assert history["backward_nfe"][0] > 0


def test_seconds_per_step_are_kept_apart_from_the_history():
    trainer = Trainer(_model(), _task(), batch_size=4, progress=False)
    metrics = trainer.fit(3)
    assert len(metrics["seconds"]) == 3 and metrics["seconds"] == trainer.seconds
    assert all(math.isfinite(s) and s > 0 for s in metrics["seconds"])
    assert "seconds" not in metrics["history"]


def test_a_checkpoint_without_seconds_resumes_with_nan_for_its_steps(tmp_path):
    path = tmp_path / "old.pt"
    Trainer(_model(), _task(), batch_size=4, checkpoint=path, progress=False).fit(2)
    state = torch.load(path, weights_only=True)
    del state["seconds"]
    torch.save(state, path)
    got = rnnode.training.train(
        _model(), _task(), steps=3, batch_size=4, checkpoint=path, resume=True, progress=False
    )["seconds"]
    assert all(math.isnan(s) for s in got[:2]) and math.isfinite(got[2]) and len(got) == 3


def _training_study(ctx):
    """A study that stores a whole training history (its NFE too), as studies store losses."""
    task = _task()
    torch.manual_seed(ctx.seed)
    rnn = rnnode.ODERNN(1, 4, cell="gru", method="rk4", step_size=0.5)
    metrics = train_with(
        SequenceModel(rnn, 2, per_step=True),
        task,
        {"steps": 2, "lr": 1e-2, "batch_size": 4},
        ctx.seed,
    )
    return {"history": metrics["history"], "test": metrics["test"]}


def test_a_studys_metrics_with_a_training_history_are_the_same_bytes_twice(tmp_path):
    study = types.ModuleType("studies.trained", "A study that trains a small model.")
    study.run = _training_study
    runs = []
    for out in ("a", "b"):
        run_study(study, out=tmp_path / out, seed=3, workers=1, show_progress=False)
        runs.append((tmp_path / out / "trained" / "metrics.json").read_bytes())
    assert runs[0] == runs[1]
    assert b'"nfe"' in runs[0] and b"seconds" not in runs[0]
