"""``mhd``: instance label maps as MetaImage, ``segmentations/<task>/<series>.mhd`` + ``.zraw`` (zlib).

Voxel values are those of the ``nifti`` writer (instance ids, overlap group ids kept); the geometry is the
label map's, written in ITK's LPS convention, so ITK, SimpleITK and 3D Slicer place every voxel where the
NIfTI puts it. The header is written as ITK writes it and the voxels as one zlib stream
(:func:`labelport.zlib_stream`, which does not deflate the map's empty blocks again), straight from the label
array: no copy into an ITK image.
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


_ELEMENT_TYPES = {"uint8": "MET_UCHAR", "int8": "MET_CHAR", "uint16": "MET_USHORT", "int16": "MET_SHORT",
                  "uint32": "MET_UINT", "int32": "MET_INT", "uint64": "MET_ULONG_LONG", "int64": "MET_LONG_LONG"}


def _numbers(values: Any) -> str:
    return " ".join(format(float(v), ".17g") if float(v) != int(v) else str(int(v)) for v in values)


def mhd_header(shape: tuple[int, ...], dtype: Any, affine: np.ndarray, data_file: str,
               compressed_size: int | None) -> str:
    """A MetaImage header as ITK writes it (``compressed_size`` None: raw data)."""
    import numpy as np

    spacing, origin, direction = itk_geometry(affine)
    matrix = np.array(direction).reshape(3, 3)
    if not np.allclose(matrix.T @ matrix, np.eye(3), atol=1e-4):
        raise ValueError("the voxel axes are not orthogonal")
    letters = (("R", "L"), ("A", "P"), ("I", "S"))  # ITK: the side each axis runs from
    orientation = ""
    for axis in matrix.T:  # the direction of voxel axis i, j, k
        nearest = int(np.argmax(np.abs(axis)))
        orientation += letters[nearest][0 if axis[nearest] > 0 else 1]
    lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
             f"CompressedData = {compressed_size is not None}"]
    if compressed_size is not None:
        lines.append(f"CompressedDataSize = {compressed_size}")
    lines += [f"TransformMatrix = {_numbers(matrix.T.flatten())}", f"Offset = {_numbers(origin)}",
              "CenterOfRotation = 0 0 0", f"AnatomicalOrientation = {orientation}",
              f"ElementSpacing = {_numbers(spacing)}", f"DimSize = {' '.join(map(str, shape))}",
              f"ElementType = {_ELEMENT_TYPES[np.dtype(dtype).name]}", f"ElementDataFile = {data_file}"]
    return "\n".join(lines) + "\n"


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    import numpy as np

    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        array = label_map.array
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        voxels = memoryview(np.asfortranarray(little).T).cast("B")  # i fastest, as MetaImage stores it
        size = array.itemsize
        data = labelport.zlib_stream(voxels, [(a * size, b * size) for a, b in label_map.zero_runs]) \
            if opts.compress else voxels
        paths = [ctx.series_path(series, ".mhd"), ctx.series_path(series, ".zraw" if opts.compress else ".raw")]
        try:
            header = mhd_header(array.shape, array.dtype, label_map.affine, paths[1].rsplit("/", 1)[-1],
                                len(data) if opts.compress else None)
        except ValueError as exc:
            raise labelport.WriterError(f"grid cannot be written as MetaImage ({exc})", series=series.name) from None
        with ctx.create_many(paths) as (header_path, data_path):
            with open(data_path, "wb") as f:
                f.write(data)
            with open(header_path, "w", encoding="ascii", newline="\n") as f:
                f.write(header)
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
