"""Reading and writing NIfTI label maps: integer dtypes kept, any vox_offset and header extension honoured,
gzip through ISA-L (several times faster than zlib at a smaller size)."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import isal.igzip
import isal.isal_zlib
import nibabel as nib
import numpy as np

from .errors import SourceError
from .model import LabelVolume, block_starts, slice_rows

__all__ = ["DEFAULT_LABEL_MEMORY", "read_label_nifti", "write_nifti"]

_GZIP_MAGIC = b"\x1f\x8b"


# read in pieces: one allocation of the final size, no growing buffer; each piece small enough to stay in the CPU
# cache on its way from the inflater into the array (at 4 MiB, reading 105 MB took about 10 ms longer)
_CHUNK = 512 << 10


class _Stream(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def readinto(self, buffer: Any, /) -> int: ...


# ISA-L's gzip reader itself (what IGzipFile wraps in a BufferedReader): it inflates straight into the buffer
# it is given, where IGzipFile.readinto inflates into a bytes object and copies that (about 6 ms of a 105 MB map)
_GZIP_READER = getattr(isal.isal_zlib, "_GzipReader", None)


@contextlib.contextmanager
def _open(path: str) -> Iterator[_Stream]:
    """The file's bytes, inflated when it is gzipped (every member, checksums verified at each member's end);
    the file is closed on leaving (a gzip reader given a file object does not close it)."""
    with open(path, "rb") as raw:
        if raw.read(2) != _GZIP_MAGIC:
            raw.seek(0)
            yield raw
            return
        raw.seek(0)
        if _GZIP_READER is not None:
            yield _GZIP_READER(raw)
            return
        with isal.igzip.IGzipFile(fileobj=raw, mode="rb") as stream:  # (an ISA-L without it)
            yield stream


def _read_up_to(stream: _Stream, size: int) -> bytes:
    """``size`` bytes, or fewer at the end of the data (a reader may hand over less than asked for)."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _header_class(buf: bytes, path: str) -> type[nib.Nifti1Header]:
    if len(buf) >= 4:
        for order in "<>":
            size = struct.unpack(order + "i", buf[:4])[0]
            if size == 348:
                return nib.Nifti1Header
            if size == 540:
                return nib.Nifti2Header
    raise SourceError("not a NIfTI file (no NIfTI-1 or NIfTI-2 header)", file=path)


