"""The release files: LICENSE, CITATION.cff (valid CFF 1.2) and CHANGELOG.md agree with the
installed version."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import rnnode

ROOT = Path(__file__).parents[1]


def test_license_is_the_mit_text():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_citation_cff_has_the_required_keys_and_this_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # CFF 1.2.0 requires cff-version, message, title and authors (each author a person or an
    # entity, i.e. with family-names/given-names or name)
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["message"], str) and cff["message"]
    assert isinstance(cff["title"], str) and cff["title"]
    assert cff["authors"] and all("name" in a or "family-names" in a for a in cff["authors"])
    assert str(cff["version"]) == rnnode.__version__
    assert cff["license"] == "MIT"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))


def test_changelog_is_keep_a_changelog_with_this_release_and_0_1_0():
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    assert releases[:1] in (["Unreleased"], [rnnode.__version__])
    assert rnnode.__version__ in releases and "0.1.0" in releases
    sections = set(re.findall(r"^### (\w+)", text, flags=re.MULTILINE))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    # every top-level name removed in this release is listed with where it went
    for name in rnnode._REMOVED:
        assert f"`rnnode.{name}`" in text, name
