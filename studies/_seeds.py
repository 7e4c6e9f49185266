"""Seeds and threads of a run or a sweep point: fixed generators, float64, one torch thread."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread for a block, restoring the previous count after.

    Training the small stacks of the studies on several threads spends most of its time
    synchronising them (several times slower on 2 cores); sweep points run one per process anyway.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under fixed seeds and float64 default dtype (and deterministic GPU kernels).

    Seeds Python's ``random``, numpy's global generator and torch; the previous states and dtype
    are restored on exit, so a run leaves no trace in the caller's session.

    Notes:
        ``torch.use_deterministic_algorithms`` is switched on only when CUDA is available: the
        CPU kernels rnnode uses are deterministic already, and the switch imports
        ``torch._inductor`` (about 2 s in every process, sweep workers included).
    """
    gpu = torch.cuda.is_available()
    saved = (
        random.getstate(),
        np.random.get_state(),
        torch.random.get_rng_state(),
        torch.get_default_dtype(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # Studies claim exactness in double precision.
    torch.set_default_dtype(torch.float64)
    if gpu:
        # warn_only: an op without a deterministic kernel warns rather than ending the run.
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.random.set_rng_state(saved[2])
        torch.set_default_dtype(saved[3])
        if gpu:
            torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])
