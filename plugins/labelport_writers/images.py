"""``images-nifti``: each series' image as NIfTI next to its label map, aligned voxel for voxel.

``images/<task>/<series>.nii.gz`` holds the image on the label map's grid (same shape, same affine), and
``segmentations/<task>/<series>.nii.gz`` the label map as the ``nifti`` writer writes it; the series' ``items``
in tasks.json names the image file. DICOM series are decoded (JPEG 2000 and other compressed syntaxes
included) with their rescale applied. A label map on another grid than its images fails the task with both
grids in the message, unless ``resample=true`` puts the labels on the image grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import labelport

from ._common import GzipOptions, labelled, replace_masks, with_mask


@dataclass(frozen=True)
class Options(GzipOptions):
    #: put the labels on the image grid (nearest neighbour) when the two grids differ
    resample: bool = False


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        volumes = labelport.load_aligned(series, resample=opts.resample)
        image = ctx.write_nifti(ctx.series_path(series, ".nii.gz", top="images"), volumes.image,
                                affine=volumes.affine, compresslevel=opts.compresslevel)
        labels = ctx.write_nifti(ctx.series_path(series, ".nii.gz"), volumes.labels, affine=volumes.affine,
                                 like=None if opts.resample else label_map, compresslevel=opts.compresslevel)
        record["items"] = image
        replace_masks(record, labels, with_mask(record, labels))
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="images-nifti",
        description="each series' image as NIfTI aligned voxel for voxel with its label map (and the label map)",
        write=write,
        options=Options,
        needs_images=True,
    )]
