"""Shared pytest set-up: float64 by default, so exactness claims are checked in double precision,
and ``study_run``, every study's quick run made once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(autouse=True)
def _float64_and_seed():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def study_run(tmp_path_factory) -> Callable[[str], tuple[Path, dict[str, Any]]]:
    """``study_run(name)``: the study's quick run (seed 0, sweeps in this process) through the
    real runner, made on first use and shared by every test of the session.

    Returns ``(folder, metrics)``: the run's folder ``OUT/NAME-quick/`` and its metrics as
    returned by ``run_study``. Tests that use it take seconds: mark them ``@pytest.mark.slow``.
    """
    from rnnode.studies import run_study

    done: dict[str, tuple[Path, dict[str, Any]]] = {}

    def run(name: str) -> tuple[Path, dict[str, Any]]:
        if name not in done:
            out = tmp_path_factory.mktemp(f"{name}-runs")
            metrics = run_study(name, out=out, quick=True, seed=0, workers=1, show_progress=False)
            done[name] = (out / f"{name}-quick", metrics)
        return done[name]

    return run
