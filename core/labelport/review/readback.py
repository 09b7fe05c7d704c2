"""Reading an export back from its files, with readers other than the ones that wrote them: the label maps and
masks a writer root holds (nibabel for NIfTI, SimpleITK for MetaImage, highdicom for DICOM SEG, rt-utils for RT
Structs), the series' image (SimpleITK for DICOM, nibabel for NIfTI), all put on one grid by world geometry.
The review page shows what a user of the files gets, not what labelport holds in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..images import regrid

__all__ = ["SeriesView", "read_series"]

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS


@dataclass
class SeriesView:
    """One series as its files give it back: masks per category on one grid (RAS affine), and its image."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    masks: dict[str, np.ndarray]
    instances: dict[str, int]
    image: np.ndarray | None = None
    modality: str | None = None
    files: list[str] = field(default_factory=list)
    note: str = ""

    def add(self, category: str, mask: np.ndarray) -> None:
        """One more instance of ``category``, its voxels joined to the category's mask."""
        self.masks[category] = self.masks[category] | mask if category in self.masks else mask
        self.instances[category] = self.instances.get(category, 0) + 1

    @property
    def voxel_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0


def _itk_to_array(image: Any) -> tuple[np.ndarray, np.ndarray]:
    """(array in voxel order (i, j, k), RAS affine) of a SimpleITK image."""
    import SimpleITK as sitk

    direction = np.array(image.GetDirection(), float).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(image.GetSpacing(), float)
    lps[:3, 3] = image.GetOrigin()
    return np.asarray(sitk.GetArrayFromImage(image)).T, _FLIP @ lps


