"""Trainer resume: a checkpoint resumes only into the same settings, solve and architecture,
and a bad checkpoint is found early and named.

References: the settings, solve and architecture each checkpoint was written with.
"""

import pytest
import torch

import rnnode
from rnnode.training import SequenceModel, Trainer
from tests.test_train import _model, _params, _task

# -- resume never changes a setting silently; bad checkpoints are found early and named ----------


def _checkpointed(path, **kwargs):
    kwargs = {"batch_size": 4, "progress": False, **kwargs}
    Trainer(_model(), _task(), checkpoint=path, **kwargs).fit(1)


@pytest.mark.parametrize(
    ("changed", "name"),
    [
        ({"lr": 1e-4}, "lr"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"clip_grad": 1.0}, "clip_grad"),
        ({"batch_size": 2}, "batch_size"),
        ({"task": rnnode.training.sines_task(16, 8, 6, seed=3)}, "task"),
    ],
)
def test_resume_with_a_changed_setting_names_it(tmp_path, changed, name):
    path = tmp_path / "c.pt"
    _checkpointed(path, lr=1e-2)
    kwargs = {"steps": 2, "batch_size": 4, "lr": 1e-2, "progress": False, **changed}
    task = kwargs.pop("task", _task())
    model = _model()
    before = _params(model)
    with pytest.raises(ValueError, match=f"^{name}: the checkpoint .* was trained with {name}="):
        rnnode.training.train(model, task, checkpoint=path, resume=True, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))


def _euler_model(**solve_options):
    torch.manual_seed(0)
    rnn = rnnode.ODERNN(1, 4, cell="gru", tau=2.0)  # default solve: euler, one step per interval
    return SequenceModel(rnn, 2, per_step=True, solve_options=solve_options)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: _euler_model(method="rk4", step_size=0.5), "method"),  # issue 20's case
        (lambda: _euler_model(step_size=0.5), "step_size"),
        (lambda: _euler_model(interpolation="linear"), "interpolation"),
        (lambda: _euler_model(adjoint=True), "adjoint"),
        (lambda: _euler_model(detach_layers=True), "detach_layers"),
        (
            lambda: SequenceModel(
                rnnode.ODERNN(1, 4, cell="gru", tau=2.0, method="midpoint"), 2, per_step=True
            ),
            "method",
        ),
    ],
)
def test_resume_with_another_solve_names_it_before_loading(tmp_path, build, name):
    """Before: a checkpoint trained with Euler resumed under rk4 and the history mixed both."""
    path = tmp_path / "c.pt"
    Trainer(_euler_model(), _task(), batch_size=4, checkpoint=path, progress=False).fit(1)
    model = build()
    before = _params(model)
    with pytest.raises(ValueError, match=f"^{name}: the checkpoint .* solve's {name}="):
        rnnode.training.train(
            model, _task(), steps=2, batch_size=4, checkpoint=path, resume=True, progress=False
        )
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))


def test_resume_accepts_the_same_solve_however_it_is_written(tmp_path):
    """rk4 with step 0.5 as the stack's default, or as the model's solve options: one solve;
    rtol and atol, which Euler never reads, may differ."""
    path = tmp_path / "c.pt"
    torch.manual_seed(0)
    rnn = rnnode.ODERNN(1, 4, cell="gru", method="rk4", step_size=0.5, rtol=1e-3)
    saved = SequenceModel(rnn, 2, per_step=True)
    Trainer(saved, _task(), batch_size=4, checkpoint=path, progress=False).fit(1)
    resumed = _euler_model(method="rk4", step_size=0.5)
    trainer = Trainer(resumed, _task(), batch_size=4, progress=False)
    trainer.load(path)
    assert trainer.step == 1
    assert all(torch.equal(a, b) for a, b in zip(_params(saved), _params(resumed), strict=True))


@pytest.mark.parametrize(
    ("rnn", "name"),
    [
        (lambda: rnnode.ODERNN(1, 8, 2, cell="gru", dropout=0.3), "hidden_size"),
        (lambda: rnnode.ODERNN(1, 4, 2, cell="lstm", dropout=0.3), "cell"),
        (lambda: rnnode.ODERNN(1, 4, 3, cell="gru", dropout=0.3), "num_layers"),
    ],
)
def test_resume_into_another_architecture_names_what_differs(tmp_path, rnn, name):
    """Before: torch's load_state_dict RuntimeError 'size mismatch for ...'."""
    path = tmp_path / "c.pt"
    _checkpointed(path)
    model = SequenceModel(rnn(), 2, per_step=True, aux_weights={0: 0.5})
    before = _params(model)
    with pytest.raises(
        ValueError, match=f"^{name}: the checkpoint .*c.pt holds a model with {name}="
    ):
        Trainer(model, _task(), batch_size=4, progress=False).load(path)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))


