"""``nifti``: RedBrick's default layout, one instance label map per series.

``segmentations/<task>/<series>.nii.gz`` holds the instance ids and overlap group ids exactly as stored, with
the source geometry and header; tasks.json keeps every field, with paths relative to the output root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import labelport

from ._common import GzipOptions, labelled, replace_masks, with_mask


@dataclass(frozen=True)
class Options(GzipOptions):
    #: ``.nii`` writes uncompressed files
    extension: Literal[".nii.gz", ".nii"] = ".nii.gz"


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        path = ctx.series_path(series, opts.extension)
        ctx.write_nifti(path, label_map.array, like=label_map, compresslevel=opts.compresslevel,
                        zero_runs=label_map.zero_runs)
        replace_masks(record, path, with_mask(record, path))
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="nifti",
        description="instance label maps as NIfTI (RedBrick layout, overlap groups kept)",
        write=write,
        options=Options,
    )]
