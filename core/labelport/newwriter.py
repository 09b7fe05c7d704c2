"""``labelport new-writer NAME``: a pip-installable writer plugin package to start from.

The package registers one writer under the ``labelport`` entry-point group, with an options dataclass, a write
function that works as it is (each series' label map as a NumPy ``.npy`` file), a test that runs
:func:`labelport.testing.check_writer` through the entry point, and a GitHub Actions workflow that runs it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from string import Template

from ._version import __version__
from .errors import OptionError

__all__ = ["new_writer"]

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

_FILES = {
    "pyproject.toml": '''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A labelport writer: $name"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["labelport>=$major_minor,<$next_minor", "numpy"]

[project.optional-dependencies]
test = ["pytest>=7"]

# labelport finds the writer here: the entry point names a module with a @labelport.hookimpl
[project.entry-points.labelport]
$name = "$module.plugin"

[tool.setuptools]
packages = ["$module"]
''',
    "README.md": '''\
# $dist

A labelport writer plugin: `labelport export SOURCE -o OUT --writer $name`.

```sh
pip install -e ".[test]"
labelport writers $name       # listed, with its options
pytest                        # labelport's writer contract (labelport.testing.check_writer)
```

Edit `$module/plugin.py`: `write(task, ctx)` gets one task (its series, label maps and taxonomy) and writes
files through `ctx`; the options dataclass becomes `--opt $name.KEY=VALUE`. labelport's CONTRIBUTING.md lists
the model a writer sees and what the contract checks.
''',
    "$module/__init__.py": '''\
"""The labelport writer ``$name``."""
''',
    "$module/plugin.py": '''\
"""``$name``: each series' label map as a NumPy ``.npy`` file, its affine in tasks.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import labelport
import numpy as np


@dataclass(frozen=True)
class Options:
    #: "keep" the stored integer type, or "int32" for tools that want one type
    dtype: Literal["keep", "int32"] = "keep"


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    """Write one task; return its tasks.json entry (paths relative to the output root)."""
    entry = task.to_record()
    for series, record in zip(task.series, entry.get("series") or []):
        if series.label_map is None:
            continue
        labels = series.label_map.array
        if ctx.options.dtype == "int32":
            labels = labels.astype(np.int32)
        path = ctx.series_path(series, ".npy")
        with ctx.create(path) as tmp, open(tmp, "wb") as f:  # complete files only: written aside, then moved
            np.save(f, labels)
        record["segmentations"] = path
        record["affine"] = series.label_map.affine.tolist()
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(name="$name", description="label maps as NumPy .npy files", write=write,
                                 options=Options)]
''',
    "tests/test_plugin.py": '''\
from labelport.testing import check_writer


def test_contract(tmp_path):
    check_writer("$name", tmp_path)


def test_contract_int32(tmp_path):
    check_writer("$name", tmp_path, options={"dtype": "int32"})
''',
    ".github/workflows/tests.yml": '''\
name: tests
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python-version: ["3.10", "3.12"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: $${{ matrix.python-version }}
      - run: pip install -e ".[test]"
      - run: labelport writers $name
      - run: pytest -q
''',
    ".gitignore": '''\
__pycache__/
*.egg-info/
build/
dist/
''',
}


def new_writer(name: str, parent: str | os.PathLike[str] = ".") -> Path:
    """Create ``parent/labelport-NAME/``, a plugin package for the writer ``name``; returns its folder."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise OptionError(f"writer name {name!r}: use lower-case letters, digits and '-', starting with a letter")
    major, minor = (int(part) for part in __version__.split(".")[:2])
    values = {"name": name, "dist": f"labelport-{name}", "module": "labelport_" + name.replace("-", "_"),
              "major_minor": f"{major}.{minor}", "next_minor": f"{major}.{minor + 1}"}
    folder = Path(parent) / values["dist"]
    if folder.exists():
        raise OptionError(f"{folder} already exists")
    for relpath, text in _FILES.items():
        path = folder / Template(relpath).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
    return folder
