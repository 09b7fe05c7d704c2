"""``mhd``: instance label maps as MetaImage, ``segmentations/<task>/<series>.mhd`` + ``.zraw`` (zlib).

Voxel values are those of the ``nifti`` writer (instance ids, overlap group ids kept); the geometry is the
label map's, written in ITK's LPS convention, so ITK, SimpleITK and 3D Slicer place every voxel where the
NIfTI puts it. The header is written as ITK writes it and the voxels as one zlib stream (ISA-L), straight from
the label array: no copy into an ITK image.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
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


_PIECE = 8 << 20  # bytes deflated at a time on a thread (see zlib_stream)
_ZERO_RUN = 64 << 10  # zeros known as such are not deflated again from this many bytes on (see zlib_stream)
_UNIT = 1 << 20  # zeros are deflated this many bytes at a time, once per process (see _zeros)
_ADLER_BASE = 65521
_LAST_BLOCK = b"\x03\x00"  # an empty final deflate block (fixed codes), after pieces that end on a full flush


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two pieces of data joined, from theirs (zlib's adler32_combine)."""
    rem = second_length % _ADLER_BASE
    low = ((first & 0xFFFF) + (second & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    high = ((first >> 16) + (second >> 16) + rem * (first & 0xFFFF) + _ADLER_BASE - rem) % _ADLER_BASE
    return low | high << 16


def _deflate_piece(piece: memoryview) -> tuple[bytes, int]:
    """A piece of data as raw deflate blocks ending on a full flush, and its Adler-32."""
    from isal import isal_zlib

    raw = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)
    return raw.compress(piece) + raw.flush(isal_zlib.Z_FULL_FLUSH), isal_zlib.adler32(piece)


@functools.cache
def _zeros_deflated(length: int) -> bytes:  # (called with powers of two up to _UNIT: 21 of them at most)
    return _deflate_piece(memoryview(bytes(length)))[0]


def _zeros(length: int) -> tuple[bytes, int]:
    """``length`` zero bytes as deflate blocks ending on a full flush: the deflated 1 MiB repeated, then the
    deflated powers of two that make up the rest (each deflated once per process, so runs of any length cost
    nothing more); and their Adler-32 (the sum of the bytes stays 1: the second sum grows by 1 per byte)."""
    whole, rest = divmod(length, _UNIT)
    parts = [_zeros_deflated(_UNIT) * whole]
    parts += [_zeros_deflated(1 << bit) for bit in range(rest.bit_length()) if rest >> bit & 1]
    return b"".join(parts), 1 | length % _ADLER_BASE << 16


def _pieces(size: int, zeros: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """``(start, end, zero)``: the runs of ``zeros`` of at least :data:`_ZERO_RUN` bytes, and pieces of at most
    :data:`_PIECE` bytes of the data between them."""
    pieces: list[tuple[int, int, bool]] = []
    at = last = 0
    for start, end in [*zeros, (size, size)]:
        if not last <= start <= end <= size:
            raise ValueError(f"zero runs must be sorted, apart and within the data: {start}, {end}")
        last = end
        if end - start < _ZERO_RUN and end < size:
            continue
        pieces += [(a, min(a + _PIECE, start), False) for a in range(at, start, _PIECE)]
        if end > start:
            pieces.append((start, end, True))
        at = end
    return pieces


def zlib_stream(data: memoryview, zeros: Iterable[tuple[int, int]] = ()) -> bytes:
    """``data`` as one zlib stream (level 1, ISA-L). ``zeros``: byte ranges ``(start, end)``, in order, that
    are known to hold only zeros; runs of 64 KiB or more are made from zeros deflated once per process instead
    of being deflated (most of most label maps is empty). The rest is deflated in pieces of 8 MiB on as many
    threads as there are CPUs (ISA-L lets go of the GIL; pieces this small share the work out evenly). Every
    piece ends on a full flush, so the raw pieces join into one deflate stream, closed by an empty final block;
    the Adler-32 of the whole is combined from theirs. The bytes depend on the data and ``zeros`` alone, not on
    the number of CPUs."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    pieces = _pieces(len(data), zeros)
    full = [data[start:end] for start, end, zero in pieces if not zero]
    # (threads only for more than one piece's worth: starting them costs more than deflating a few MB)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    threads = min(len(full), cpus) if sum(map(len, full)) > _PIECE else 1
    deflated: Iterator[tuple[bytes, int]]
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            deflated = iter(list(pool.map(_deflate_piece, full)))
    else:
        deflated = map(_deflate_piece, full)
    parts, adler = [b"\x78\x01"], 1
    for start, end, zero in pieces:
        out, piece_adler = _zeros(end - start) if zero else next(deflated)
        parts.append(out)
        adler = _adler32_combine(adler, piece_adler, end - start)
    return b"".join([*parts, _LAST_BLOCK, adler.to_bytes(4, "big")])


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    import numpy as np

    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        array = label_map.array
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        voxels = memoryview(np.asfortranarray(little).T).cast("B")  # i fastest, as MetaImage stores it
        data = zlib_stream(voxels, label_map.zero_runs) if opts.compress else voxels
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
