"""The documentation: the API reference covers every public name, the gallery collects every
example, and (slow) ``python -m sphinx -W -b html docs OUT`` builds with the gallery executed.

The fast tests read ``docs/_api.py`` (the API pages, written at build time) and the gallery's
configuration in ``docs/conf.py`` without running Sphinx; the slow one runs Sphinx in a
subprocess, exactly as the documentation's build command (``docs/conf.py``'s docstring).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
#: The examples the issues require (issue 22 item 2); the glob above finds the rest.
REQUIRED_EXAMPLES = ("plot_lyapunov_gain.py", "plot_ncps_ltc.py")


@pytest.fixture(scope="module")
def api() -> Iterator:
    """``docs/_api.py`` imported as a module (it lives beside conf.py, not in the package)."""
    sys.path.insert(0, str(DOCS))
    try:
        yield importlib.import_module("_api")
    finally:
        sys.path.remove(str(DOCS))


def _gallery_conf() -> dict[str, object]:
    """The literal entries of ``sphinx_gallery_conf`` in docs/conf.py, read without importing
    conf.py (which imports torch and writes the API pages); other entries map to None."""
    tree = ast.parse((DOCS / "conf.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["sphinx_gallery_conf"]
            and isinstance(node.value, ast.Dict)
        ):
            conf: dict[str, object] = {}
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                try:
                    conf[ast.literal_eval(key)] = ast.literal_eval(value)
                except ValueError:
                    conf[ast.literal_eval(key)] = ast.unparse(value)
            return conf
    raise AssertionError("docs/conf.py: no sphinx_gallery_conf = {...} literal")


def _title(path: Path) -> str:
    """The example's title: the docstring's first line, underlined by "=" at least as long."""
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""
    lines = doc.strip("\n").splitlines()
    assert len(lines) >= 4, f"{path.name}: expected a docstring with a title and a description"
    title, underline = lines[0].rstrip(), lines[1].rstrip()
    assert title and underline == "=" * len(underline) and len(underline) >= len(title), (
        f"{path.name}: the docstring must open with a title underlined by '=' "
        f"(sphinx-gallery's page title), got {lines[:2]}"
    )
    assert any(line.strip() for line in lines[2:]), f"{path.name}: no description"
    return title


# --- the gallery -------------------------------------------------------------------------------


def test_required_examples_exist():
    names = {path.name for path in EXAMPLES}
    assert set(REQUIRED_EXAMPLES) <= names, sorted(set(REQUIRED_EXAMPLES) - names)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_has_a_title_and_is_seeded(path: Path):
    _title(path)
    text = path.read_text()
    assert "manual_seed(" in text or "default_rng(" in text, f"{path.name}: not seeded"
    assert "plt." in text or "plot_" in text, f"{path.name}: draws no figure"


def test_titles_are_distinct():
    titles = [_title(path) for path in EXAMPLES]
    assert len(set(titles)) == len(titles), titles


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_gallery_collects_the_example(path: Path):
    conf = _gallery_conf()
    assert "examples" in str(conf["examples_dirs"])
    # sphinx-gallery matches the patterns against the full path of each file
    assert re.search(str(conf["filename_pattern"]), str(path)), (
        f"{path.name} is not executed: it does not match filename_pattern "
        f"{conf['filename_pattern']!r}"
    )
    assert not re.search(str(conf["ignore_pattern"]), str(path))
    assert (ROOT / "examples" / "GALLERY_HEADER.rst").exists()


def test_the_gallery_is_in_the_index():
    index = (DOCS / "index.rst").read_text()
    assert re.search(r"^\s+auto_examples/index\s*$", index, re.MULTILINE)
    assert re.search(r"^\s+api/index\s*$", index, re.MULTILINE)


def test_the_gallery_fails_on_a_figure_the_example_does_not_show():
    """rnnode.analysis's plots are Figures pyplot does not manage until ``plt.figure(fig)``: a
    block that leaves one unshown fails the build, naming the global; shown ones (and pyplot's,
    after the matplotlib scraper closes them) pass."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    sys.path.insert(0, str(DOCS))
    try:
        from _gallery import unshown_figures
    finally:
        sys.path.remove(str(DOCS))
    shown, managed = Figure(), plt.figure()
    plt.figure(shown)  # handed to pyplot, as the examples do (matplotlib >= 3.11)
    namespace = {"fig": shown, "other": 3, "managed": managed}
    block_vars = {"example_globals": namespace, "src_file": "plot_a.py"}
    try:
        assert unshown_figures(None, block_vars, {}) == ""
        plt.close(shown)  # as the matplotlib scraper does after the block
        plt.close(managed)
        assert shown.canvas.manager is None  # closed, it looks unmanaged ...
        assert unshown_figures(None, block_vars, {}) == ""  # ... but was shown
        namespace["late"] = Figure()  # a new figure in a later block, never handed over
        with pytest.raises(RuntimeError, match=r"plot_a\.py: the Figure in 'late' .*plt\.figure"):
            unshown_figures(None, block_vars, {})
    finally:
        plt.close("all")


