"""The shape of a tasks.json task record, as far as labelport relies on it, checked one record at a time.

Exports come from other people's systems: a record whose ``items`` is a number, whose paths hold a NUL, or
whose segmentMap is a list fails its own task with one line saying where, and every other task is still
exported. Fields labelport does not read are not checked (they pass through to tasks.json unchanged).
The check uses msgspec, which validates a record in microseconds and names the path of the first problem.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..errors import SourceError

__all__ = ["check_record"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Entry(msgspec.Struct):  # field names as RedBrick spells them
    category: str | list[Any] | None = None
    attributes: dict[str, Any] | None = None
    overlappingGroups: list[int] | None = None


class _Headers(msgspec.Struct):
    dimensions: list[int] | None = None


class _Series(msgspec.Struct):
    name: str | None = None
    items: str | list[str] | None = None
    segmentations: str | list[str] | None = None
    segmentMap: dict[str, _Entry] | None = None
    imageHeaders: _Headers | None = None
    binaryMask: bool | None = None
    semanticMask: bool | None = None
    pngMask: bool | None = None


class _Task(msgspec.Struct):
    taskId: str | None = None
    name: str | None = None
    series: list[_Series] = []


def check_record(record: Any) -> None:
    """Raise :class:`SourceError` naming the first field of ``record`` that has the wrong type, or a path
    (``items``, ``segmentations``) holding a NUL or other control character."""
    if not isinstance(record, dict):
        raise SourceError(f"task record is a {type(record).__name__}, not an object")
    try:
        task = msgspec.convert(record, _Task)
    except msgspec.ValidationError as exc:
        text = str(exc)
        reason, _, where = text.partition(" - at `$")
        where = where.rstrip("`").lstrip(".").replace("[...]", "[<key>]")
        raise SourceError(f"malformed task record: {where or 'record'}: {reason[:1].lower()}{reason[1:]}") from None
    if not task.taskId:
        raise SourceError("task record has no 'taskId'")
    for n, series in enumerate(task.series):
        for key in ("items", "segmentations"):
            value = getattr(series, key)
            for path in [value] if isinstance(value, str) else value or []:
                if _CONTROL.search(path):
                    raise SourceError(f"malformed task record: series[{n}].{key}: the path {path!r} holds a "
                                      "control character")
