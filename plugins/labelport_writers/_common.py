"""Small pieces the built-in writers share (they use only labelport's public API)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import labelport


@dataclass(frozen=True)
class GzipOptions:
    """Options of the writers that write .nii.gz files."""

    #: ISA-L gzip level 0-3 (1 is about 10x faster than zlib's default and smaller on label maps)
    compresslevel: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.compresslevel <= 3:
            raise ValueError(f"compresslevel must be 0-3, not {self.compresslevel}")


def labelled(
    task: labelport.Task, entry: dict[str, Any]
) -> Iterator[tuple[labelport.Series, labelport.LabelMap, dict[str, Any]]]:
    """(series, its label map, its record in ``entry``) for every series that has a label map."""
    for series, record in zip(task.series, entry.get("series") or []):
        if series.label_map is not None:
            yield series, series.label_map, record


def instance_entry(segment: labelport.Segment, mask: str | list[str] | None) -> dict[str, Any]:
    """A segmentMap entry for one instance, without overlap groups (the output has none)."""
    entry = {k: v for k, v in segment.record.items() if k not in ("mask", "overlappingGroups")}
    if mask is not None:
        entry["mask"] = mask
    return entry


def classes(series: labelport.Series) -> dict[int, list[labelport.Segment]]:
    """Segments grouped by class id (ascending), each list in segmentMap order."""
    grouped: dict[int, list[labelport.Segment]] = {}
    for segment in series.segments.values():
        grouped.setdefault(segment.class_id, []).append(segment)
    return dict(sorted(grouped.items()))


def class_entries(series: labelport.Series, masks: dict[int, str] | str | None) -> dict[str, Any]:
    """A semantic segmentMap: one entry per class keyed ``classId + 1``, keeping the FIRST instance's id and
    attributes (what RedBrick documents), with ``mask`` from ``masks`` (per class id, or one path)."""
    out = {}
    for class_id, segments in classes(series).items():
        mask = masks.get(class_id) if isinstance(masks, dict) else masks
        out[str(class_id + 1)] = instance_entry(segments[0], mask)
    return out


def with_mask(record: dict[str, Any], mask: str) -> dict[str, Any]:
    """The series' own segmentMap with every entry's ``mask`` set (formats that keep the instance ids)."""
    return {key: {**entry, "mask": mask} for key, entry in (record.get("segmentMap") or {}).items()}


def replace_masks(record: dict[str, Any], segmentations: str | list[str], segment_map: dict[str, Any], **flags: bool
                  ) -> None:
    """Point a series record at the writer's files."""
    record["segmentations"] = segmentations
    record["segmentMap"] = segment_map
    record.update({"binaryMask": False, "semanticMask": False, "pngMask": False, **flags})