# --- the API reference -------------------------------------------------------------------------


def _public_namespaces() -> set[str]:
    """rnnode, its installed packages (pyproject.toml) and its public modules (rnnode.fields)."""
    import rnnode

    setuptools = re.search(  # [tool.setuptools] packages = [...] (no tomllib on Python 3.10)
        r"^packages = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.MULTILINE | re.DOTALL
    )
    assert setuptools, "pyproject.toml: no [tool.setuptools] packages = [...]"
    packages = re.findall(r'"([^"]+)"', setuptools.group(1))
    modules = {
        f"rnnode.{m.name}" for m in pkgutil.iter_modules(rnnode.__path__) if m.name[0] != "_"
    }
    return {p for p in packages if not any(part.startswith("_") for part in p.split("."))} | modules


def test_every_public_namespace_has_a_page(api):
    documented = {module for module, _, _ in api.NAMESPACES}
    assert _public_namespaces() <= documented, sorted(_public_namespaces() - documented)


def test_the_api_index_lists_every_page(api):
    index = (DOCS / "api" / "index.rst").read_text()
    listed = set(re.findall(r"^\s+generated/(\S+)\s*$", index, re.MULTILINE))
    assert listed == {name.removesuffix(".rst") for name in api.api_pages()}


def _targets(pages: dict[str, str]) -> dict[str, str]:
    """Documented object -> the page that documents it (every auto* or py: directive)."""
    found = {}
    for page, text in pages.items():
        for target in re.findall(r"^\.\. (?:auto\w+|py:\w+):: (\S+)$", text, re.MULTILINE):
            assert target not in found, f"{target} is documented twice"
            found[target] = page
    return found


def test_every_public_name_is_documented(api):
    """Each name of each namespace's ``__all__`` (or public attributes) has an entry: a
    directive on its own page, or a link there to the page that documents the same object."""
    pages = api.api_pages()
    targets = _targets(pages)
    missing = []
    for module_name, _, _ in api.NAMESPACES:
        module = importlib.import_module(module_name)
        page = pages[f"{module_name}.rst"]
        names = getattr(module, "__all__", None) or api.public_names(module_name)
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            here = f"{module_name}.{name}"
            if here in targets:
                continue
            linked = re.search(rf":py:obj:`(rnnode[\w.]*\.{name})`", page)
            if linked and linked.group(1) in targets:
                home = linked.group(1)
                home_module = importlib.import_module(home.rsplit(".", 1)[0])
                assert getattr(home_module, name) is obj, f"{here} links to another {home}"
                continue
            missing.append(here)
    assert not missing, f"public names without an API entry: {missing}"


def test_names_only_in_analysis_modules_are_documented(api):
    """``rnnode.analysis.meanfield.lyapunov_exponent`` and the like: exported by a module's
    ``__all__`` but not by the namespace, documented under their module path."""
    import rnnode.analysis

    targets = _targets(api.api_pages())
    expected = set()
    for sub in rnnode.analysis.__all__:
        module = getattr(rnnode.analysis, sub)
        if inspect.ismodule(module):
            for name in module.__all__:
                if name not in rnnode.analysis.__all__:
                    expected.add(f"rnnode.analysis.{sub}.{name}")
    assert "rnnode.analysis.meanfield.lyapunov_exponent" in expected
    assert expected <= set(targets), sorted(expected - set(targets))


# --- the build ---------------------------------------------------------------------------------


@pytest.mark.slow  # Sphinx with the gallery executed: a minute or two on two cores
def test_sphinx_builds_the_docs_without_warnings(tmp_path: Path):
    out = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            # execute every example, even one whose source an earlier build already ran
            "-D",
            "sphinx_gallery_conf.run_stale_examples=1",
            str(DOCS),
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    assert (out / "index.html").exists()
    assert (out / "api" / "index.html").exists()
    for module_name in ("rnnode", "rnnode.fields", "rnnode.training", "rnnode.analysis"):
        assert (out / "api" / "generated" / f"{module_name}.html").exists(), module_name
    assert (out / "auto_examples" / "index.html").exists()
    for path in EXAMPLES:
        page = out / "auto_examples" / f"{path.stem}.html"
        assert page.exists(), page
        # one figure per plt.show() (each shows the figure its block drew): none is lost
        shown = set(re.findall(rf"sphx_glr_{path.stem}_\d+\.png", page.read_text()))
        shows = path.read_text().count("plt.show()")
        assert len(shown) == shows, (
            f"{path.name}: its page shows {len(shown)} figures, its plt.show() calls {shows}"
        )
