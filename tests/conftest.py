"""Shared pytest set-up: float64 by default, so exactness claims are checked in double precision."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _float64_and_seed():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)
