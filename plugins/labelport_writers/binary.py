"""``binary-mask``: one 0/1 NIfTI per instance (``instance-<id>.nii.gz``), or per class
(``category-<classId+1>.nii.gz``) with ``--opt binary-mask.per=class``.

Each mask includes the instance's overlap-group voxels, so overlapping instances are each complete. An
instance without voxels gets an all-zero file (``empty=write``, the default) or none (``empty=skip``, and
then its segmentMap entry has no ``mask``); tasks.json always matches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import labelport

from ._common import GzipOptions, class_entries, classes, instance_entry, labelled, replace_masks


@dataclass(frozen=True)
class Options(GzipOptions):
    #: one file per "instance" or per "class"
    per: Literal["instance", "class"] = "instance"
    #: an instance (or class) without voxels: "write" an all-zero mask, or "skip" it
    empty: Literal["write", "skip"] = "write"


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    import numpy as np

    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        views = labelport.views(series)
        groups = ({n: [n] for n in views.instance_ids} if opts.per == "instance"
                  else {c: [s.instance_id for s in segs] for c, segs in classes(series).items()})
        stem = "instance-{}" if opts.per == "instance" else "category-{}"
        offset = 0 if opts.per == "instance" else 1  # files are named by classId + 1
        buffer = np.zeros(views.array.shape, dtype=np.uint8, order="F")  # reused: only crops are touched
        masks: dict[int, str] = {}
        for key, instance_ids in groups.items():
            parts = [m for m in (views.instance_mask(n) for n in instance_ids) if m is not None]
            if not parts and opts.empty == "skip":
                continue
            for box, mask in parts:
                buffer[box][mask] = 1
            path = f"{ctx.series_dir(series)}/{stem.format(key + offset)}.nii.gz"
            masks[key] = ctx.write_nifti(path, buffer, like=label_map, compresslevel=opts.compresslevel,
                                         zero_runs=label_map.zero_runs)  # (a mask is zero wherever the map is)
            for box, _ in parts:
                buffer[box] = 0
        if opts.per == "instance":
            seg_map = {str(n): instance_entry(s, masks.get(n)) for n, s in sorted(series.segments.items())}
        else:
            seg_map = class_entries(series, masks)
        replace_masks(record, list(masks.values()), seg_map, binaryMask=True)
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="binary-mask",
        description="one 0/1 NIfTI per instance (or per class), overlaps included in each",
        write=write,
        options=Options,
    )]
