"""DICOM image series from their headers (pixel data is never decoded), and how a label grid lines up with them.

Geometry follows PS3.3 C.7.6.2: voxel (i, j, k) is column i, row j of the k-th image sorted by position along
the slice normal; ``PixelSpacing`` is [row spacing, column spacing], so the spacing between columns (along
the row direction) is its second value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SourceError

__all__ = [
    "Alignment", "DicomImage", "DicomSeries", "align_grids", "align_to_series", "describe_grid", "read_dicom_series",
]

_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class DicomImage:
    """One image file: where it is, its identity and its position (LPS mm)."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    position: np.ndarray


@dataclass(frozen=True)
class DicomSeries:
    """A single-frame image series sorted by position along its normal."""

    images: tuple[DicomImage, ...]
    header: Any  # pydicom Dataset of the first image, without pixel data
    rows: int
    columns: int
    row_direction: np.ndarray  # direction of increasing column index (ImageOrientationPatient[:3])
    column_direction: np.ndarray  # direction of increasing row index (ImageOrientationPatient[3:])
    row_spacing: float  # between rows, along column_direction
    column_spacing: float  # between columns, along row_direction

    @property
    def frame_of_reference_uid(self) -> str | None:
        return str(self.header.get("FrameOfReferenceUID", "") or "").strip() or None

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_direction, self.column_direction)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, images): the voxel grid in (i, j, k) order."""
        return (self.columns, self.rows, len(self.images))

    @property
    def slice_step(self) -> float:
        """Distance between consecutive images along the normal (0 for a single image)."""
        if len(self.images) < 2:
            return 0.0
        offsets = [float(np.dot(self.normal, im.position)) for im in self.images]
        return (offsets[-1] - offsets[0]) / (len(offsets) - 1)

    @property
    def lps_affine(self) -> np.ndarray:
        """Voxel (i, j, k) -> LPS millimetres (DICOM patient coordinates)."""
        affine = np.eye(4)
        affine[:3, 0] = self.row_direction * self.column_spacing
        affine[:3, 1] = self.column_direction * self.row_spacing
        affine[:3, 2] = self.normal * (self.slice_step or 1.0)
        affine[:3, 3] = self.images[0].position
        return affine

    @property
    def ras_affine(self) -> np.ndarray:
        """Voxel (i, j, k) -> RAS millimetres (nibabel's convention)."""
        return np.asarray(_LPS_FROM_RAS @ self.lps_affine)


def _floats(value: Any, count: int, name: str, path: str) -> np.ndarray:
    try:
        out = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        out = np.array([])
    if out.size != count:
        raise SourceError(f"{name} is missing or malformed ({value!r})", file=path)
    return out


def read_dicom_series(paths: Sequence[str], require_uids: bool = True) -> DicomSeries:
    """Read the headers of ``paths`` (one series) and sort the images by position. Raises
    :class:`SourceError` for files that are not DICOM images, missing UIDs (unless ``require_uids`` is
    false: reading pixels does not need them, referencing images does), several series mixed together, or
    images that disagree on orientation, size or pixel spacing."""
    import pydicom

    if not paths:
        raise SourceError("no DICOM image files for this series")
    heads = []
    for path in paths:
        try:
            heads.append((path, pydicom.dcmread(path, stop_before_pixels=True)))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise SourceError(f"not a readable DICOM file ({exc})", file=path) from None
    series_uids: dict[str, int] = {}
    for path, ds in heads:
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
            if require_uids and not str(ds.get(keyword, "") or "").strip():
                raise SourceError(f"image has no {keyword}; an RT Structure Set or SEG cannot reference it",
                                  file=path)
        series_uids[str(ds.SeriesInstanceUID)] = series_uids.get(str(ds.SeriesInstanceUID), 0) + 1
    if len(series_uids) > 1:
        listing = ", ".join(f"{uid} ({n} images)" for uid, n in series_uids.items())
        raise SourceError(f"the images belong to {len(series_uids)} different series: {listing}")
    first_path, first = heads[0]
    orientation = _floats(first.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", first_path)
    spacing = _floats(first.get("PixelSpacing"), 2, "PixelSpacing", first_path)
    rows, columns = int(first.get("Rows", 0)), int(first.get("Columns", 0))
    images = []
    for path, ds in heads:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise SourceError("multi-frame images are not supported here", file=path)
        iop = _floats(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
        ps = _floats(ds.get("PixelSpacing"), 2, "PixelSpacing", path)
        if not (np.allclose(iop, orientation, atol=1e-4) and np.allclose(ps, spacing, atol=1e-4)
                and (int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) == (rows, columns)):
            raise SourceError("image orientation, size or pixel spacing differs from the series' first image",
                              file=path)
        position = _floats(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", path)
        images.append(DicomImage(path, str(ds.SOPClassUID), str(ds.SOPInstanceUID), position))
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    images.sort(key=lambda im: float(np.dot(normal, im.position)))
    offsets = np.array([np.dot(normal, im.position) for im in images])
    if len(images) > 1 and np.min(np.diff(offsets)) < 1e-3:
        raise SourceError("two images share one position: the folder mixes series or holds duplicates")
    return DicomSeries(tuple(images), first, rows, columns, row_dir, col_dir, float(spacing[0]), float(spacing[1]))


def describe_grid(shape: Sequence[int], lps_affine: np.ndarray) -> str:
    """``202x198x59 voxels of 0.98x0.98x3.27 mm at (x, y, z) mm LPS, axes (..)``."""
    spacing = np.linalg.norm(lps_affine[:3, :3], axis=0)
    axes = "/".join("(" + ", ".join(f"{v:+.3f}" for v in lps_affine[:3, a] / spacing[a]) + ")" for a in range(3))
    origin = ", ".join(f"{v:.2f}" for v in lps_affine[:3, 3])
    return (f"{'x'.join(map(str, shape))} voxels of {'x'.join(f'{s:.4g}' for s in spacing)} mm at ({origin}) "
            f"LPS, axes {axes}")


@dataclass(frozen=True)
class Alignment:
    """How a label array maps onto a DICOM series: DICOM axis ``d`` is label axis ``axes[d]``, reversed where
    ``flips[d]``. :meth:`array` and :meth:`box` apply it (views, no copies)."""

    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]

    def array(self, labels: np.ndarray) -> np.ndarray:
        out = np.transpose(labels, self.axes)
        for d, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, d)
        return out

    def box(self, box: Sequence[slice], label_shape: Sequence[int]) -> tuple[slice, slice, slice]:
        """A bounding box of the label array, in DICOM (i, j, k) order."""
        out = []
        for d in range(3):
            a = self.axes[d]
            s = box[a]
            out.append(slice(label_shape[a] - s.stop, label_shape[a] - s.start) if self.flips[d] else s)
        return out[0], out[1], out[2]


def align_grids(shape: Sequence[int], ras_affine: np.ndarray, target_shape: Sequence[int],
                target_ras_affine: np.ndarray, tolerance: float = 0.01) -> Alignment | None:
    """How a grid maps onto a target grid that covers the same voxels in any axis order and direction, or
    None when the two grids differ (``tolerance`` in voxels)."""
    t = np.linalg.solve(target_ras_affine, ras_affine)  # grid voxel -> target voxel
    axes, flips = [0, 0, 0], [False, False, False]
    for d in range(3):
        a = int(np.argmax(np.abs(t[d, :3])))
        axes[d], flips[d] = a, bool(t[d, a] < 0)
    expected = np.zeros((4, 4))
    expected[3, 3] = 1
    for d in range(3):
        a = axes[d]
        expected[d, a] = -1.0 if flips[d] else 1.0
        expected[d, 3] = shape[a] - 1 if flips[d] else 0.0
    if sorted(axes) != [0, 1, 2] or not np.allclose(t, expected, atol=tolerance):
        return None
    if tuple(shape[a] for a in axes) != tuple(target_shape):
        return None
    return Alignment((axes[0], axes[1], axes[2]), (flips[0], flips[1], flips[2]))


def align_to_series(shape: Sequence[int], ras_affine: np.ndarray, series: DicomSeries,
                    tolerance: float = 0.01) -> Alignment:
    """Check by world geometry that a label grid (``shape``, RAS affine) is the image series' grid, stored in
    any axis order and direction; ``tolerance`` is in voxels. Raises :class:`SourceError` naming both grids."""
    offsets = np.diff([np.dot(series.normal, im.position) for im in series.images])
    uneven = len(series.images) > 1 and np.std(offsets) > tolerance * abs(series.slice_step)
    target = series.ras_affine
    if len(series.images) == 1:  # one image: the plane and position are its own, the thickness the label map's
        normal = target[:3, 2] / np.linalg.norm(target[:3, 2])
        target = target.copy()
        target[:3, 2] = normal * max(abs(float(np.dot(ras_affine[:3, a], normal))) for a in range(3))
    found = None if uneven else align_grids(shape, ras_affine, series.shape, target, tolerance)
    if found is None:
        problem = "the images are not evenly spaced" if uneven else "the grids differ in size, spacing, " \
            "orientation or position"
        raise SourceError(f"label map does not match its DICOM series ({problem}): label map "
                          f"{describe_grid(shape, _LPS_FROM_RAS @ ras_affine)}; images "
                          f"{describe_grid(series.shape, series.lps_affine)}")
    return found