def _read_volume(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(array, RAS affine) of a NIfTI (nibabel) or MetaImage (SimpleITK) file."""
    if path.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        image: Any = nib.load(path)
        return np.asanyarray(image.dataobj), np.asarray(image.affine, float)
    import SimpleITK as sitk

    return _itk_to_array(sitk.ReadImage(path))


def _paths(root: str, value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    return [os.path.normpath(os.path.join(root, v)) for v in values if isinstance(v, str)]


def read_image(root: str, series: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, str | None] | None:
    """(image array, RAS affine, modality) from the series' ``items``, or None when they are not on disk."""
    files = [p for p in _paths(root, series.get("items")) if os.path.isfile(p)]
    if not files:
        return None
    if len(files) == 1 and files[0].endswith((".nii", ".nii.gz")):
        array, affine = _read_volume(files[0])
        return (array[..., 0] if array.ndim == 4 else array), affine, None
    import pydicom
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    folder = os.path.dirname(files[0])
    wanted = set(files)
    ordered = [f for f in reader.GetGDCMSeriesFileNames(folder) if os.path.normpath(f) in wanted]
    reader.SetFileNames(ordered or files)
    array, affine = _itk_to_array(reader.Execute())
    modality = pydicom.dcmread(files[0], stop_before_pixels=True).get("Modality")
    return array, affine, str(modality) if modality else None


def _entries(series: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    seg_map = series.get("segmentMap")
    for key, entry in (seg_map.items() if isinstance(seg_map, dict) else []):
        if isinstance(entry, dict) and isinstance(entry.get("category"), str):
            yield str(key), entry


def _from_label_files(root: str, series: Mapping[str, Any]) -> SeriesView | None:
    """NIfTI and MetaImage writers: each segmentMap entry's ``mask`` (else the series' ``segmentations``) holds
    the entry's key as voxel value, its overlap groups too; binary masks hold 1."""
    binary = series.get("binaryMask") is True
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    view: SeriesView | None = None
    for key, entry in _entries(series):
        paths = _paths(root, entry.get("mask") or series.get("segmentations"))
        if not paths or not paths[0].endswith((".nii", ".nii.gz", ".mhd")):
            continue
        if paths[0] not in cache:
            cache[paths[0]] = _read_volume(paths[0])
        data, affine = cache[paths[0]]
        if view is None:
            view = SeriesView(data.shape[:3], affine, {}, {})
        if binary:
            mask = data > 0
        else:
            values = [int(key)] if key.lstrip("-").isdigit() else []
            values += [int(g) for g in entry.get("overlappingGroups") or [] if isinstance(g, int)]
            mask = np.isin(data, values)
        view.add(entry["category"], regrid(mask, affine, view.shape, view.affine))
    if view is not None:
        view.files = sorted(os.path.relpath(p, root) for p in cache)
    return view


def _from_dicom(root: str, series: Mapping[str, Any], path: str,
                image: tuple[np.ndarray, np.ndarray, str | None] | None) -> SeriesView | None:
    """DICOM SEG (highdicom) or RT Struct (its contours filled at pixel centres), on the image grid."""
    import pydicom

    modality = pydicom.dcmread(path, stop_before_pixels=True).get("Modality")
    if image is None:
        return SeriesView((1, 1, 1), np.eye(4), {}, {}, files=[os.path.relpath(path, root)],
                          note="the images are not on disk: no picture of a DICOM object")
    array, affine, _ = image
    view = SeriesView(array.shape[:3], affine, {}, {}, files=[os.path.relpath(path, root)])
    if modality == "SEG":
        import highdicom as hd

        seg = hd.seg.segread(path)
        volume = seg.get_volume(combine_segments=False)
        lps = volume.affine  # (slice, row, column) -> LPS
        seg_ras = _FLIP @ lps @ np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
        numbers = {int(s.SegmentNumber): n for n, s in enumerate(seg.SegmentSequence)}
        for key, entry in _entries(series):
            number = entry.get("segmentNumber", int(key) if key.isdigit() else None)
            if number not in numbers:
                continue
            frames = np.asarray(volume.array[..., numbers[number]]) > 0  # (slice, row, column)
            view.add(entry["category"], regrid(frames.transpose(2, 1, 0), seg_ras, array.shape, affine))
        return view
    if modality == "RTSTRUCT":
        masks = _rtstruct_masks(pydicom.dcmread(path), array.shape, affine)
        for key, entry in _entries(series):
            if key in masks:
                view.add(entry["category"], masks[key])
        return view
    return None


def _fill(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels of a (columns, rows) plane whose centres lie inside the polygon ``points`` (i, j), even-odd: a
    pixel is inside when an odd number of the polygon's edges cross its row to the right of its centre."""
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rows, columns = [], []
    for a, b, c, d in zip(x0, y0, x1, y1):
        if b == d:
            continue
        low, high = min(b, d), max(b, d)
        crossed = np.arange(max(0, int(np.ceil(low))), min(shape[1], int(np.ceil(high))))
        crossed = crossed[(crossed >= low) & (crossed < high)]
        rows.append(crossed)
        columns.append(np.ceil(a + (crossed - b) * (c - a) / (d - b)))
    marks = np.zeros((shape[0] + 1, shape[1]), np.int32)
    if rows:
        np.add.at(marks, (np.clip(np.concatenate(columns), 0, shape[0]).astype(int), np.concatenate(rows)), 1)
    # crossings at column index > c, for each c: a cumulative sum from the right
    return (np.cumsum(marks[::-1], axis=0)[::-1][1:] % 2).astype(bool)


def _rtstruct_masks(ds: Any, shape: tuple[int, ...], ras: np.ndarray) -> dict[str, np.ndarray]:
    """Each ROI of an RT Structure Set rasterised on the image grid: a pixel belongs to an ROI when its centre
    lies inside an odd number of the ROI's contours on that slice (holes are contours inside contours)."""
    to_index = np.linalg.inv(_FLIP @ ras)  # LPS -> (i, j, k)
    names = {int(r.ROINumber): str(r.ROIName) for r in getattr(ds, "StructureSetROISequence", [])}
    masks: dict[str, np.ndarray] = {}
    for roi in getattr(ds, "ROIContourSequence", []):
        name = names.get(int(roi.ReferencedROINumber))
        if name is None:
            continue
        mask = masks.setdefault(name, np.zeros(shape[:3], bool))
        for contour in getattr(roi, "ContourSequence", []):
            lps = np.asarray(contour.ContourData, float).reshape(-1, 3)
            ijk = (to_index @ np.c_[lps, np.ones(len(lps))].T).T[:, :3]
            k = round(float(ijk[:, 2].mean()))
            if 0 <= k < shape[2] and np.allclose(ijk[:, 2], k, atol=0.01):
                mask[:, :, k] ^= _fill(ijk[:, :2], (shape[0], shape[1]))
    return masks


def read_series(root: str, series: Mapping[str, Any]) -> SeriesView | None:
    """The series of a written tasks.json entry read back from ``root``, or None when it has no labels this
    page can show (a writer whose layout it does not read: PNG, COCO, training layouts)."""
    image = read_image(root, series)
    segs = _paths(root, series.get("segmentations"))
    if segs and segs[0].endswith(".dcm") and os.path.isfile(segs[0]):
        view = _from_dicom(root, series, segs[0], image)
    else:
        view = _from_label_files(root, series)
    if view is None:
        return None
    if image is not None and view.masks:
        array, affine, modality = image
        view.image, view.modality = regrid(array, affine, view.shape, view.affine, nearest=False), modality
    return view
