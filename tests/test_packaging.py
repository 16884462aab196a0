"""Packaging: the metadata a wheel carries, the version in one place, the license, the extras."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

import rtagent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parent.parent


def _project() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return data


def test_version_lives_in_one_place() -> None:
    """pyproject reads the version from rtagent/__init__.py, which holds the only literal."""
    data = _project()
    assert "version" not in data["project"] and "version" in data["project"]["dynamic"]
    assert data["tool"]["hatch"]["version"]["path"] == "rtagent/__init__.py"
    init = (REPO / "rtagent" / "__init__.py").read_text(encoding="utf-8")
    assert re.search(r'^__version__ = "([^"]+)"$', init, re.M) is not None
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[abrc.dev]+\d+)?", rtagent.__version__)


def test_license_file_is_mit() -> None:
    """The LICENSE file holds the MIT license that pyproject declares."""
    assert _project()["project"]["license"] == "MIT"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_metadata_has_classifiers_and_urls() -> None:
    """Classifiers cover the supported Pythons and typing; project URLs point somewhere useful."""
    project = _project()["project"]
    classifiers = project["classifiers"]
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(project["urls"])
    assert (REPO / "rtagent" / "py.typed").exists()


def test_dependencies_and_extras() -> None:
    """exceptiongroup is declared for 3.10; the dev extra has no plotting; otel and docs exist."""
    project = _project()["project"]
    assert any(
        dep.startswith("exceptiongroup") and "python_version < '3.11'" in dep
        for dep in project["dependencies"]
    )
    extras = project["optional-dependencies"]
    names = {name: {re.split(r"[<>=;\[ ]", dep)[0] for dep in deps} for name, deps in extras.items()}
    assert not names["dev"] & {"matplotlib", "psutil"}
    assert {"matplotlib", "psutil"} <= names["bench"]
    assert "opentelemetry-api" in names["otel"]
    assert {"mkdocs", "mkdocs-material", "mkdocstrings"} <= names["docs"]
    assert not any(dep.startswith("opentelemetry") for dep in project["dependencies"])


def test_bench_smoke_test_is_marked() -> None:
    """The benchmark smoke test carries the registered bench marker (CI runs it with the extra)."""
    markers = _project()["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("bench:") for m in markers)
    assert "pytestmark = pytest.mark.bench" in (REPO / "tests" / "test_bench_smoke.py").read_text()
