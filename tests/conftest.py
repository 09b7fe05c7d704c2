"""Shared test fixtures: the demo project, synthetic CT cases (``casegen``) and the third-party real data."""

from __future__ import annotations

import shutil
from pathlib import Path

import casegen
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"
SHARED = ROOT.parent / "shared"
REALDATA = SHARED / "realdata"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A private copy of the demo project (tests may damage it)."""
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def make_case(out: Path, *args: str) -> Path:
    """A synthetic case in ``out``, made by ``tests/casegen.py`` with its command-line arguments."""
    return casegen.main([str(out), *args])


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} not found: real third-party data is only available next to the project checkout")
    return REALDATA


@pytest.fixture(name="make_case")
def make_case_fixture():
    """The case generator, as a fixture: ``make_case(out, "--overlap", ...)``."""
    return make_case
