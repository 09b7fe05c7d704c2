"""``mhd``: instance label maps as MetaImage, ``segmentations/<task>/<series>.mhd`` + ``.zraw`` (zlib).

Voxel values are those of the ``nifti`` writer (instance ids, overlap group ids kept); the geometry is the
label map's, written in ITK's LPS convention, so ITK, SimpleITK and 3D Slicer place every voxel where the
NIfTI puts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import labelport

from ._common import labelled, replace_masks, with_mask

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Options:
    #: zlib-compress the voxel data (.zraw); false writes uncompressed .raw
    compress: bool = True


def itk_geometry(affine: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    """(spacing, origin, direction) in ITK's LPS convention from a RAS+ NIfTI affine."""
    import numpy as np

    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    return spacing.tolist(), lps[:3, 3].tolist(), direction.flatten().tolist()


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    import SimpleITK as sitk

    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        image = sitk.GetImageFromArray(label_map.array.T)  # (k, j, i) is ITK's (z, y, x)
        spacing, origin, direction = itk_geometry(label_map.affine)
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        try:
            image.SetDirection(direction)
        except RuntimeError as exc:
            raise labelport.WriterError(f"grid cannot be written as MetaImage (not orthogonal): {exc}",
                                        series=series.name) from None
        paths = [ctx.series_path(series, ".mhd"), ctx.series_path(series, ".zraw" if opts.compress else ".raw")]
        with ctx.create_many(paths) as (header, _data):
            sitk.WriteImage(image, header, useCompression=opts.compress)
        replace_masks(record, paths, with_mask(record, paths[0]))
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="mhd",
        description="instance label maps as MetaImage .mhd + .zraw (overlap groups kept)",
        write=write,
        options=Options,
    )]