def test_tanh_and_relu_stacks_share_shapes_but_not_a_checkpoint(tmp_path):
    path = tmp_path / "c.pt"
    torch.manual_seed(0)
    tanh = SequenceModel(rnnode.ODERNN(1, 4), 2, per_step=True)
    Trainer(tanh, _task(), batch_size=4, checkpoint=path, progress=False).fit(1)
    relu = SequenceModel(rnnode.ODERNN(1, 4, nonlinearity="relu"), 2, per_step=True)
    with pytest.raises(
        ValueError, match="^nonlinearity: .* holds a model with nonlinearity='tanh'"
    ):
        Trainer(relu, _task(), batch_size=4, progress=False).load(path)


class _Softsign(rnnode.ElmanField):
    """A user-defined field with the Elman cell's weights: dh/dt = (softsign(.) - h) / tau."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self._sigma = torch.nn.functional.softsign


def test_a_user_defined_field_of_the_same_shapes_does_not_take_anothers_checkpoint(tmp_path):
    path = tmp_path / "c.pt"
    torch.manual_seed(0)
    fields = [rnnode.ElmanField(1, 4), _Softsign(4, 4)]
    saved = SequenceModel(rnnode.ODERNN.from_fields(fields), 2, per_step=True)
    Trainer(saved, _task(), batch_size=4, checkpoint=path, progress=False).fit(1)
    fields = [_Softsign(1, 4), rnnode.ElmanField(4, 4)]  # the same weights' shapes
    other = SequenceModel(rnnode.ODERNN.from_fields(fields), 2, per_step=True)
    match = r"^fields: .* holds a model with fields=\['ElmanField', '_Softsign'\], got"
    with pytest.raises(ValueError, match=match):
        Trainer(other, _task(), batch_size=4, progress=False).load(path)


def test_an_older_checkpoint_of_another_size_names_the_weights(tmp_path):
    """A checkpoint without the architecture record: the weights' shapes are compared."""
    path = tmp_path / "old.pt"
    _checkpointed(path)
    state = torch.load(path, weights_only=True)
    del state["settings"]["model"], state["settings"]["solve"]
    torch.save(state, path)
    model = SequenceModel(rnnode.ODERNN(1, 8, 2, cell="gru"), 2, per_step=True, aux_weights={0: 1})
    before = _params(model)
    with pytest.raises(
        ValueError, match=r"^model: the checkpoint .*old.pt holds the weights of"
    ) as caught:
        Trainer(model, _task(), batch_size=4, progress=False).load(path)
    assert "(12, 4) there, (24, 8) here" in str(caught.value)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))


def test_resume_with_the_same_settings_keeps_the_requested_learning_rate(tmp_path):
    path = tmp_path / "c.pt"
    _checkpointed(path, lr=1e-3)
    trainer = Trainer(_model(), _task(), lr=1e-3, batch_size=4, checkpoint=path, progress=False)
    trainer.load(path)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-3]


def test_old_checkpoints_without_settings_are_checked_from_their_optimizer(tmp_path):
    path = tmp_path / "old.pt"
    _checkpointed(path, lr=1e-2)
    state = torch.load(path, weights_only=True)
    del state["settings"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="^lr: the checkpoint"):
        Trainer(_model(), _task(), lr=1e-4, batch_size=4, progress=False).load(path)
    with pytest.raises(ValueError, match="^optimizer: the checkpoint"):
        Trainer(_model(), _task(), optimizer="sgd", batch_size=4, progress=False).load(path)


@pytest.mark.parametrize("where", ["parent_is_a_file", "is_a_folder"])
def test_an_invalid_checkpoint_path_is_found_before_training(tmp_path, where):
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "c.pt" if where == "parent_is_a_file" else tmp_path
    model = _model()
    before = _params(model)
    with pytest.raises(ValueError, match="^checkpoint: expected a"):
        rnnode.training.train(
            model, _task(), steps=2, batch_size=4, checkpoint=path, progress=False
        )
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "not_a_checkpoint"])
def test_a_corrupt_checkpoint_gives_one_clear_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "c.pt"
    _checkpointed(path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"this is not a checkpoint\n" * 50)
    else:
        torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a readable Trainer checkpoint") as caught:
        rnnode.training.train(
            _model(), _task(), steps=2, batch_size=4, checkpoint=path, resume=True, progress=False
        )
    assert str(path) in str(caught.value)
    text = "".join(map(str, (caught.value, caught.value.__cause__, caught.value.__context__)))
    assert "weights_only=False" not in text and "weights_only" not in str(caught.value)
