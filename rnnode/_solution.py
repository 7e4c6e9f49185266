"""The result of one solve of an ``ODERNN`` (``Solution``) and the probes of its state gradients."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cached_property

import torch

from ._solve import SolverStats
from ._topology import Topology, check_layer

__all__ = ["Solution"]


@dataclass(frozen=True)
class _Probe:
    """Zeros added to the states of ``layers`` (one direction) at every sample time, so that the
    gradient of a loss with respect to ``tensor`` is dLoss/dstate there."""

    layers: tuple[int, ...]
    direction: int
    tensor: torch.Tensor  # (T + 1, batch, sum(sizes)), in the direction's own time order
    sizes: tuple[int, ...]


@dataclass
class Solution:
    """Everything one solve of an ODERNN produced.

    Attributes:
        output: top layer's hidden states at the sample times, torch's layout:
            (T, batch, D * hidden) or (batch, T, D * hidden) when batch_first.
        h_n: final hidden states (D * num_layers, batch, hidden); for LSTM ``(h_n, c_n)``.
        times: (T + 1,) the start time t_0 and the sample times; with per-sequence times
            (T + 1, batch), or (batch, T + 1) when batch_first.
        states: (num_layers, D, T + 1, batch, state_size): every layer's full state at every time
            in ``times``, in forward time order for both directions (the reverse direction starts
            at t_T and ends at t_0).
        nfe: number of joint vector-field evaluations of the forward solve, summed over the
            solved ODEs (one per layer and direction with sampled coupling, one per direction
            with continuous coupling).
        hidden_size: features of h, the first part of each state.
        gates: with ``solve(..., return_gates=True)`` (LSTM), a dict of the gates ``i, f, g, o``,
            each (num_layers, D, T, batch, hidden): entry k is the gate of the step into sample
            k + 1, ``gate_values(state at t_k, drive at t_k^+)`` (forward time order for both
            directions, as ``output``); otherwise None.
        stats: ``rnnode.SolverStats`` of every solved ODE, keyed by (first layer, direction):
            forward NFE, accepted and rejected steps, steps per sample interval, and the
            backward NFE once ``backward()`` has run.

    For unbatched input the batch dimension is absent from all of them. ``layer_output(l)`` is
    layer l's output in the layout of ``output`` (time first); ``state_gradients(loss)`` the
    adjoint state at the sample times.
    """

    output: torch.Tensor
    h_n: torch.Tensor | tuple[torch.Tensor, ...]
    times: torch.Tensor
    nfe: int
    hidden_size: int
    gates: dict[str, torch.Tensor] | None = None
    #: Solver statistics per solved ODE: ``stats[(first layer of the group, direction)]``
    #: (one group per layer with sampled coupling, one for the whole stack with continuous
    #: coupling); ``backward_nfe`` fills in during ``backward()``.
    stats: dict[tuple[int, int], SolverStats] = dataclass_field(default_factory=dict)
    # Per-layer (D, T + 1, batch, state) trajectories; ``states`` stacks them only when asked,
    # so a plain forward call copies no trajectory it does not return.
    _layer_states: tuple[torch.Tensor, ...] = dataclass_field(default=(), repr=False)
    _unbatched: bool = dataclass_field(default=False, repr=False)
    _probes: tuple[_Probe, ...] = dataclass_field(default=(), repr=False)
    _topology: Topology | None = dataclass_field(default=None, repr=False)

    @cached_property
    def states(self) -> torch.Tensor:
        """(num_layers, D, T + 1, batch, state_size): every layer's state at every time."""
        states = torch.stack(self._layer_states)
        return states.squeeze(3) if self._unbatched else states

    @property
    def hidden(self) -> torch.Tensor:
        """Hidden states h of every layer, (num_layers, D, T + 1, batch, hidden)."""
        return self.states[..., : self.hidden_size]

    def layer_output(self, layer: int) -> torch.Tensor:
        """Layer ``layer``'s output at the sample times t_1..t_T, time first.

        Forward direction h(t_k); the reverse direction's output at sample k is its state at
        t_{k-1} (after consuming x_T..x_k), as in ``ODERNN``'s output (before dropout).

        Returns:
            (T, batch, D * hidden) (unbatched: (T, D * hidden)); for the top layer, ``output``
            in time-first layout.
        """
        if self._topology is None:
            raise ValueError("layer: this solution carries no topology to read layers from")
        layer = check_layer("layer", layer, len(self._layer_states))
        hidden = self._layer_states[layer][..., : self.hidden_size]
        out = self._topology.layer_output(hidden)
        return out.squeeze(1) if self._unbatched else out

    def state_gradients(self, loss: torch.Tensor, *, retain_graph: bool = True) -> torch.Tensor:
        """dLoss/dstate of every layer at every time in ``times``, in one backward pass.

        The total derivative through all later times and layers (the adjoint state at the
        sample times): for the discrete stack, the error signal that backpropagation through
        time delivers to h_t^l. Needs ``solve(..., track_state_gradients=True)``.

        Returns:
            Tensor of ``states``' shape, (num_layers, D, T + 1, batch, state_size).
        """
        if not self._probes:
            raise ValueError(
                "loss: this solution was not solved with track_state_gradients=True, "
                "so it has no handle on the state gradients"
            )
        grads = torch.autograd.grad(
            loss, [p.tensor for p in self._probes], retain_graph=retain_graph, allow_unused=True
        )
        num_layers = len(self._layer_states)
        num_dirs = max(p.direction for p in self._probes) + 1
        out: list[list[torch.Tensor | None]] = [[None] * num_dirs for _ in range(num_layers)]
        for probe, grad in zip(self._probes, grads, strict=True):
            grad = torch.zeros_like(probe.tensor) if grad is None else grad
            if probe.direction == 1:
                grad = grad.flip(0)
            for layer, part in zip(probe.layers, grad.split(probe.sizes, dim=-1), strict=True):
                out[layer][probe.direction] = part
        filled = [[part for part in row if part is not None] for row in out]
        if any(len(row) != num_dirs for row in filled):  # every layer has a probe per direction
            raise RuntimeError("state_gradients: a layer and direction without a probe")
        result = torch.stack([torch.stack(row) for row in filled])
        return result.squeeze(3) if self._unbatched else result
