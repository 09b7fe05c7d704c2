"""The task records of a tasks.json file, each parsed when its task comes.

A parsed record takes about twice the memory of its text, and an export needs each one only once. So the file
is split once, a block at a time (msgspec ``Raw``; see :meth:`RecordFile._split_file`), and for each record
only its place in the file and a digest of its text are kept, with the few fields that listing, filtering and
naming tasks read (:class:`Head`, packed in :class:`Heads`); the segmentMap categories that derive the
taxonomy are collected from the same pieces. Records are read back from the file when their task comes, and
checked against their digest: a file changed meanwhile is an error naming it, never another record. An
incremental export judges a task's record by its digest, without parsing it. The whole file's digest is taken
from the same blocks (see :func:`labelport.sources.jsonfile.file_digest`).
A file that msgspec cannot split (a syntax error, nesting deeper than it follows, NaN) is parsed whole
instead, which gives the detailed error or the same records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import msgspec

from ..digest import blake2b
from ..errors import SourceError
from ..heap import give_back
from ..textset import TextList
from .jsonfile import deep, read_json
from .records import record_categories
from .taxonomy import category_name

__all__ = ["Head", "Heads", "RecordFile"]


_WHITE = b" \t\n\r"
_SKIP_WHITE = frozenset(_WHITE)
_SKIP = frozenset(_WHITE + b",")  # what may stand between two values of a JSON array
_BOUNDARY = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")  # where one object may end and the next begin
_BLOCK = 1 << 20  # tasks.json is split this many bytes at a time


#: a file this large has its split's memory given back: glibc keeps most of it, below the records' heads that
#: stay, and worker processes forked later would share those pages with this one, then copy them when either
#: reuses them
_TRIM_AFTER = 16 << 20


class _NotSplit(Exception):
    """The file is not an array that splits as expected (it is parsed whole instead)."""


class Head(NamedTuple):
    """What is read of every record up front (raw JSON values; ``is_object`` False for a record that is not
    an object, whose other fields are then None)."""

    is_object: bool
    task_id: Any = None
    name: Any = None
    stage: Any = None


class Heads:
    """The heads of a file's records, packed: an object per record would take about 400 bytes, kept for the
    whole export and shared with forked worker processes until reference counts copy its pages. Here the
    task ids and names are two :class:`~labelport.textset.TextList` and each stage is a number (about 60 bytes a
    record, in a few large objects); a record whose head is not an id, a name and a stage as strings is kept as
    it is. Items are made when read."""

    def __init__(self) -> None:
        self._ids, self._names = TextList(), TextList()  # ("" for the records kept as they are)
        self._stages = array("i")  # each record's stage, as its place in _stage_names
        self._stage_names: list[str | None] = []
        self._stage_at: dict[str | None, int] = {}
        self._odd: dict[int, Head] = {}  # the records whose heads are kept as they are

    def append(self, head: Head) -> None:
        task_id, name, stage = head.task_id, head.name, head.stage
        if head.is_object and type(task_id) is str and type(name) is str and (stage is None or type(stage) is str):
            at = self._stage_at.get(stage)
            if at is None:
                at = self._stage_at[stage] = len(self._stage_names)
                self._stage_names.append(stage)
        else:
            task_id, name, at = "", "", 0
            self._odd[len(self._stages)] = head
        self._ids.append(task_id)
        self._names.append(name)
        self._stages.append(at)

    def __len__(self) -> int:
        return len(self._stages)

    def __getitem__(self, index: int) -> Head:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        return self._odd.get(index) or Head(True, self._ids[index], self._names[index],
                                            self._stage_names[self._stages[index]])

    def __iter__(self) -> Iterator[Head]:
        names, odd = self._stage_names, self._odd
        for index, (task_id, name, stage) in enumerate(zip(self._ids, self._names, self._stages)):
            yield (odd.get(index) if odd else None) or Head(True, task_id, name, names[stage])


class _Entry(msgspec.Struct):
    category: Any = None


class _Series(msgspec.Struct):
    segmentMap: dict[str, _Entry] | None = None


class _Fields(msgspec.Struct):
    taskId: Any = None
    name: Any = None
    currentStageName: Any = None
    series: list[_Series] | None = None


def _decode(raw: msgspec.Raw | bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except (RecursionError, msgspec.DecodeError):  # deeper than msgspec follows: as json parses it
        with deep():
            return json.loads(bytes(raw))


class RecordFile:
    """The records of one tasks.json file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._split = False  # whether records are read back from the file (else parsed whole, in _parsed)
        self._spans = array("q")  # (offset, length) of each record's text in the file
        self._digests = bytearray()  # the digest of each record's text (_SIZE bytes each)
        self._parsed: list[Any] = []  # the records, when the file had to be parsed whole
        self._whole = blake2b()  # of the bytes split (see file_digest)
        #: the file's ``stat`` before it was split
        self.before: os.stat_result | None = None
        categories: dict[str, None] = {}
        self.heads = Heads()
        try:
            with open(path, "rb") as f:
                self.before = os.fstat(f.fileno())
                self._split_file(f, categories)
        except (OSError, RecursionError, msgspec.DecodeError, msgspec.ValidationError, _NotSplit):
            self._spans, self._digests, self.heads, categories = array("q"), bytearray(), Heads(), {}
            records = read_json(path)  # the error names the line and column, or the records parse this way
            if not isinstance(records, list):
                raise SourceError(f"expected a JSON array of tasks, found a {type(records).__name__}",
                                  file=str(path)) from None
            self._parsed = records
            for record in records:
                self.heads.append(self._head(record, categories))
        else:
            self._split = True
            if self._spans and self._spans[-2] > _TRIM_AFTER:
                give_back()
        #: distinct segmentMap categories, in order of first appearance
        self.categories = list(categories)

    def _split_file(self, f: BinaryIO, categories: dict[str, None]) -> None:
        """Split the array a block at a time: each piece that is cut off ends after a record (where one object
        ends and another begins, and the piece up to there parses as an array; see :meth:`_cut`), so only about
        a block of the file is in memory."""
        buf = f.read(_BLOCK)
        self._whole.update(buf)
        start = buf.lstrip(_WHITE)
        if not start.startswith(b"["):
            raise _NotSplit
        base, pos = 0, len(buf) - len(start) + 1  # buf's place in the file; where its unsplit text begins
        after_comma = False
        while True:
            more = f.read(_BLOCK)
            self._whole.update(more)
            if not more:  # the rest: the last records and the closing bracket
                piece = b"[" + buf[pos:]
                raws = msgspec.json.decode(piece, type=list[msgspec.Raw])
                if after_comma and not raws:
                    raise _NotSplit  # a comma before the bracket
                self._take(buf, base, pos, piece, raws, categories)
                return
            tried = max(len(buf) - pos - 64, 0)  # the text before this was looked at for a place to cut
            buf, base, pos = buf[pos:] + more, base + pos, 0
            cut = self._cut(buf, tried)
            if cut is None:
                continue  # no record ends in what was read yet
            end, piece, raws = cut
            self._take(buf, base, pos, piece, raws, categories)
            pos = end
            while buf[pos] in _SKIP_WHITE:
                pos += 1
            pos += 1  # the comma
            after_comma = True

    @staticmethod
    def _cut(buf: bytes, tried: int) -> tuple[int, bytes, list[msgspec.Raw]] | None:
        """Where to cut ``buf`` after the last record that ends in it, the piece up to there as an array, and its
        records; None when none of the last few places after ``tried`` where an object ends and another begins
        (``}, {``) ends a record: one that ends an object inside a record (of a list of objects) leaves a piece
        that does not parse."""
        for match in reversed(list(_BOUNDARY.finditer(buf, tried))[-8:]):
            piece = b"[" + buf[:match.start() + 1] + b"]"
            with contextlib.suppress(RecursionError, msgspec.DecodeError):
                return match.start() + 1, piece, msgspec.json.decode(piece, type=list[msgspec.Raw])
        return None

    def _take(self, buf: bytes, base: int, at: int, piece: bytes, raws: list[msgspec.Raw],
              categories: dict[str, None]) -> None:
        """Note the records ``raws`` of the array ``piece``, which ``buf`` (at ``base`` in the file) holds from
        ``at`` on."""
        try:  # every record as expected: the fields of all of them in one typed pass
            fields: list[Any] = msgspec.json.decode(piece, type=list[_Fields])
        except (RecursionError, msgspec.DecodeError, msgspec.ValidationError):
            fields = raws  # each record on its own (see _head)
        spans, digests, heads, head_of = self._spans.extend, self._digests, self.heads.append, self._head
        for raw, head in zip(raws, fields):  # each value follows the last, after JSON whitespace and a comma
            while buf[at] in _SKIP:
                at += 1
            length = len(raw)
            if not buf.startswith(raw, at):
                raise SourceError("could not locate a record of the array", file=str(self.path))
            spans((base + at, length))
            digests += _digest(raw)
            heads(head_of(head, categories))
            at += length

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
            for series in fields.series or ():
                for entry in (series.segmentMap or {}).values():
                    category = entry.category
                    if type(category) is not str:
                        try:
                            category = category_name(category)
                        except ValueError:  # reported when the task is opened
                            continue
                    if category not in categories:
                        categories[category] = None
            stage = fields.currentStageName
            return Head(True, fields.taskId, fields.name, stage)
        if not isinstance(raw, dict):
            return Head(False)
        categories.update(dict.fromkeys(record_categories(raw)))
        return Head(True, raw.get("taskId"), raw.get("name"), raw.get("currentStageName"))

    def __len__(self) -> int:
        return len(self.heads)

    def digest(self, index: int) -> str | None:
        """The digest of record ``index``'s text (None when the file was parsed whole)."""
        return self._digest_of(index).hex() if self._split else None

    def file_digest(self) -> str | None:
        """The :func:`file_digest` of the bytes that were split (None when the file was parsed whole)."""
        return self._whole.hexdigest() if self._split else None

    def _digest_of(self, index: int) -> bytes:
        return bytes(self._digests[_SIZE * index:_SIZE * index + _SIZE])

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
        if _digest(text) != self._digest_of(index):
            raise SourceError("changed while it was being exported (export again)", file=str(self.path))
        return _decode(text)

    def __iter__(self) -> Iterator[Any]:
        return (self[index] for index in range(len(self)))


_SIZE = 16


def _digest(text: msgspec.Raw | bytes) -> bytes:
    """What tells a record's text from another's (SHA-1, which processors compute fastest, cut to 128 bits)."""
    return hashlib.sha1(text, usedforsecurity=False).digest()[:_SIZE]
