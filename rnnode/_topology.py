"""The wiring of a stack: which layers feed which, through which weight columns, in which layout.

Written once here and read by everything that needs it: the stack's vector field and its solve
(``rnnode._stack_ode``, ``rnnode._stack_solve``), ``ODERNN.joint_field``, predictive coding and
the layer-output accessor.

Layer ``l`` (0-based) is driven by its *sources*: the layers ``l - s`` for every skip offset
``s``, in the order of increasing offset, where an offset that reaches below layer 0 reads the
input x (``INPUT``; once, however many offsets reach it). Its drive is
``u_l = W_ih [source_1; source_2; ...] + b_ih``; ``columns(l)`` says which columns of ``W_ih``
read which source. A layer's *output* (what its successors read, and what ``ODERNN`` returns for
the top layer) is its hidden state at the sample times t_1..t_T in the forward direction,
concatenated with the reverse direction's hidden state at t_0..t_{T-1} (the reverse direction's
output at sample k is its state after consuming x_T, ..., x_k, as torch's is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._validate import check_int

__all__ = ["INPUT", "Topology"]

#: Source index of the external input x.
INPUT = -1


@dataclass(frozen=True)
class Topology:
    """The sources, weight columns, groups and output layout of a stack.

    Attributes:
        input_size: features of x.
        hidden_size: features of every layer's hidden state.
        num_layers: number of layers.
        num_directions: 1, or 2 for a bidirectional stack.
        skips: sorted distinct positive offsets (``(1,)``: the plain stack).
    """

    input_size: int
    hidden_size: int
    num_layers: int
    num_directions: int
    skips: tuple[int, ...]

    def sources(self, layer: int) -> tuple[int, ...]:
        """0-based indices of the layers feeding ``layer`` (``INPUT``: x), by increasing offset."""
        found: list[int] = []
        for s in self.skips:
            j = max(layer - s, INPUT)
            if j not in found:
                found.append(j)
        return tuple(found)

    def source_size(self, source: int) -> int:
        """Features a source contributes: x's, or a layer output's ``D * hidden``."""
        return self.input_size if source == INPUT else self.num_directions * self.hidden_size

    def drive_size(self, layer: int) -> int:
        """Columns of ``layer``'s ``W_ih``: the features of all its sources together."""
        return sum(self.source_size(j) for j in self.sources(layer))

    def columns(self, layer: int) -> dict[int, slice]:
        """The columns of ``layer``'s ``W_ih`` that read each source, in source order."""
        cols, start = {}, 0
        for j in self.sources(layer):
            cols[j] = slice(start, start + self.source_size(j))
            start += self.source_size(j)
        return cols

    def groups(self, coupling: str) -> list[list[int]]:
        """The layers solved together as one ODE: all of them when coupled continuously,
        otherwise each alone (in order, so that every source is solved before its reader)."""
        if coupling == "continuous" and self.num_layers > 1:
            return [list(range(self.num_layers))]
        return [[layer] for layer in range(self.num_layers)]

    def drive_inputs(
        self,
        layer: int,
        x: torch.Tensor,
        output: Callable[[int], torch.Tensor],
        batch_shape: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """[source_1; source_2; ...] of ``layer``: ``x`` for ``INPUT``, ``output(j)`` for layer j,
        concatenated along the last dimension.

        Every part is expanded to ``batch_shape`` (default: the parts' broadcast shape) before
        the concatenation, so the result is (*batch_shape, drive_size(layer)).
        """
        parts = [x if j == INPUT else output(j) for j in self.sources(layer)]
        if batch_shape is None:
            batch_shape = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
        return torch.cat([p.expand(*batch_shape, p.shape[-1]) for p in parts], dim=-1)

    def layer_output(self, hidden: torch.Tensor) -> torch.Tensor:
        """A layer's output from its hidden trajectory.

        Arguments:
            hidden: (D, T + 1, ..., hidden) the hidden state of each direction at t_0..t_T, in
                forward time order for both directions.

        Returns:
            (T, ..., D * hidden): forward h(t_1..t_T), then (bidirectional) reverse h(t_0..t_{T-1}).
        """
        forward = hidden[0, 1:]
        if self.num_directions == 1:
            return forward
        return torch.cat([forward, hidden[1, :-1]], dim=-1)


def check_layer(name: str, layer: object, num_layers: int) -> int:
    """A 0-based layer index in ``range(num_layers)`` (negative counts from the top)."""
    index = check_int(name, layer)
    if not -num_layers <= index < num_layers:
        raise ValueError(f"{name}: expected a layer in 0..{num_layers - 1}, got {layer!r}")
    return index % num_layers
