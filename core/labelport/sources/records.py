"""tasks.json task records -> canonical :class:`Task` objects (shared by every source)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..errors import SourceError
from ..model import LabelMap, LabelVolume, Segment, Series, Task, Taxonomy
from .taxonomy import category_name

__all__ = ["categories_in_order", "record_categories", "task_from_record"]


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
        try:
            instance_id = int(key)
        except (TypeError, ValueError):
            raise SourceError(f"segmentMap key {key!r} is not an instance id") from None
        if instance_id <= 0:
            raise SourceError(f"segmentMap key {key!r}: instance ids start at 1")
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


def _located(loader: Callable[[str], LabelVolume], task: str, series: str) -> Callable[[str], LabelVolume]:
    """``loader`` whose errors name the task and series."""

    def load(path: str) -> LabelVolume:
        try:
            return loader(path)
        except SourceError as exc:
            raise exc.located(task=task, series=series) from None

    return load


def task_from_record(
    record: Any,
    taxonomy: Taxonomy,
    resolve: Callable[[str], str],
    loader: Callable[[str], LabelVolume],
    find: Callable[[str], str | None] = lambda path: None,
) -> Task:
    """Build a :class:`Task`. ``resolve`` maps a ``segmentations`` path of the record to a readable path;
    ``loader`` reads it when the array is first used; ``find`` maps an image path of ``items`` to a file
    on disk, or None. Errors name the task and series."""
    if not isinstance(record, Mapping):
        raise SourceError(f"task record is a {type(record).__name__}, not an object")
    task_id = record.get("taskId")
    name = record.get("name") or ""
    label = str(name or task_id)
    if not isinstance(task_id, str) or not task_id:
        raise SourceError("task record has no 'taskId'", task=label if name else None)
    series_records = record.get("series") or []
    if not isinstance(series_records, list):
        raise SourceError("'series' is not a list", task=label)
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
            label_map = LabelMap(resolve(path), _located(loader, label, where), groups) if path else None
        except SourceError as exc:
            raise exc.located(task=label, series=where) from None
        items = srec.get("items") or []
        found = [find(item) for item in ([items] if isinstance(items, str) else items) if isinstance(item, str)]
        series.append(Series(name=str(sname or ""), index=index, record=srec, label_map=label_map,
                             segments=segments, image_files=[f for f in found if f is not None]))
    return Task(
        task_id=task_id, name=str(name), series=series, record=record, taxonomy=taxonomy,
        stage=record.get("currentStageName"), status=record.get("status"),
    )


def categories_in_order(records: Iterable[Any]) -> list[str]:
    """Distinct categories of all records, in order of first appearance."""
    seen: dict[str, None] = {}
    for record in records:
        if isinstance(record, Mapping):
            for name in record_categories(record):
                seen.setdefault(name, None)
    return list(seen)
