"""tasks.json: how an entry is encoded, and labelport's own project step that writes the file."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import ProjectContext
    from .project import TaskEntries

__all__ = ["encode_entry", "write_tasks_json"]


def encode_entry(entry: Any) -> str:
    """One task entry as tasks.json holds it: strict JSON (raises TypeError/ValueError for what is not JSON,
    NaN and Infinity included, which other JSON readers refuse)."""
    return json.dumps(entry, indent=2, ensure_ascii=False, allow_nan=False)


def write_tasks_json(entries: TaskEntries, ctx: ProjectContext) -> None:
    """``tasks.json``: a JSON array laid out like ``json.dump(entries, f, indent=2)``, streamed entry by entry
    (memory stays flat in the number of tasks). Every writer root gets it, before the writer's own step."""
    with ctx.create("tasks.json") as tmp, open(tmp, "w", encoding="utf-8") as f:
        count = 0
        for text in entries.texts():
            f.write(("[\n" if count == 0 else ",\n") + "  " + text.replace("\n", "\n  "))
            count += 1
        f.write("\n]\n" if count else "[]\n")
