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


def _changelog_sections(text: str) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """CHANGELOG.md as [(release, [(heading, entry lines), ...]), ...] in file order (the lines
    of a ``### heading`` up to the next heading, blank lines dropped)."""
    releases: list[tuple[str, list[tuple[str, list[str]]]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            match = re.match(r"## \[([^\]]+)\]", line)
            assert match, f"release heading without [version]: {line!r}"
            releases.append((match.group(1), []))
        elif line.startswith("### "):
            assert releases, f"{line!r} before any release"
            releases[-1][1].append((line[4:].strip(), []))
        elif line.strip() and releases and releases[-1][1] and not line.startswith("["):
            releases[-1][1][-1][1].append(line)
    return releases


def test_changelog_has_a_filled_unreleased_section_and_no_empty_heading():
    """Keep a Changelog: ``## [Unreleased]`` comes first, holds at least one of the standard
    headings, every heading holds at least one ``- `` entry, and [Unreleased] has its link."""
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = _changelog_sections(text)
    assert releases and releases[0][0] == "Unreleased", [r for r, _ in releases]
    standard = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    unreleased = [heading for heading, _ in releases[0][1]]
    assert unreleased and set(unreleased) <= standard, unreleased
    assert len(unreleased) == len(set(unreleased)), f"a heading repeated: {unreleased}"
    for release, headings in releases:
        for heading, lines in headings:
            assert any(line.startswith("- ") for line in lines), f"[{release}] ### {heading} empty"
    assert re.search(r"^\[Unreleased\]: https://\S+$", text, flags=re.MULTILINE)
