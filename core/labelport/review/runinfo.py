"""What the last export into a writer root did, kept for the review page: ``.labelport/last-export.json`` (the
writer, its options, counts, failures with their messages, labelport's version) and ``.labelport/taxonomy.json``
(the categories, class ids and colours the export used)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

__all__ = ["hex_color", "load_run", "save_run"]


def hex_color(rgb: Any) -> str:
    """``#rrggbb`` of an (r, g, b) colour."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _write(path: str, value: Any) -> None:
    """Write ``value`` as JSON into ``path`` (whole, through a temporary file), unless it holds that already (a
    re-export that changed nothing leaves both files as they were)."""
    text = json.dumps(value, indent=1, default=str)
    try:
        with open(path, encoding="utf-8") as f:
            if f.read(len(text) + 1) == text:
                return
    except (OSError, ValueError):  # none yet, or not text
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def save_run(root: str, writer: str, options: Any, report: Any, taxonomy: Any) -> None:
    """Record the export ``report`` of ``writer`` (with ``options``) into ``root``."""
    from .._version import __version__

    folder = os.path.join(root, ".labelport")
    os.makedirs(folder, exist_ok=True)
    _write(os.path.join(folder, "last-export.json"), {
        "writer": writer, "labelport": __version__,
        "options": dataclasses.asdict(options) if dataclasses.is_dataclass(options) and not isinstance(options, type)
        else {},
        "tasks": report.tasks_seen, "written": report.written.get(writer, 0),
        "unchanged": report.unchanged.get(writer, 0), "removed": report.removed.get(writer, 0),
        "failures": [{"task": f.task, "task_id": f.task_id, "writer": f.writer, "message": f.message}
                     for f in report.failures if f.writer in (None, writer)],
    })
    _write(os.path.join(folder, "taxonomy.json"), {"name": taxonomy.name, "objectTypes": [
        {"category": c.name, "classId": c.class_id, "color": hex_color(c.color)}
        for c in taxonomy.categories]})


def load_run(root: str) -> tuple[dict[str, Any], Any]:
    """(the last export's record, or {} ; its taxonomy, or None) of ``root``."""
    from ..sources.taxonomy import parse_taxonomy

    folder = os.path.join(root, ".labelport")
    try:
        with open(os.path.join(folder, "last-export.json"), encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, ValueError):
        run = {}
    try:
        with open(os.path.join(folder, "taxonomy.json"), encoding="utf-8") as f:
            taxonomy = parse_taxonomy(json.load(f), os.path.join(folder, "taxonomy.json"))
    except Exception:  # none recorded, or one that does not parse: colours by category name
        taxonomy = None
    return (run if isinstance(run, dict) else {}), taxonomy
