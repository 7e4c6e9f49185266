"""The discretization bridge: torch.nn.RNN / GRU / LSTM <-> ODERNN, weights moved 1:1.

Explicit Euler with step 1 of dh/dt = -h + tanh(W_ih x + b_ih + W_hh h + b_hh), with the input
held over each sample interval, *is* torch.nn.RNN (and likewise for the GRU and LSTM fields):
``from_torch`` returns an ODERNN whose call with no solver arguments reproduces the torch module,
and ``to_torch`` goes back.
"""

from __future__ import annotations

import torch
from torch import nn

from ._settings import SolveSettings
from ._stack import ODERNN

__all__ = ["from_torch", "to_torch"]

#: The torch.nn module of each cell that has one (the one map, read both ways).
_TORCH_MODULES: dict[str, type[nn.LSTM] | type[nn.GRU] | type[nn.RNN]] = {
    "lstm": nn.LSTM,
    "gru": nn.GRU,
    "rnn": nn.RNN,
}
_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
#: The settings of the default solve (``SolveSettings()``, the discrete map) that torch.nn's
#: modules compute; coupling last (it matters only with several layers).
_DISCRETE_SOLVE = ("method", "step_size", "interpolation", "coupling")


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction else "")


def _cell_of(module: nn.Module) -> str:
    for cell, cls in _TORCH_MODULES.items():
        if isinstance(module, cls):
            return cell
    raise ValueError(
        f"module: expected torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM, got {type(module).__name__}"
    )


def from_torch(module: nn.RNNBase) -> ODERNN:
    """The ODERNN equivalent to a torch.nn.RNN, GRU or LSTM (same weights, copied).

    The result's defaults are the bridge (Euler, one step per unit sample interval, ``hold``,
    ``sampled`` coupling, tau = 1), so ``from_torch(m)(x, hx)`` equals ``m(x, hx)`` to rounding;
    pass solver arguments to ask what the same weights do as a continuous-time system.

    Arguments:
        module: a torch.nn.RNN (tanh or relu), GRU or LSTM in any configuration: layers,
            bidirectional, batch_first, bias=False, dropout (applied between layers in training,
            as torch does).

    Returns:
        ODERNN on the module's device and dtype, in the module's training mode.

    Raises:
        NotImplementedError: an LSTM with ``proj_size > 0`` (projected hidden states have no
            field here yet).
        ValueError: a module on the ``meta`` device (it has no weights to copy).

    Warnings:
        The weights are *copied*: the model and the module share nothing afterwards, so an edit
        of one (training, ``load_state_dict``, an in-place change) does not reach the other.
        Convert again after changing either. ``requires_grad`` is copied with each weight.
    """
    cell = _cell_of(module)
    if getattr(module, "proj_size", 0):
        raise NotImplementedError(
            f"module: LSTM with proj_size={module.proj_size} is not supported (only proj_size=0)"
        )
    reference = module.weight_ih_l0
    assert isinstance(reference, torch.Tensor)  # nn.Module's __getattr__ is typed loosely
    _check_not_meta("module", reference)
    model = ODERNN(
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        cell=cell,
        nonlinearity=module.nonlinearity if isinstance(module, nn.RNN) else None,
        bias=module.bias,
        batch_first=module.batch_first,
        bidirectional=module.bidirectional,
        dropout=module.dropout,
    ).to(device=reference.device, dtype=reference.dtype)
    _copy(module, model, to_model=True)
    return model.train(module.training)


def to_torch(model: ODERNN) -> nn.RNNBase:
    """The torch.nn.RNN, GRU or LSTM equal to ``model`` (weights copied).

    The torch module computes the discrete map only, so the model's *default solve* must be
    that map: ``method="euler"``, one step per sample interval (``step_size=None``),
    ``interpolation="hold"``, ``coupling="sampled"`` (any coupling for one layer) and a fixed
    tau = 1 in every layer. A model whose default is another solve (say dopri5 with a cubic
    input) computes something else than any torch module, and is refused rather than converted
    to a module that disagrees with it.

    Raises:
        ValueError: ``model`` has no discrete twin in torch.nn (a linear or other cell, skip
            connections, a time constant other than a fixed 1, or a default solve other than
            the discrete one; the message names the setting that differs), or its weights are
            on the ``meta`` device.

    Warnings:
        The weights are *copied*: the module and the model share nothing afterwards, so an edit
        of one does not reach the other.
    """
    _check_not_meta("model", model.layers[0].weight_ih)
    if model.cell not in _TORCH_MODULES:
        raise ValueError(
            f"model: cell={model.cell!r} has no torch.nn equivalent "
            f"(expected one of {tuple(_TORCH_MODULES)})"
        )
    if model.skips != (1,):
        raise ValueError(f"model: skips={model.skips} have no torch.nn equivalent (expected (1,))")
    for i, field in enumerate(model.layers):
        tau = field.tau.detach()
        learn = getattr(field, "learn_tau", False) or field.tau.requires_grad
        if learn or not bool((tau == 1.0).all()):
            shown = float(tau) if tau.dim() == 0 else tau.tolist()
            raise ValueError(
                f"model: layers[{i}] has tau={shown}{' (learnable)' if learn else ''}; "
                "torch.nn's cell is the Euler step only for a fixed tau = 1"
            )
    for name, value in _discrete_solve_mismatches(model):
        discrete = ", ".join(f"{k}={getattr(SolveSettings(), k)!r}" for k in _DISCRETE_SOLVE)
        raise ValueError(
            f"model: its default solve has {name}={value!r}, but torch.nn's module is the "
            f"discrete map only ({discrete}); set {name} back, or convert a model built with "
            "the defaults"
        )
    cls = _TORCH_MODULES[model.cell]
    kwargs = {"nonlinearity": model.nonlinearity} if model.cell == "rnn" else {}
    reference = model.layers[0].weight_ih
    module = cls(
        model.input_size,
        model.hidden_size,
        num_layers=model.num_layers,
        bias=model.bias,
        batch_first=model.batch_first,
        dropout=model.dropout,
        bidirectional=model.bidirectional,
        **kwargs,
    )
    module = module.to(device=reference.device, dtype=reference.dtype)
    _copy(module, model, to_model=False)
    return module.train(model.training)


def _check_not_meta(name: str, weight: torch.Tensor) -> None:
    if weight.device.type == "meta":
        raise ValueError(
            f"{name}: expected weights with values, got a module on the 'meta' device (shapes "
            "only, nothing to copy); materialise it first (module.to_empty(device='cpu') and "
            "load or initialise its weights)"
        )


def _discrete_solve_mismatches(model: ODERNN) -> list[tuple[str, object]]:
    """The settings of ``model``'s default solve that differ from the discrete map's."""
    names = _DISCRETE_SOLVE if model.num_layers > 1 else _DISCRETE_SOLVE[:-1]
    discrete, defaults = SolveSettings(), model.defaults  # one layer solves alike in both couplings
    return [
        (k, getattr(defaults, k)) for k in names if getattr(defaults, k) != getattr(discrete, k)
    ]


@torch.no_grad()
def _copy(module: nn.RNNBase, model: ODERNN, *, to_model: bool) -> None:
    for layer in range(model.num_layers):
        for direction in range(model.num_directions):
            field = model.field(layer, direction)
            for name in _PARAMETERS:
                ours = getattr(field, name)
                if ours is None:
                    continue
                theirs = getattr(module, name + _suffix(layer, direction))
                source, target = (theirs, ours) if to_model else (ours, theirs)
                target.copy_(source)
                # A frozen weight stays frozen on the other side.
                target.requires_grad_(source.requires_grad)
