"""One topology for the whole stack: sources, weight columns, groups and the output layout.

References: the fields' weight shapes, ODERNN's own output, and the states written out by hand.
"""

import pytest
import torch

import rnnode
from rnnode._topology import INPUT, Topology


def test_sources_columns_and_drive_sizes_agree_with_the_fields():
    model = rnnode.ODERNN(3, 4, num_layers=4, skips=(1, 3), bidirectional=True)
    topology = model.topology
    assert topology.sources(0) == (INPUT,)
    assert topology.sources(1) == (0, INPUT)
    assert topology.sources(3) == (2, 0)
    for layer in range(4):
        columns = list(topology.columns(layer).values())
        assert columns[0].start == 0
        assert all(a.stop == b.start for a, b in zip(columns, columns[1:], strict=False))
        assert columns[-1].stop == topology.drive_size(layer)
        for direction in range(2):
            assert model.field(layer, direction).weight_ih.shape[1] == topology.drive_size(layer)


def test_groups_follow_the_coupling():
    topology = Topology(2, 3, 3, 1, (1,))
    assert topology.groups("sampled") == [[0], [1], [2]]
    assert topology.groups("continuous") == [[0, 1, 2]]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_output_is_the_models_output_rule(bidirectional):
    model = rnnode.ODERNN(2, 3, num_layers=2, bidirectional=bidirectional, cell="lstm")
    solution = model.solve(torch.randn(5, 2, 2))
    torch.testing.assert_close(solution.layer_output(1), solution.output, rtol=0, atol=0)
    h = solution.hidden[0]  # (D, T + 1, B, H)
    expected = h[0, 1:] if not bidirectional else torch.cat([h[0, 1:], h[1, :-1]], dim=-1)
    torch.testing.assert_close(solution.layer_output(0), expected, rtol=0, atol=0)
    torch.testing.assert_close(solution.layer_output(-1), solution.output, rtol=0, atol=0)
    with pytest.raises(ValueError, match="layer: expected a layer in 0..1"):
        solution.layer_output(2)


def test_solution_is_built_once_with_its_gates_and_probes():
    model = rnnode.ODERNN(2, 3, num_layers=2, cell="lstm")
    solution = model.solve(torch.randn(4, 2), return_gates=True, track_state_gradients=True)
    assert set(solution.gates) == {"i", "f", "g", "o"}
    assert solution.gates["i"].shape == (2, 1, 4, 3)  # unbatched: (L, D, T, H)
    assert all(p.tensor.requires_grad for p in solution._probes)
    grads = solution.state_gradients(solution.output.sum())
    assert grads.shape == solution.states.shape
