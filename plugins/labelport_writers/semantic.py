"""``semantic-nifti``: one class map per series, voxels = class id + 1.

A voxel covered by instances of different classes goes to the lowest class id (RedBrick's rule), the highest
with ``--opt semantic-nifti.overlap=highest``, or fails the task with ``overlap=error``. The segmentMap has one
entry per class, keyed ``classId + 1``, keeping the first instance's id and attributes; a class whose
instances have no voxels keeps its entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import labelport

from ._common import GzipOptions, class_entries, labelled, replace_masks


@dataclass(frozen=True)
class Options(GzipOptions):
    #: which class an overlap voxel gets: "lowest", "highest", or "error" to refuse mixed-class overlaps
    overlap: labelport.OverlapRule = "lowest"


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        semantic = labelport.views(series).semantic(opts.overlap)
        # (background stays 0: the class map is zero wherever the instance map is)
        path = ctx.write_nifti(ctx.series_path(series, ".nii.gz"), semantic, like=label_map,
                               compresslevel=opts.compresslevel, zero_runs=label_map.zero_runs)
        replace_masks(record, path, class_entries(series, path), semanticMask=True)
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="semantic-nifti",
        description="class maps as NIfTI (voxel = class id + 1, overlaps by a stated rule)",
        write=write,
        options=Options,
    )]
