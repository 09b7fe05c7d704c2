"""The ``labelport`` entry points of the installed distributions, found without importlib.metadata.

importlib.metadata imports the email package to parse metadata, which costs more than all of labelport's
own start-up; plugin discovery only needs each distribution's ``entry_points.txt`` and its name and version.
The rules follow importlib.metadata: distributions are ``*.dist-info`` / ``*.egg-info`` folders in the
``sys.path`` directories, and the first distribution of a name on ``sys.path`` wins.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["EntryPoint", "find_entry_points"]


@dataclass(frozen=True)
class EntryPoint:
    """``name = module[:attribute]`` from the distribution ``package`` (``version``)."""

    name: str
    value: str
    package: str
    version: str

    def load(self) -> Any:
        module, _, attribute = self.value.partition(":")
        target: Any = importlib.import_module(module.strip())
        for part in filter(None, attribute.strip().split(".")):
            target = getattr(target, part)
        return target


def _name_and_version(folder: str) -> tuple[str, str]:
    """From the METADATA / PKG-INFO headers, else from the folder name (``name-version.dist-info``)."""
    stem = os.path.basename(folder).rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, filename), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break
                    key, _, value = line.partition(":")
                    if key == "Name":
                        name = value.strip()
                    elif key == "Version":
                        version = value.strip()
            break
        except OSError:
            continue
    return name, version


def find_entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group``, sorted by name. A distribution's name is read from its folder's name to
    tell which comes first on ``sys.path``; its metadata and its entry points are parsed only when its
    ``entry_points.txt`` names the group (most distributions have none)."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    header = f"[{group}]".encode()
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder_name in names:
            if not folder_name.endswith((".dist-info", ".egg-info")):
                continue
            key = re.sub(r"[-_.]+", "-", folder_name.rsplit(".", 1)[0].partition("-")[0]).lower()
            if key in seen:
                continue
            seen.add(key)
            folder = os.path.join(entry or ".", folder_name)
            try:
                with open(os.path.join(folder, "entry_points.txt"), "rb") as f:
                    if header not in f.read():
                        continue
            except OSError:
                continue
            import configparser  # (only for the few distributions that name the group)

            parser = configparser.RawConfigParser(delimiters=("=",))
            parser.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
            try:
                parser.read(os.path.join(folder, "entry_points.txt"), encoding="utf-8")
            except (configparser.Error, UnicodeDecodeError):
                continue
            if parser.has_section(group):
                package, version = _name_and_version(folder)
                found += [EntryPoint(name, value, package, version) for name, value in parser.items(group)]
    return sorted(found, key=lambda ep: ep.name)
