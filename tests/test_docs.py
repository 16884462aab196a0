"""The documentation site's sources: every page exists, the API reference covers the public API."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import rtagent

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
MKDOCS = (REPO / "mkdocs.yml").read_text(encoding="utf-8")


def test_nav_pages_exist() -> None:
    """Every page in mkdocs.yml's nav is a file under docs/, and every page is in the nav."""
    pages = re.findall(r":\s+(\S+\.md)\s*$", MKDOCS, re.M)
    assert pages
    for page in pages:
        assert (DOCS / page).is_file(), page
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk == set(pages)


def test_guide_is_the_readme() -> None:
    """The site's guide includes README.md, so the two never drift apart."""
    assert (DOCS / "index.md").read_text(encoding="utf-8").strip() == '--8<-- "README.md"'


def test_reference_targets_resolve() -> None:
    """Each ::: directive names an importable module, and listed members exist."""
    for page in (DOCS / "reference").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"^::: (\S+)", text, re.M):
            module = importlib.import_module(target)
            for member in re.findall(r"^        - (\w+)$", text, re.M):
                assert hasattr(module, member), f"{page.name}: {target}.{member}"


def test_reference_lists_every_public_name() -> None:
    """The rtagent reference page documents every name of rtagent.__all__."""
    text = (DOCS / "reference" / "rtagent.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^        - (\w+)$", text, re.M))
    assert listed == set(rtagent.__all__) - {"__version__"}
