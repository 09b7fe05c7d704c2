"""Streams deflated in pieces without deflating known zeros (labelport.deflate), the zero runs a label map
offers (LabelMap.zero_runs) and NIfTI files gzipped with them: read back by zlib, gzip (which check the
stream's structure and its checksum) and nibabel, against the data and against nibabel's own writing."""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import labelport
from labelport.model import PEAK_BLOCK


def _own_zero_runs(data: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Random parts of the data's own runs of zeros (short and long, first and last)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[1], data, [1]]) == 0))
    return [(int(s), int(s + (e - s) * rng.random())) for s, e in zip(edges[::2], edges[1::2]) if rng.random() < 0.8]


@pytest.mark.parametrize("size", [0, 1, (8 << 20) - 1, (8 << 20) + 1, (64 << 20) + 3])
def test_a_zlib_stream_deflated_in_pieces_is_one_valid_stream(size: int) -> None:
    """Pieces deflated on threads and joined (with the Adler-32 combined from theirs) read back with zlib, byte
    for byte, whatever side of a piece's end data lies."""
    data = bytearray(size)
    for at in np.random.default_rng(size).integers(0, max(size, 1), 64 if size else 0):
        data[int(at)] = int(at) % 251 + 1
    stream = labelport.zlib_stream(memoryview(bytes(data)))
    assert zlib.decompress(stream) == data
    assert stream[-4:] == zlib.adler32(data).to_bytes(4, "big")


@pytest.mark.parametrize("seed", range(8))
def test_a_zlib_stream_made_partly_from_deflated_zeros_is_the_data(seed: int) -> None:
    """Runs known to be zero (across an 8 MiB piece's end too), made from zeros deflated once: zlib reads back
    the data and checks the Adler-32 combined over them, at every level."""
    rng = np.random.default_rng(seed)
    data = np.zeros(int(rng.choice([1, 5000, 3 << 20, (40 << 20) + 7])), np.uint8)
    data[rng.integers(0, data.size, int(rng.integers(1, 40)))] = rng.integers(1, 256, 1)
    stream = labelport.zlib_stream(memoryview(data), _own_zero_runs(data, rng), level=seed % 4)
    assert zlib.decompress(stream) == data.tobytes()
    assert stream[-4:] == zlib.adler32(data.tobytes()).to_bytes(4, "big")
    with pytest.raises(ValueError, match="sorted"):
        labelport.zlib_stream(memoryview(data), [(0, data.size + 1)])


@pytest.mark.parametrize("seed", range(8))
def test_a_gzip_stream_of_parts_with_zero_runs_is_their_bytes(seed: int) -> None:
    """Parts joined (some empty, some with runs of zeros of up to 9 MiB), at every level: Python's gzip reads
    back the bytes and checks the CRC-32 combined over pieces and zero runs, and the length."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        data = np.zeros(int(rng.choice([0, 7, 100_000, 9 << 20])), np.uint8)
        data[rng.integers(0, max(data.size, 1), int(rng.integers(0, 30)) if data.size else 0)] = 3
        parts.append((data, _own_zero_runs(data, rng)))
    level = seed % 4
    blob = b"".join(labelport.gzip_stream([(memoryview(d), runs) for d, runs in parts], level=level))
    assert gzip.decompress(blob) == b"".join(d.tobytes() for d, _ in parts)
    assert blob[8:9] == (b"\x04" if level == 0 else b"\x00")


@pytest.mark.parametrize("dtype,order", [("uint16", "F"), (">i4", "C")])  # (peaks from the read, or a pass)
def test_zero_runs_of_small_slices_are_the_empty_slices_of_a_label_map(dtype: str, order: str) -> None:
    array = np.zeros((7, 5, 300), dtype, order=order)  # type: ignore[call-overload]
    array[2, 1, 3] = array[6, 3, 4] = array[0, 2, 250] = -9 if dtype[-2] == "i" else 9
    plane = 7 * 5

    def zero_runs(array: np.ndarray) -> list[tuple[int, int]]:
        return labelport.LabelMap("x", lambda _: labelport.LabelVolume(array, np.eye(4), None)).zero_runs

    assert zero_runs(array) == [(0, 3 * plane), (5 * plane, 250 * plane), (251 * plane, 300 * plane)]
    flat = np.asfortranarray(array).T.ravel()
    assert not any(flat[start:end].any() for start, end in zero_runs(array))
    array[:, :, 299] = 1
    assert zero_runs(array)[-1] == (251 * plane, 299 * plane)
    assert zero_runs(array * 0) == [(0, flat.size)]
    assert zero_runs(array[:, :, :0]) == []


@pytest.mark.parametrize("seed", range(6))
def test_zero_runs_noted_while_reading_are_the_empty_blocks_of_each_slice(tmp_path: Path, seed: int) -> None:
    """Slices larger than a block (16 KiB), a last block cut short, voxels in the first and last block of a
    slice, whole empty slices: the runs read back from a NIfTI file are exactly the maximal runs of empty
    blocks, against the array's voxels; and a map whose peaks were not noted has the empty slices as runs."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(str(rng.choice(["uint8", "uint16", "int16", "int32"])))
    shape = (int(rng.integers(60, 140)), int(rng.integers(60, 140)), int(rng.integers(1, 7)))
    array = np.zeros(shape, dtype, order="F")
    for _ in range(int(rng.integers(0, 12))):
        array[tuple(int(rng.integers(0, n)) for n in shape)] = -3 if dtype.kind == "i" else 7
    array[-1, -1, 0] = 5  # the last voxel of a slice
    path = str(tmp_path / "m.nii.gz")
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    label_map = labelport.LabelMap(path, labelport.read_label_nifti)
    assert np.array_equal(label_map.array, array) and label_map.load().block_peaks is not None
    plane, block = shape[0] * shape[1], PEAK_BLOCK // dtype.itemsize
    flat = array.T.ravel()
    empty = [not flat[k * plane + at: k * plane + min(at + block, plane)].any()
             for k in range(shape[2]) for at in range(0, plane, block)]
    starts = [k * plane + at for k in range(shape[2]) for at in range(0, plane, block)] + [flat.size]
    expected, run = [], None
    for n, is_empty in enumerate([*empty, False]):
        if is_empty and run is None:
            run = starts[n]
        elif not is_empty and run is not None:
            expected.append((run, starts[n]))
            run = None
    assert label_map.zero_runs == expected
    voxels = memoryview(array.T).cast("B")
    size = dtype.itemsize
    assert zlib.decompress(labelport.zlib_stream(voxels, [(a * size, b * size) for a, b in expected])) \
        == voxels.tobytes()
    plain = labelport.LabelMap("x", lambda _: labelport.LabelVolume(array, np.eye(4), None))
    occupied = [bool(array[:, :, k].any()) for k in range(shape[2])]
    assert all(start % plane == 0 == end % plane for start, end in plain.zero_runs)
    assert sum(end - start for start, end in plain.zero_runs) == plane * occupied.count(False)


@pytest.mark.parametrize("seed", range(10))
def test_a_nifti_gzipped_without_its_zero_runs_is_the_one_nibabel_writes(tmp_path: Path, seed: int) -> None:
    """write_nifti with a label map's zero runs against write_nifti without them (nibabel writing through
    ISA-L's gzip file): the same NIfTI bytes once inflated, header, extensions and padding included, for
    NIfTI-1 and NIfTI-2, a header extension, big-endian sources, a scaled source, signed and unsigned types,
    every level; and nibabel reads back the array and the affine."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(str(rng.choice(["uint8", "uint16", "int16", "int32", "uint32"])))
    shape = (int(rng.integers(60, 300)), int(rng.integers(60, 300)), int(rng.integers(1, 9)))
    array = np.zeros(shape, dtype, order="F")
    for _ in range(int(rng.integers(0, 5))):
        at = [int(rng.integers(0, n)) for n in shape]
        array[at[0]: at[0] + 20, at[1]: at[1] + 9, at[2]] = int(rng.integers(1, 100))
    affine = np.diag([0.7, 0.8, 2.5, 1.0])
    affine[:3, 3] = [-90.0, 12.5, 40.0]
    image_class = nib.Nifti2Image if seed % 3 == 2 else nib.Nifti1Image
    source = image_class(array.astype(dtype.newbyteorder(">")) if seed % 4 == 3 else array, affine)
    if seed % 2:
        source.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment of some length"))
    nib.save(source, str(tmp_path / "source.nii.gz"))
    if seed == 4:  # a scaled source: read as whole numbers, with a header that keeps the scaling
        head = nib.load(str(tmp_path / "source.nii.gz")).header.copy()
        head["scl_slope"], head["scl_inter"] = 2.0, 0.0
        stored = gzip.decompress((tmp_path / "source.nii.gz").read_bytes())
        (tmp_path / "source.nii.gz").write_bytes(gzip.compress(head.binaryblock + stored[348:]))
        array = array * 2
    label_map = labelport.LabelMap(str(tmp_path / "source.nii.gz"), labelport.read_label_nifti)
    assert (label_map.header.get_slope_inter()[0] == 2.0) == (seed == 4)
    level = seed % 4
    labelport.write_nifti(str(tmp_path / "runs.nii.gz"), label_map.array, header=label_map.header,
                          compresslevel=level, zero_runs=label_map.zero_runs)
    labelport.write_nifti(str(tmp_path / "whole.nii.gz"), label_map.array, header=label_map.header,
                          compresslevel=level)
    ours, theirs = (gzip.decompress((tmp_path / name).read_bytes()) for name in ("runs.nii.gz", "whole.nii.gz"))
    assert ours == theirs
    if label_map.header.endianness == ("<" if sys.byteorder == "little" else ">"):  # (else nibabel writes it all)
        # the voxels were not deflated by nibabel: the file is gzip_stream's, zero runs made from deflated zeros
        offset, size = len(theirs) - label_map.array.nbytes, label_map.array.itemsize  # (the voxels end the file)
        expected = labelport.gzip_stream([(memoryview(theirs[:offset]), ()), (memoryview(theirs[offset:]),
                                          [(a * size, b * size) for a, b in label_map.zero_runs])], level=level)
        assert (tmp_path / "runs.nii.gz").read_bytes() == b"".join(expected)
    back = nib.load(str(tmp_path / "runs.nii.gz"))
    assert np.array_equal(np.asanyarray(back.dataobj), array) and np.allclose(back.affine, affine)
    assert isinstance(back, image_class)
