"""tasks.json, written as tasks finish: one entry at a time to a temporary file, renamed when complete."""

from __future__ import annotations

import filecmp
import json
import os
from typing import IO, Any

from .outdir import move_into_place, scratch_file

__all__ = ["TasksJsonWriter", "encode_entry"]


def encode_entry(entry: Any) -> str:
    """One task entry as tasks.json holds it: strict JSON (raises TypeError/ValueError for what is not JSON,
    NaN and Infinity included, which other JSON readers refuse)."""
    return json.dumps(entry, indent=2, ensure_ascii=False, allow_nan=False)


class TasksJsonWriter:
    """Streams a JSON array formatted like ``json.dump(tasks, f, indent=2)``; memory stays flat."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tmp = scratch_file(os.path.dirname(path) or ".", path)
        self._file: IO[str] | None = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def add_text(self, text: str) -> None:
        """Append one entry already encoded by :func:`encode_entry`."""
        assert self._file is not None, "tasks.json already closed"
        self._file.write(("[\n" if self.count == 0 else ",\n") + "  " + text.replace("\n", "\n  "))
        self.count += 1

    def close(self) -> None:
        """Finish the array and move it into place."""
        if self._file is None:
            return
        self._file.write("\n]\n" if self.count else "[]\n")
        self._file.close()
        self._file = None
        if os.path.isfile(self.path) and filecmp.cmp(self._tmp, self.path, shallow=False):
            os.remove(self._tmp)  # unchanged: leave the file (and its time stamp) alone
            return
        move_into_place(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file; an earlier tasks.json at ``path`` stays as it was."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if os.path.exists(self._tmp):
            os.remove(self._tmp)
