"""The core install (``pip install .``, no extras) works for everything it installs.

The extras' packages (scikit-learn, statsmodels, dask) are hidden from a fresh interpreter by
``sys.modules[name] = None``, which makes their import fail as if they were not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rnnode import __version__
from rnnode._extras import MissingExtraError, require
from rnnode.studies import cli

_HIDE_EXTRAS = textwrap.dedent(
    """
    import sys
    for name in ("sklearn", "statsmodels", "dask", "distributed"):
        sys.modules[name] = None
    """
)


def _run_core(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _HIDE_EXTRAS + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_core_install_lists_the_studies_and_trains_with_defaults():
    out = _run_core(
        """
        import rnnode, rnnode.studies
        from rnnode.studies import cli
        from rnnode.training import SequenceModel, adding_task, train
        assert cli.main(["list"]) == 0
        model = SequenceModel(rnnode.ODERNN(2, 4, batch_first=True), 1)
        task = adding_task(num_train=64, num_test=8, length=5, seed=0)
        metrics = train(model, task, steps=2)
        print("trained", metrics["step"], len(metrics["history"]["loss"]))
        """
    )
    assert out.returncode == 0, out.stderr
    assert "timescales" in out.stdout and "trained 2 2" in out.stdout


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_a_missing_extra_is_one_line_naming_it_and_exit_status_2():
    out = _run_core(
        """
        import sys
        from rnnode.studies import cli
        sys.exit(cli.main(["run", "all", "--quick", "--workers", "1", "--scheduler", "tcp://x:1"]))
        """
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "rnnode[studies]" in lines[0] and "dask" in lines[0], lines


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_a_task_whose_data_ship_with_an_extra_names_the_extra():
    out = _run_core(
        """
        from rnnode._extras import MissingExtraError
        from rnnode.training import make_task
        try:
            make_task("digits_rows")
        except MissingExtraError as error:
            print(error.package, error.extra)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["scikit-learn", "studies"]


def test_missing_extra_error_survives_the_process_boundary():
    import pickle

    error = MissingExtraError("statsmodels", "studies", "the sunspots study")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is MissingExtraError and str(again) == str(error)
    with pytest.raises(MissingExtraError, match=r"pip install 'rnnode\[x\]'"):
        require("rnnode_no_such_module", "no-such-package", "x", "this test")


def test_cli_prints_the_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnnode-study {__version__}"
