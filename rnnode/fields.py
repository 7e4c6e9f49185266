"""Vector fields of single layers, and what a field of one's own must provide.

A layer of an ``rnnode.ODERNN`` is a vector field dh/dt = F(t, h, u) on its projected drive
u = W_ih [sources] + b_ih. The built-in cells are ``VectorField`` subclasses; any module that
provides the members of ``Field`` can be a layer too, stacked with ``ODERNN.from_fields``::

    import torch
    import rnnode
    from rnnode.fields import ElmanField

    fields = [ElmanField(3, 8, tau=torch.linspace(1, 10, 8)), ElmanField(8, 8, tau=2.0)]
    model = rnnode.ODERNN.from_fields(fields, coupling="continuous", method="rk4")

``FusibleField`` is the optional capability of relaxation fields to be evaluated, several layers
at once, as one block (the fast path of continuously coupled stacks); a field declares it with
``fusible = True`` and ``check_field`` verifies it. ``check_field`` runs on every field given to
``ODERNN.from_fields``.
"""

from ._field_protocol import Field as Field
from ._field_protocol import FusibleField as FusibleField
from ._field_protocol import check_field as check_field
from ._fields import CELLS as CELLS
from ._fields import AntisymmetricField as AntisymmetricField
from ._fields import CoupledOscillatorField as CoupledOscillatorField
from ._fields import ElmanField as ElmanField
from ._fields import GRUField as GRUField
from ._fields import LinearField as LinearField
from ._fields import LSTMField as LSTMField
from ._fields import RelaxationField as RelaxationField
from ._fields import VectorField as VectorField
from ._ltc import LTCField as LTCField

__all__ = [
    "CELLS",
    "AntisymmetricField",
    "CoupledOscillatorField",
    "ElmanField",
    "Field",
    "FusibleField",
    "GRUField",
    "LSTMField",
    "LTCField",
    "LinearField",
    "RelaxationField",
    "VectorField",
    "check_field",
]
