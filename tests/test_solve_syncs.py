"""Host synchronisations of an adaptive solve: one per attempt (its error ratio), counted.

Every read of a tensor's value on the host (``item``, ``bool``, ``float``, ``int``, ``tolist``,
``__index__``) is counted by patching ``torch.Tensor``; on a GPU each would wait for the device.
The count of a solve is a fixed part (checks, the first step's choice, the final finite check)
plus one per attempt: the difference between a long and a short solve is exactly the difference
in attempts (accepted + rejected steps). docs/guide/solvers.md (Host synchronisations) quotes it.
"""

import contextlib

import pytest
import torch

import rnnode

_READS = ("item", "__bool__", "__float__", "__int__", "tolist", "__index__")


@contextlib.contextmanager
def _count_host_reads():
    count = {"reads": 0}
    saved = {name: getattr(torch.Tensor, name) for name in _READS}

    def counting(original):
        def read(self, *args, **kwargs):
            count["reads"] += 1
            return original(self, *args, **kwargs)

        return read

    for name, original in saved.items():
        setattr(torch.Tensor, name, counting(original))
    try:
        yield count
    finally:
        for name, original in saved.items():
            setattr(torch.Tensor, name, original)


def _reads_and_attempts(interpolation, T, method):
    torch.manual_seed(0)
    model = rnnode.ODERNN(2, 8, num_layers=2, coupling="continuous", interpolation=interpolation)
    model = model.double()
    x = torch.randn(T, 4, 2, dtype=torch.float64)
    with _count_host_reads() as count:
        solution = model.solve(x, method=method)
    (stats,) = solution.stats.values()
    return count["reads"], stats.accepted_steps + stats.rejected_steps


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
@pytest.mark.parametrize("interpolation", ["hold", "cubic"])
def test_an_adaptive_attempt_reads_the_device_once(interpolation, method):
    short_reads, short_attempts = _reads_and_attempts(interpolation, 5, method)
    long_reads, long_attempts = _reads_and_attempts(interpolation, 20, method)
    assert long_attempts > short_attempts + 50
    # One read per attempt: the error ratio.
    assert long_reads - short_reads == long_attempts - short_attempts
    # ... and a fixed part per solve (measured: 15 for this two-layer stack, whatever T).
    assert short_reads - short_attempts == long_reads - long_attempts <= 20
