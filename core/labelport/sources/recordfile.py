"""The task records of a tasks.json file, each parsed when its task comes.

A parsed record takes about twice the memory of its text, and an export needs each one only once. So the file
is split once (msgspec ``Raw``) and for each record only its place in the file and a digest of its text are
kept, with the few fields that listing, filtering and naming tasks read (:class:`Head`); the segmentMap
categories that derive the taxonomy are collected from the same file. Records are read back from the file when
their task comes, and checked against their digest: a file changed meanwhile is an error naming it, never
another record. An incremental export judges a task's record by its digest, without parsing it.
A file that msgspec cannot split (a syntax error, nesting deeper than it follows, NaN) is parsed whole
instead, which gives the detailed error or the same records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from ..errors import SourceError
from .records import record_categories
from .taxonomy import category_name

__all__ = ["Head", "RecordFile", "read_json"]


@contextlib.contextmanager
def _deep() -> Iterator[None]:
    """Python's json parser may follow 20,000 levels (a deeply nested record fails its own task, not the file)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def read_json(path: Path) -> Any:
    """A JSON file, parsed whole; errors name the file, the line and the column."""
    try:
        with _deep(), open(path, encoding="utf-8") as f:
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


_SKIP = frozenset(b" \t\n\r,")  # what may stand between two values of a JSON array


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


def _decode(raw: msgspec.Raw | bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except (RecursionError, msgspec.DecodeError):  # deeper than msgspec follows: as json parses it
        with _deep():
            return json.loads(bytes(raw))


class RecordFile:
    """The records of one tasks.json file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._split = False  # whether records are read back from the file (else parsed whole, in _parsed)
        self._spans = array("q")  # (offset, length) of each record's text in the file
        self._digests = bytearray()  # the digest of each record's text (_SIZE bytes each)
        self._parsed: list[Any] = []  # the records, when the file had to be parsed whole
        categories: dict[str, None] = {}
        self.heads: list[Head] = []
        try:
            data = path.read_bytes()
            raws = msgspec.json.decode(data, type=list[msgspec.Raw])
        except (OSError, RecursionError, msgspec.DecodeError, msgspec.ValidationError):
            records = read_json(path)  # the error names the line and column, or the records parse this way
            if not isinstance(records, list):
                raise SourceError(f"expected a JSON array of tasks, found a {type(records).__name__}",
                                  file=str(path)) from None
            self._parsed = records
            self.heads = [self._head(record, categories) for record in records]
        else:
            try:  # every record as expected: the fields of all of them in one typed pass
                fields: list[Any] = msgspec.json.decode(data, type=list[_Fields])
            except (RecursionError, msgspec.DecodeError, msgspec.ValidationError):
                fields = raws  # each record on its own (see _head)
            at = data.index(b"[") + 1
            for raw, head in zip(raws, fields):  # each value follows the last, after JSON whitespace and a comma
                while data[at] in _SKIP:
                    at += 1
                length = len(raw)
                if not data.startswith(raw, at):
                    raise SourceError("could not locate a record of the array", file=str(path))
                self._spans.extend((at, length))
                self._digests += _digest(raw)
                self.heads.append(self._head(head, categories))
                at += length
            self._split = True
        #: distinct segmentMap categories, in order of first appearance
        self.categories = list(categories)

    def _head(self, raw: Any, categories: dict[str, None]) -> Head:
        """The head of a record: from its typed fields, its text or (when it is not shaped as expected) the
        parsed record."""
        fields = raw
        if isinstance(raw, msgspec.Raw):
            try:
                fields = msgspec.json.decode(raw, type=_Fields)
            except (RecursionError, msgspec.DecodeError, msgspec.ValidationError):
                raw = _decode(raw)  # not an object, or not shaped as expected: parsed in full
        if isinstance(fields, _Fields):
            for series in fields.series or []:
                for entry in (series.segmentMap or {}).values():
                    with contextlib.suppress(ValueError):  # reported when the task is opened
                        categories.setdefault(category_name(entry.category), None)
            return Head(True, fields.taskId, fields.name, fields.currentStageName, fields.updatedAt)
        if not isinstance(raw, dict):
            return Head(False)
        categories.update(dict.fromkeys(record_categories(raw)))
        return Head(True, raw.get("taskId"), raw.get("name"), raw.get("currentStageName"), raw.get("updatedAt"))

    def __len__(self) -> int:
        return len(self.heads)

    def digest(self, index: int) -> str | None:
        """The digest of record ``index``'s text (None when the file was parsed whole)."""
        return self._digests[_SIZE * index:_SIZE * index + _SIZE].hex() if self._split else None

    def __getitem__(self, index: int) -> Any:
        """Record ``index``, parsed now (a fresh object each time)."""
        if not self._split:
            return self._parsed[index]
        offset, length = self._spans[2 * index:2 * index + 2]
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                if hasattr(os, "pread"):
                    text = os.pread(fd, length, offset)
                else:
                    os.lseek(fd, offset, os.SEEK_SET)
                    text = os.read(fd, length)
            finally:
                os.close(fd)
        except OSError:
            text = b""
        if _digest(text) != self._digests[_SIZE * index:_SIZE * index + _SIZE]:
            raise SourceError("changed while it was being exported (export again)", file=str(self.path))
        return _decode(text)

    def __iter__(self) -> Iterator[Any]:
        return (self[index] for index in range(len(self)))


_SIZE = 16


def _digest(text: msgspec.Raw | bytes) -> bytes:
    """What tells a record's text from another's (SHA-1, which processors compute fastest, cut to 128 bits)."""
    return hashlib.sha1(text, usedforsecurity=False).digest()[:_SIZE]
