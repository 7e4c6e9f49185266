"""The installed package: one name, a small top level, moved names that still import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import rnnode


@pytest.mark.slow  # subprocesses or long solves: seconds
def test_script_in_a_folder_with_its_own_analysis_and_studies_uses_rnnodes(tmp_path: Path):
    # A research project's own analysis.py and studies/ beside the script must not shadow
    # rnnode's namespaces, and rnnode's studies must still find rnnode's analysis.
    (tmp_path / "analysis.py").write_text("MARK = 'user analysis'\n")
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "__init__.py").write_text("MARK = 'user studies'\n")
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import analysis, studies
            import rnnode.analysis, rnnode.studies
            from rnnode.studies import discover, timescales
            assert "timescales" in discover() and "MARK" not in discover()
            print(analysis.MARK, "|", studies.MARK)
            gain = timescales.trajectory_gain.__module__
            print(rnnode.analysis.__name__, rnnode.studies.__name__, gain)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "user analysis | user studies"
    assert second == "rnnode.analysis rnnode.studies rnnode.analysis.timescales"


def test_nothing_but_rnnode_is_installed_at_the_top_level():
    from importlib import metadata

    top = metadata.distribution("rnnode").read_text("top_level.txt")
    if top is not None:  # an editable install may not write it; the finder's map is checked below
        assert top.split() == ["rnnode"]
    import importlib.util

    for name in ("analysis", "studies"):
        spec = importlib.util.find_spec(name)
        assert spec is None or "site-packages" not in str(spec.origin)


def test_top_level_is_one_screen_of_core_names():
    names = [n for n in dir(rnnode) if not n.startswith("_")]
    assert len(names) <= 31  # 30 + rnnode.integrate (issue 21, item 8)
    assert {"ODERNN", "Solution", "from_torch", "to_torch", "DivergenceError"} <= set(names)
    for moved in ("Trainer", "SequenceModel", "make_task", "TASKS", "compare_with_backprop"):
        assert moved not in names
    for choice in ("CELLS", "METHODS", "INTERPOLATIONS", "COUPLINGS"):
        assert isinstance(getattr(rnnode, choice), tuple)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Trainer", "rnnode.training.Trainer"),
        ("SequenceModel", "rnnode.training.SequenceModel"),
        ("train", "rnnode.training.train"),
        ("make_task", "rnnode.training.make_task"),
        ("compare_with_backprop", "rnnode.studies.predictive_coding.compare_with_backprop"),
    ],
)
def test_names_removed_in_0_2_say_where_they_went(old: str, new: str):
    # pre-1.0 moves carry no alias (CHANGELOG.md lists them); the error names the new place
    import importlib

    with pytest.raises(AttributeError, match=new.replace(".", r"\.")):
        getattr(rnnode, old)
    module, _, attribute = new.rpartition(".")
    assert hasattr(importlib.import_module(module), attribute)


def test_version_comes_from_the_installed_metadata():
    import re
    from importlib import metadata

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    assert declared is not None
    assert rnnode.__version__ == metadata.version("rnnode") == declared.group(1)


def test_unknown_attribute_is_an_attribute_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
            rnnode.nonsense  # noqa: B018


def _help_text(obj) -> str:
    import pydoc

    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


@pytest.mark.parametrize("module_name", ["rnnode", "rnnode.training"])
def test_help_lists_the_public_classes_and_functions(module_name: str):
    import importlib

    module = importlib.import_module(module_name)
    text = _help_text(module)
    assert "CLASSES" in text and "FUNCTIONS" in text
    for name in module.__all__:
        assert hasattr(module, name), name
        obj = getattr(module, name)
        if isinstance(obj, type) or callable(obj):
            assert f" {name}" in text, name


def test_every_core_module_declares_all():
    import importlib

    for name in ("_bridge", "_fields", "_io", "_paths", "_settings", "_stack", "_topology"):
        module = importlib.import_module(f"rnnode.{name}")
        assert module.__all__, name
        assert all(hasattr(module, n) for n in module.__all__), name
    for name in ("_losses", "_model", "_predictive", "_tasks", "_trainer"):
        module = importlib.import_module(f"rnnode.training.{name}")
        assert all(hasattr(module, n) for n in module.__all__), name


def test_odernn_constructor_and_call_carry_the_docstrings_help_shows():
    init_doc = rnnode.ODERNN.__init__.__doc__
    assert init_doc is not None
    for argument in ("input_size", "hidden_size", "cell", "nonlinearity", "tau", "skips"):
        assert f"{argument}:" in init_doc, argument
    forward_text = _help_text(rnnode.ODERNN.forward)
    assert "Define the computation performed at every call" not in forward_text  # torch's text
    assert "Returns:" in forward_text and "(output, h_n)" in forward_text
    assert "Raises:" in init_doc
    assert "Returns:" in rnnode.ODERNN.solve.__doc__


def test_no_source_file_is_over_700_lines():
    """Issue 21: one concept per module; a module past 700 lines holds more than one."""
    root = Path(__file__).resolve().parent.parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text().splitlines())
        for folder in ("rnnode", "analysis", "studies")
        for path in (root / folder).rglob("*.py")
    }
    assert sizes and {name: n for name, n in sizes.items() if n > 700} == {}
