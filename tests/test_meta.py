"""Meta-tests: the plugin contract is documented and tested, built-in writers use only the public API, and the
package installs under its own names."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import labelport
from labelport import hookspecs
from labelport.plugins import BUILTIN_PLUGINS

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(fn, "labelport_spec")]


def test_every_hook_is_documented_with_an_example() -> None:
    assert HOOKS == ["register_writers"]
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Example" in doc and "@labelport.hookimpl" in doc, name
        assert f"def {name}(" in contributing, name


def test_every_hook_is_tested() -> None:
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_meta.py")
    for name in HOOKS:
        assert f"def {name}(" in tests, name


def test_builtin_writers_use_only_the_public_api() -> None:
    for module in BUILTIN_PLUGINS:
        path = ROOT / "plugins" / Path(*module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labelport"):
                pytest.fail(f"{path.name}: 'from {node.module} import ...'; use 'import labelport'")
            if isinstance(node, ast.Import):
                assert all(a.name == "labelport" or not a.name.startswith("labelport") for a in node.names), path
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "labelport":
                assert node.attr in labelport.__all__, f"{path.name}: labelport.{node.attr} is not public"


def test_public_names_exist() -> None:
    for name in labelport.__all__:
        assert hasattr(labelport, name), name


def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    wheel = next(tmp_path.glob("labelport-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {"labelport", "labelport_writers"} <= tops
    assert not tops & {"core", "plugins", "tests", "fixtures"}
    assert "labelport/py.typed" in names and "labelport_writers/nifti.py" in names


def test_the_model_page_names_only_public_things_that_exist() -> None:
    """CONTRIBUTING's table of the model a writer sees: every name is public, and every attribute it lists for
    the model classes exists."""
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    section = contributing.split("### The model a writer sees")[1].split("\n\n`fixtures/")[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 15
    for first, description in rows:
        for name in (n.split("(")[0] for n in first.strip().strip("`").split("`, `")):
            assert name in labelport.__all__, name
            if name in ("Task", "Series", "LabelMap", "Segment", "Taxonomy", "Category"):
                cls = getattr(labelport, name)
                fields = getattr(cls, "__dataclass_fields__", {})
                source = inspect.getsource(cls)
                for attribute in (a.split(":")[0].split("(")[0].split(" ")[0] for a in
                                  re.findall(r"`([a-z_]+[^`]*)`", description)):
                    assert hasattr(cls, attribute) or attribute in fields or f"self.{attribute} =" in source, \
                        f"{name}.{attribute}"
