"""The task records of a tasks.json file, kept as their JSON text and parsed one at a time when used.

A parsed record takes about twice the memory of its text, and an export needs each one only once, so a
project's records are kept as slices of the file (msgspec ``Raw``) plus, for each record, the few fields that
listing, filtering and naming tasks read (:class:`Head`). The segmentMap categories that derive the taxonomy
are collected in the same pass. A file that msgspec cannot split (a syntax error, nesting deeper than it
follows) is parsed whole instead, which gives the detailed error or the same records.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from ..errors import SourceError
from .records import record_categories
from .taxonomy import category_name

__all__ = ["Head", "RecordFile", "read_json"]


def read_json(path: Path) -> Any:
    """A JSON file, parsed whole; errors name the file, the line and the column."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))  # a deeply nested record fails its own task, not the whole file
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except RecursionError:
        raise SourceError("holds JSON nested more than 20000 levels deep", file=str(path)) from None
    except FileNotFoundError:
        raise SourceError("file not found", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise SourceError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                          file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read ({exc})", file=str(path)) from None
    finally:
        sys.setrecursionlimit(limit)


class Head(NamedTuple):
    """What is read of every record up front (raw JSON values; ``is_object`` False for a record that is not
    an object, whose other fields are then None)."""

    is_object: bool
    task_id: Any = None
    name: Any = None
    stage: Any = None
    updated: Any = None


class _Entry(msgspec.Struct):
    category: Any = None


class _Series(msgspec.Struct):
    segmentMap: dict[str, _Entry] | None = None


class _Fields(msgspec.Struct):
    taskId: Any = None
    name: Any = None
    currentStageName: Any = None
    updatedAt: Any = None
    series: list[_Series] | None = None


def _decode(raw: msgspec.Raw) -> Any:
    try:
        return msgspec.json.decode(raw)
    except (RecursionError, msgspec.DecodeError):  # deeper than msgspec follows: as json parses it
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20000))
        try:
            return json.loads(bytes(raw))
        finally:
            sys.setrecursionlimit(limit)


class RecordFile:
    """The records of one tasks.json file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._raws: list[Any] = []
        self._map: mmap.mmap | None = None
        self._reads = 0
        try:
            with open(path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._raws = msgspec.json.decode(self._map, type=list[msgspec.Raw])
            self._parse: Callable[[Any], Any] = _decode
        except (OSError, ValueError, RecursionError, msgspec.DecodeError, msgspec.ValidationError):
            self._map = None  # (an empty file cannot be mapped: parsed whole, it is reported as malformed)
            records = read_json(path)  # the error names the line and column, or the records parse this way
            if not isinstance(records, list):
                raise SourceError(f"expected a JSON array of tasks, found a {type(records).__name__}",
                                  file=str(path)) from None
            self._raws, self._parse = records, lambda record: record
        categories: dict[str, None] = {}
        self.heads = []
        for index, raw in enumerate(self._raws):
            if index % 1000 == 999:
                self._release()
            self.heads.append(self._head(raw, categories))
        #: distinct segmentMap categories, in order of first appearance
        self.categories = list(categories)
        self._release()

    def _release(self) -> None:
        """Give the file's pages back: records are read from the page cache again as their tasks come, so the
        process holds only those in use, however large the file."""
        if self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def _head(self, raw: Any, categories: dict[str, None]) -> Head:
        if isinstance(raw, msgspec.Raw):
            try:
                fields = msgspec.json.decode(raw, type=_Fields)
            except (RecursionError, msgspec.DecodeError, msgspec.ValidationError):
                pass  # not an object, or not shaped as expected: parsed in full below
            else:
                for series in fields.series or []:
                    for entry in (series.segmentMap or {}).values():
                        with contextlib.suppress(ValueError):  # reported when the task is opened
                            categories.setdefault(category_name(entry.category), None)
                return Head(True, fields.taskId, fields.name, fields.currentStageName, fields.updatedAt)
        record = self._parse(raw)
        if not isinstance(record, dict):
            return Head(False)
        categories.update(dict.fromkeys(record_categories(record)))
        return Head(True, record.get("taskId"), record.get("name"), record.get("currentStageName"),
                    record.get("updatedAt"))

    def __len__(self) -> int:
        return len(self._raws)

    def __getitem__(self, index: int) -> Any:
        """Record ``index``, parsed now (a fresh object each time)."""
        self._reads += 1
        if self._reads % 1000 == 0:
            self._release()
        return self._parse(self._raws[index])

    def __iter__(self) -> Iterator[Any]:
        return (self._parse(raw) for raw in self._raws)
