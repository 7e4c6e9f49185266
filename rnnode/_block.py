"""The fused block: a group of layers of one relaxation cell evaluated as one block-structured
operation on states stacked as (layers, batch, state)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._field_protocol import declares_fusion

__all__: list[str] = []


class _Block:
    """A group's layers stacked for one block-structured evaluation of their joint field.

    For layers of one fusible field (``rnnode.fields.FusibleField``: a relaxation cell) and hidden
    size H, with states stacked as (L, B, S), the joint field is

        rec = b_hh + h W_hh^T            one baddbmm over the L layers,
        u_i = e_i + sum_s W_{i,s} h_{i-s}  one (b)addbmm per skip offset s over its readers,
        rate = (Phi(h, u, rec) - h) / tau  the cell's nonlinearity once on the (L, B, .) blocks,

    where e_i is layer i's external drive (its projected path, or b_ih) and W_{i,s} the columns
    of layer i's W_ih reading layer i - s. The stacked weights are made once per solve from the
    layers' own Parameters (gradients reach them through the stacking).
    """

    def __init__(self, fields, offsets, tau):
        self.cell = fields[0]
        self.hidden = fields[0].hidden_size
        self.w_hh = torch.stack([f.weight_hh for f in fields]).transpose(1, 2)  # (L, H, GH)
        bias = fields[0].bias_hh is not None
        self.b_hh = torch.stack([f.bias_hh for f in fields]).unsqueeze(1) if bias else None
        self.b_ih = torch.stack([f.bias_ih for f in fields]).unsqueeze(1) if bias else None
        #: (s, first reader, end of readers, stacked columns (readers, H, GH)) per offset s.
        self.offsets = offsets
        # (L, 1, 1); (L, 1, S) where a layer has one tau per unit; None when every tau is a fixed 1.
        self.tau = tau

    @staticmethod
    def make(fields, internal, internal_weights) -> _Block | None:
        """The block of ``fields``, or None where the stack does not fit one (one layer, a field
        that does not declare fusion, fields of different ``fusion_key``, readers of an offset
        that are not consecutive layers)."""
        if len(fields) < 2 or not all(declares_fusion(f) for f in fields):
            return None
        key = fields[0].fusion_key()
        if any(f.fusion_key() != key for f in fields[1:]):
            return None
        by_offset: dict[int, list[tuple[int, torch.Tensor]]] = {}
        for i, (sources, weights) in enumerate(zip(internal, internal_weights, strict=True)):
            for (j, _), weight in zip(sources, weights, strict=True):
                by_offset.setdefault(i - j, []).append((i, weight))
        offsets = []
        for s, readers in sorted(by_offset.items()):
            rows = [i for i, _ in readers]
            if s < 1 or rows != list(range(rows[0], rows[0] + len(rows))):
                return None
            weight = torch.stack([w for _, w in readers]).transpose(1, 2)
            offsets.append((s, rows[0], rows[-1] + 1, weight))
        tau = None
        if not all(getattr(f, "_unit_tau", False) for f in fields):
            taus = [f.tau for f in fields]
            if all(t.dim() == 0 for t in taus):
                tau = torch.stack(taus).reshape(-1, 1, 1)
            else:  # one per unit, dividing every part of the unit's state
                H, parts = fields[0].hidden_size, fields[0].state_parts
                tau = torch.stack([t.expand(H).repeat(parts) for t in taus]).unsqueeze(1)
        return _Block(fields, offsets, tau)

    @property
    def chain(self) -> bool:
        """Every layer above the first reads the one below it and nothing else of this ODE
        (the plain stack), so ``rate_chain`` applies when only the first reads a path."""
        return (
            self.b_ih is not None
            and len(self.offsets) == 1
            and self.offsets[0][:3] == (1, 1, self.w_hh.shape[0])
        )

    def rate_chain(self, y: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
        """``rate`` of a chain (see ``chain``) whose first layer's external drive is ``drive``
        and whose other layers read no path: the same operations, without assembling them
        layer by layer at every evaluation."""
        h, rec = self._recurrent(y)
        assert self.b_ih is not None  # a chain has b_ih
        inter = torch.baddbmm(self.b_ih[1:], h[:-1], self.offsets[0][3])
        u = torch.cat([drive.expand(h.shape[1], -1).unsqueeze(0), inter])
        return self._rate(y, u, rec)

    def _recurrent(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stacked hidden states h (L, B, H) and their recurrent products b_hh + h W_hh^T."""
        h = y if self.cell.state_parts == 1 else y[..., : self.hidden]
        if self.b_hh is None:
            return h, torch.bmm(h, self.w_hh)
        return h, torch.baddbmm(self.b_hh, h, self.w_hh)

    def _rate(self, y: torch.Tensor, u: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
        """(Phi(h, u, rec) - h) / tau, the cell's nonlinearity once on the stacked blocks."""
        rate = self.cell.relaxation_rate(y, u, rec)
        return rate if self.tau is None else rate / self.tau

    def rate(self, y: torch.Tensor, external: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """d y / dt for stacked states y (L, B, S), given each layer's external drive (None:
        the layer reads no path; its drive starts from b_ih)."""
        h, rec = self._recurrent(y)
        L, B = h.shape[0], h.shape[1]

        def base(i: int) -> torch.Tensor:
            e = external[i]
            if e is not None:
                return e.expand(B, -1)
            if self.b_ih is not None:
                return self.b_ih[i].expand(B, -1)
            return h.new_zeros(B, rec.shape[-1])

        u = None
        for s, a, b, weight in self.offsets:
            if u is None:  # the first offset's readers start from their external drives
                if all(external[i] is None for i in range(a, b)) and self.b_ih is not None:
                    start = self.b_ih[a:b]
                else:
                    start = torch.stack([base(i) for i in range(a, b)])
                block = torch.baddbmm(start, h[a - s : b - s], weight)
                parts = [base(i).unsqueeze(0) for i in range(a)]
                parts += [block] + [base(i).unsqueeze(0) for i in range(b, L)]
                u = torch.cat(parts) if len(parts) > 1 else block
            else:
                u = torch.cat([u[:a], torch.baddbmm(u[a:b], h[a - s : b - s], weight), u[b:]])
        assert u is not None  # a block has an offset: its layers read each other
        return self._rate(y, u, rec)
