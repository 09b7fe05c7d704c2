"""Shared test fixtures: the demo project, make_case folders and the third-party real data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"
SHARED = ROOT.parent / "shared"
MAKE_CASE = SHARED / "bench" / "make_case.py"
REALDATA = SHARED / "realdata"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A private copy of the demo project (tests may damage it)."""
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def make_case(out: Path, *args: str) -> Path:
    """Run ../shared/bench/make_case.py into ``out`` (skips when the benchmark folder is absent)."""
    if not MAKE_CASE.is_file():
        pytest.skip(f"{MAKE_CASE} not found: the shared benchmark folder is not next to this checkout")
    run = subprocess.run([sys.executable, str(MAKE_CASE), str(out), *args], capture_output=True, text=True)
    assert run.returncode == 0, f"make_case.py {' '.join(args)} failed: {run.stdout}{run.stderr}"
    return out


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} not found: real third-party data is only available next to the project checkout")
    return REALDATA


@pytest.fixture(name="make_case")
def make_case_fixture():
    """The make_case runner, as a fixture: ``make_case(out, "--overlap", ...)``."""
    return make_case
