"""tasks.json task records -> canonical :class:`Task` objects (shared by every source)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import SourceError
from ..model import LabelMap, LabelVolume, Segment, Series, Task, Taxonomy
from .taxonomy import category_name

__all__ = ["record_categories", "task_from_record"]

_INSTANCE_ID = re.compile(r"[1-9][0-9]{0,8}")


def _segment_map(series: Mapping[str, Any]) -> Mapping[str, Any]:
    seg_map = series.get("segmentMap") or {}
    if not isinstance(seg_map, Mapping):
        raise SourceError("'segmentMap' is not an object")
    return seg_map


def record_categories(record: Mapping[str, Any]) -> Iterator[str]:
    """Every segmentMap category of a task record, in order (malformed entries are skipped here and
    reported when the task is opened)."""
    for series in record.get("series") or []:
        if not isinstance(series, Mapping) or not isinstance(series.get("segmentMap"), Mapping):
            continue
        for entry in series["segmentMap"].values():
            try:
                yield category_name(entry.get("category") if isinstance(entry, Mapping) else None)
            except ValueError:
                continue


def _segments(seg_map: Mapping[str, Any], taxonomy: Taxonomy) -> tuple[dict[int, Segment], Taxonomy]:
    segments: dict[int, Segment] = {}
    for key, entry in seg_map.items():
        if not (isinstance(key, str) and _INSTANCE_ID.fullmatch(key)):
            raise SourceError(f"segmentMap key {key!r} is not an instance id as RedBrick writes them "
                              "(1, 2, ...: ASCII digits, no leading zero)")
        instance_id = int(key)
        if not isinstance(entry, Mapping):
            raise SourceError(f"segmentMap entry {key!r} is not an object")
        try:
            name = category_name(entry.get("category"))
        except ValueError as exc:
            raise SourceError(f"segmentMap entry {key!r}: {exc}") from None
        groups = entry.get("overlappingGroups") or []
        if not isinstance(groups, list) or not all(isinstance(g, int) and g > 0 for g in groups):
            raise SourceError(f"segmentMap entry {key!r}: overlappingGroups must be a list of positive integers")
        attributes = entry.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise SourceError(f"segmentMap entry {key!r}: attributes must be an object")
        taxonomy, category = taxonomy.with_category(name)
        label_id = entry.get("id")
        segments[instance_id] = Segment(
            instance_id=instance_id, category=name, class_id=category.class_id, color=category.color,
            label_id=str(label_id) if label_id is not None else None, attributes=dict(attributes),
            overlap_groups=tuple(groups), record=entry,
        )
    return segments, taxonomy


def _overlap_groups(segments: Mapping[int, Segment]) -> dict[int, frozenset[int]]:
    members: dict[int, set[int]] = {}
    for seg in segments.values():
        for group in seg.overlap_groups:
            members.setdefault(group, set()).add(seg.instance_id)
    clash = sorted(set(members) & set(segments))
    if clash:
        raise SourceError(f"overlap group id(s) {clash} are also instance ids")
    return {g: frozenset(ids) for g, ids in sorted(members.items())}


def _segmentation_path(series: Mapping[str, Any]) -> str | None:
    seg = series.get("segmentations")
    if seg is None or seg == [] or seg == "":
        return None
    for flag in ("binaryMask", "semanticMask", "pngMask"):
        if series.get(flag):
            raise SourceError(
                f"series was exported with {flag}=true; labelport reads instance label maps "
                "(export from RedBrick without binary, semantic or PNG masks)"
            )
    if isinstance(seg, list):
        if len(seg) != 1 or not isinstance(seg[0], str):
            raise SourceError(f"'segmentations' lists {len(seg)} files; expected one instance label map")
        seg = seg[0]
    if not isinstance(seg, str):
        raise SourceError(f"'segmentations' must be a path, not {type(seg).__name__}")
    return seg


Loader = Callable[[str, "tuple[int, ...] | None", "int | None"], LabelVolume]


def _grid(srec: Mapping[str, Any]) -> tuple[int, ...] | None:
    headers = srec.get("imageHeaders")
    dims = headers.get("dimensions") if isinstance(headers, Mapping) else None
    if isinstance(dims, list) and dims and all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        return tuple(dims)
    return None


class _Loading:
    """How a task's label maps are read: against their image grid, within the task's memory budget (what its
    other loaded maps leave), with errors naming the task and series."""

    def __init__(self, loader: Loader, task: str, limit: int | None) -> None:
        self.loader, self.task, self.limit = loader, task, limit
        self.maps: list[LabelMap] = []

    def of(self, series: str, expected: tuple[int, ...] | None) -> Callable[[str], LabelVolume]:
        def load(path: str) -> LabelVolume:
            left = None if self.limit is None else self.limit - sum(
                m.array.nbytes for m in self.maps if m.loaded and m.path != path)
            try:
                return self.loader(path, expected, left)
            except SourceError as exc:
                raise exc.located(task=self.task, series=series) from None

        return load


def task_from_record(
    record: Any,
    taxonomy: Taxonomy,
    resolve: Callable[[str], str],
    loader: Loader,
    find: Callable[[str], str | None] = lambda path: None,
    label_memory: int | None = None,
) -> Task:
    """Build a :class:`Task`. ``resolve`` maps a ``segmentations`` path of the record to a readable path;
    ``loader(path, image grid, byte limit)`` reads it when the array is first used (see
    :func:`labelport.read_label_nifti`); ``find`` maps an image path of ``items`` to a file on disk, or None;
    ``label_memory`` bounds the bytes of the task's label maps loaded at once. Errors name the task and
    series."""
    from .schema import check_record  # (and msgspec: a re-run that finds nothing changed reads no record)

    if not isinstance(record, Mapping):
        raise SourceError(f"task record is a {type(record).__name__}, not an object")
    task_id = record.get("taskId")
    name = record.get("name") or ""
    label = str(name or task_id)
    if not isinstance(task_id, str) or not task_id:
        raise SourceError("task record has no 'taskId'", task=label if name else None)
    try:
        check_record(record)
    except SourceError as exc:
        raise exc.located(task=label) from None
    series_records = record.get("series") or []
    if not isinstance(series_records, list):
        raise SourceError("'series' is not a list", task=label)
    loading = _Loading(loader, label, label_memory)
    series: list[Series] = []
    for index, srec in enumerate(series_records):
        sname = srec.get("name") if isinstance(srec, Mapping) else None
        where = str(sname or f"#{index + 1}")
        try:
            if not isinstance(srec, Mapping):
                raise SourceError("series record is not an object")
            segments, taxonomy = _segments(_segment_map(srec), taxonomy)
            groups = _overlap_groups(segments)
            path = _segmentation_path(srec)
            label_map = LabelMap(resolve(path), loading.of(where, _grid(srec)), groups) if path else None
            if label_map is not None:
                loading.maps.append(label_map)
        except SourceError as exc:
            raise exc.located(task=label, series=where) from None
        items = srec.get("items") or []
        found = {item: find(item) for item in ([items] if isinstance(items, str) else items) if isinstance(item, str)}
        item_files = {item: file for item, file in found.items() if file is not None}
        series.append(Series(name=str(sname or ""), index=index, record=srec, label_map=label_map,
                             segments=segments, image_files=list(item_files.values()), item_files=item_files))
    return Task(
        task_id=task_id, name=str(name), series=series, record=record, taxonomy=taxonomy,
        stage=record.get("currentStageName"), status=record.get("status"),
    )