def _as_integer_labels(data: np.ndarray, path: str) -> np.ndarray:
    """Float or scaled label maps are accepted when every value is a whole number; they become integers."""
    if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
        raise SourceError("label map holds non-integer values", file=path)
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    for dtype in (np.uint8, np.uint16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return data.astype(dtype)
    raise SourceError("label values out of range for a 64-bit integer", file=path)


#: the most memory one task's label maps may take, unless the export says otherwise
DEFAULT_LABEL_MEMORY = 4 << 30
_TRAILING = 1 << 16  # bytes a file may hold after its voxels (padding) before it counts as lying about its size


def read_label_nifti(path: str, expected_shape: tuple[int, ...] | None = None,
                     limit: int | None = DEFAULT_LABEL_MEMORY) -> LabelVolume:
    """Read a ``.nii`` or ``.nii.gz`` label map into a read-only integer array in voxel order (i, j, k).

    The voxel data starts at the header's ``vox_offset``, after any header extensions. 2D maps become
    (i, j, 1); trailing singleton dimensions beyond the third are dropped. Gzip data is decompressed in
    pieces straight into the array (ISA-L), and its checksum is verified. The largest value of each block of
    each k slice, and of each slice, are taken from the pieces as they arrive (``LabelVolume.block_peaks`` and
    ``LabelVolume.peaks``: the label check and the non-zero extent use them, writers that compress the voxels
    skip the empty blocks).

    Nothing is allocated before the header is checked: against ``expected_shape`` (the image grid, when
    known) and against ``limit`` bytes. A file holding more data than its header declares is refused, without
    reading the rest; so is a map whose affine is not finite or not invertible.
    """
    try:
        with _open(path) as stream:
            return _read(stream, path, expected_shape, limit)
    except SourceError:
        raise
    except PermissionError:
        raise SourceError("cannot read label map: permission denied", file=path) from None
    except FileNotFoundError:
        raise SourceError("label map file not found", file=path) from None
    except MemoryError:
        raise SourceError("not enough memory to read the label map", file=path) from None
    except (EOFError, OSError, zlib.error, isal.isal_zlib.error, ValueError) as exc:  # type: ignore[misc]
        reason = getattr(exc, "strerror", None) or exc
        raise SourceError(f"cannot read label map: corrupt or truncated data ({reason})", file=path) from None


def _grid(shape: tuple[int, ...]) -> tuple[int, ...]:
    out = list(shape)
    while len(out) > 2 and out[-1] == 1:
        out.pop()
    return tuple(out)


def _read(stream: _Stream, path: str, expected: tuple[int, ...] | None, limit: int | None) -> LabelVolume:
    head = _read_up_to(stream, 540)
    header_class = _header_class(head, path)
    size = 348 if header_class is nib.Nifti1Header else 540
    try:
        probe = header_class.from_fileobj(io.BytesIO(head[:size] + b"\0" * 4), check=False)
        offset = max(int(probe["vox_offset"]), size + 4)  # 0 in some single-file writers means "right after"
        prefix = head + (_read_up_to(stream, offset - len(head)) if offset > len(head) else b"")
        header = header_class.from_fileobj(io.BytesIO(prefix))
    except SourceError:
        raise
    except Exception as exc:  # nibabel raises several types for a damaged header
        raise SourceError(f"unreadable NIfTI header ({exc})", file=path) from None
    shape = tuple(int(n) for n in header.get_data_shape())
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 3:
        raise SourceError(f"label map has {len(shape)} dimensions {shape}; expected 3", file=path)
    shape = shape + (1,) * (3 - len(shape))
    dtype = header.get_data_dtype()
    if expected is not None and _grid(shape) != _grid(expected):
        raise SourceError(f"label map is {'x'.join(map(str, _grid(shape)))} but the image series is "
                          f"{'x'.join(map(str, _grid(expected)))} (imageHeaders.dimensions)", file=path)
    needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if limit is not None and needed > limit:
        raise SourceError(f"label map would take {needed / 2**30:.1f} GiB ({'x'.join(map(str, shape))} {dtype.name}); "
                          f"the limit is {limit / 2**30:.1f} GiB per task (--max-label-memory)", file=path)
    affine = header.get_best_affine()
    if not np.all(np.isfinite(affine)) or abs(float(np.linalg.det(affine[:3, :3]))) < 1e-12:
        raise SourceError("label map has no usable geometry: its affine is not finite or not invertible "
                          f"({np.round(affine, 4).tolist()})", file=path)
    data = np.empty(int(np.prod(shape)), dtype=dtype)
    view = memoryview(data.view(np.uint8))  # type: ignore[arg-type]
    view[: max(0, len(prefix) - offset)] = prefix[offset: offset + len(view)]  # voxels already read with the header
    filled = max(0, min(len(view), len(prefix) - offset))
    # the largest value of each block of each k slice (see labelport.model.block_peaks), taken from every piece
    # while it is in the CPU cache (the pieces are whole slices), and from them each slice's
    plane = shape[0] * shape[1] * dtype.itemsize
    step = max(plane, _CHUNK // plane * plane) if plane else _CHUNK
    rows = slice_rows(data.reshape(shape, order="F"))  # (None for a map stored big-endian: it is converted)
    starts = block_starts(rows) if rows is not None else np.zeros(0, np.intp)
    blocks: np.ndarray | None = np.empty((shape[2], len(starts)), rows.dtype) if rows is not None else None
    peaks: np.ndarray | None = np.empty(shape[2], rows.dtype) if rows is not None else None
    done = 0
    while filled < len(view) or (rows is not None and done < shape[2]):
        if filled < len(view):
            got = stream.readinto(view[filled: filled + step])
            if not got:
                raise SourceError(f"label map is truncated: {shape} {dtype.name} needs {offset + len(view)} bytes "
                                  f"of NIfTI data, the file holds {offset + filled}", file=path)
            filled += got
        if rows is not None and blocks is not None and peaks is not None and filled // plane > done:
            # (a map read whole with its header has them all at once)
            np.maximum.reduceat(rows[done: filled // plane], starts, axis=1, out=blocks[done: filled // plane])
            blocks[done: filled // plane].max(axis=1, out=peaks[done: filled // plane])
            done = filled // plane
    if len(_read_up_to(stream, _TRAILING + 1)) > _TRAILING:  # reaching the end also verifies the gzip checksum
        raise SourceError(f"label map holds more data than its header declares ({'x'.join(map(str, shape))} "
                          f"{dtype.name})", file=path)
    data = data.reshape(shape, order="F")
    if not dtype.isnative:
        data = data.astype(dtype.newbyteorder("="))
    slope, inter = header.get_slope_inter()
    if (slope is not None and slope != 1) or (inter is not None and inter != 0):
        # (the peaks describe the voxels as stored: the scaled array has its own)
        data = _as_integer_labels(data * (1.0 if slope is None else slope) + (inter or 0.0), path)
        blocks = peaks = None
    elif data.dtype.kind == "f":
        data = _as_integer_labels(data, path)
    elif data.dtype.kind not in "iu":
        raise SourceError(f"label map has data type {data.dtype}; expected integers", file=path)
    data.flags.writeable = False
    return LabelVolume(array=data, affine=affine, header=header, peaks=peaks, block_peaks=blocks)


class _HeaderOnly(io.RawIOBase):
    """A file for nibabel to write an image with ``header`` into that keeps what comes before the voxels (the
    header, its extensions and the padding up to ``vox_offset``), then stops it (:class:`_Voxels`)."""

    def __init__(self, header: Any) -> None:
        super().__init__()
        self.data = bytearray()
        self.offset: int | None = None
        self._layout = header.template_dtype.newbyteorder(header.endianness)  # (the header as written)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return len(self.data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or offset < len(self.data):
            raise OSError("only forward seeks")
        if offset > len(self.data):  # (nibabel seeks to vox_offset: the padding is zeros)
            self.write(bytes(offset - len(self.data)))
        return len(self.data)

    def write(self, data: Any) -> int:
        self.data += data
        size = self._layout.itemsize
        if self.offset is None and len(self.data) >= size:  # (the header is written: where do the voxels start?)
            self.offset = int(np.frombuffer(bytes(self.data[:size]), self._layout)["vox_offset"][0])
        if self.offset is not None and len(self.data) >= self.offset:
            del self.data[self.offset:]
            raise _Voxels
        return len(data)


class _Voxels(Exception):
    """nibabel has written what comes before the voxels (see :class:`_HeaderOnly`)."""


def write_nifti(
    path: str, array: np.ndarray, *, affine: np.ndarray | None = None, header: Any = None,
    compresslevel: int = 1, gzip: bool | None = None, zero_runs: Iterable[tuple[int, int]] | None = None,
) -> None:
    """Write ``array`` as NIfTI at ``path``, gzipped through ISA-L when ``gzip`` is true (by default when
    ``path`` ends with ``.gz``).

    With ``header`` (from the source label map) its geometry, codes, units and extensions are kept; the data
    type becomes the array's. Output bytes depend only on the inputs (the gzip header carries no time or name).
    ``zero_runs``: ranges of voxels, counted in storage order (i fastest), that hold only zeros, such as
    :attr:`labelport.LabelMap.zero_runs` for the map itself or for an array that is zero wherever the map is:
    an integer array is then gzipped without deflating them (:func:`labelport.gzip_stream`); the file reads
    back the same (nibabel still writes everything before the voxels).
    """
    if header is not None:
        image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        header = header.copy()
        img = image_class(array, affine, header=header)
    else:
        if affine is None:
            raise ValueError("write_nifti needs an affine or a header")
        img = nib.Nifti1Image(array, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        img.header.set_xyzt_units("mm")
    img.set_data_dtype(array.dtype)
    gzipped = path.endswith(".gz") if gzip is None else gzip
    # (the voxels are written as they are in memory: nibabel would swap them for a header of the other order)
    if gzipped and zero_runs is not None and array.dtype.kind in "iu" and array.dtype.isnative \
            and img.header.endianness == _NATIVE and _write_gzip_skipping(path, img, array, zero_runs, compresslevel):
        return
    with open(path, "wb") as raw:
        if gzipped:
            with isal.igzip.IGzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
            ) as gz:
                img.to_file_map({"image": nib.FileHolder(fileobj=gz)})
        else:
            img.to_file_map({"image": nib.FileHolder(fileobj=raw)})


_NATIVE = "<" if np.little_endian else ">"


def _write_gzip_skipping(path: str, img: Any, array: np.ndarray, zero_runs: Iterable[tuple[int, int]],
                         compresslevel: int) -> bool:
    """Write the image gzipped, its voxels without deflating ``zero_runs`` again; False (nothing written) when
    nibabel did not write the header before the voxels as expected."""
    from .deflate import gzip_stream

    head = _HeaderOnly(img.header)
    with contextlib.suppress(_Voxels):
        img.to_file_map({"image": nib.FileHolder(fileobj=head)})
    if head.offset is None or len(head.data) != head.offset:
        return False
    voxels = memoryview(np.asfortranarray(array).T).cast("B")  # (i fastest, as NIfTI stores it)
    size = array.itemsize
    parts = gzip_stream([(memoryview(bytes(head.data)), ()), (voxels, [(a * size, b * size) for a, b in zero_runs])],
                        level=compresslevel)
    with open(path, "wb") as f:
        f.writelines(parts)
    return True
