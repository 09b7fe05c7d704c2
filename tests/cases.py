"""Small RedBrick-style export folders made by the tests themselves (no files from outside the checkout): one
series per task, a label map with a Liver and a Kidney instance, a taxonomy; and CT series written as DICOM with
a label map on their grid. Tests then damage or edit them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

TAXONOMY = {"name": "cases", "objectTypes": [
    {"category": "Liver", "classId": 0, "color": "#ff0000"}, {"category": "Kidney", "classId": 1, "color": "#00ff00"},
    {"category": "Tumor", "classId": 2, "color": "#0000ff"}]}
SHAPE = (6, 5, 4)


def write_label_map(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    affine = np.diag([-1.0, -1.0, 2.0, 1.0]) if affine is None else affine
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def label_map(seed: int) -> np.ndarray:
    """Instances 1 (Liver) and 2 (Kidney); their place depends on ``seed`` so that tasks differ."""
    data = np.zeros(SHAPE, np.uint8)
    data[seed % 3: seed % 3 + 2, 1:3, 1:3] = 1
    data[3:5, (seed % 2) + 2: (seed % 2) + 4, 0:2] = 2
    return data


def task_record(n: int, name: str, path: str) -> dict[str, Any]:
    return {
        "taskId": f"t-{n:04d}", "name": name, "currentStageName": "END" if n % 3 else "Review_1",
        "series": [{"name": "CT", "items": [f"images/{name}/CT/0001.dcm"],
                    "imageHeaders": {"dimensions": list(SHAPE)}, "segmentations": path,
                    "segmentMap": {"1": {"id": f"l-{n}-1", "category": "Liver"},
                                   "2": {"id": f"l-{n}-2", "category": "Kidney", "attributes": {"Side": "L"}}},
                    "binaryMask": False, "semanticMask": False, "pngMask": False}],
    }


def tiny_export(root: Path, names: Sequence[str], taxonomy: dict[str, Any] | None = TAXONOMY) -> Path:
    """An export folder with one task per name (names may repeat), each with its own label map."""
    records = []
    for n, name in enumerate(names):
        path = f"segmentations/task-{n:04d}/CT.nii.gz"
        write_label_map(root / path, label_map(n))
        records.append(task_record(n, name, path))
    write_records(root, records)
    if taxonomy is not None:
        (root / "taxonomy.json").write_text(json.dumps(taxonomy))
    return root


def overlapped(masks: dict[int, np.ndarray]) -> tuple[np.ndarray, dict[int, list[int]]]:
    """One label map for overlapping instance masks, as RedBrick stores them: a voxel covered by one instance
    holds its id, a voxel covered by several a group id for that set (after the instance ids). Returns the
    map and, per instance, the group ids it belongs to (its segmentMap ``overlappingGroups``)."""
    ids = sorted(masks)
    stack = np.stack([masks[i] for i in ids], axis=-1)
    out = np.zeros(stack.shape[:-1], np.uint16)
    groups: dict[tuple[int, ...], int] = {}
    for index in zip(*np.nonzero(stack.any(axis=-1))):
        members = tuple(i for i, on in zip(ids, stack[index]) if on)
        if len(members) == 1:
            out[index] = members[0]
        else:
            out[index] = groups.setdefault(members, max(ids) + 1 + len(groups))
    return out, {i: sorted(g for members, g in groups.items() if i in members) for i in ids}


def read_records(root: Path) -> list[Any]:
    return list(json.loads((root / "tasks.json").read_text()))


def write_records(root: Path, records: list[Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks.json").write_text(json.dumps(records, indent=1))


def ct_slices(key: str, shape: tuple[int, int, int], spacing: tuple[float, float, float],
              origin: tuple[float, float, float], pixels: np.ndarray | None = None, **attributes: Any) -> list[bytes]:
    """An axial CT series, lowest slice first, one small DICOM file per slice: ``shape`` is (columns, rows,
    slices), ``spacing`` (column spacing, row spacing, slice step) and ``origin`` the LPS position of the
    first pixel of the lowest slice. ``pixels`` (int16 HU, indexed like ``shape``) defaults to one value per
    slice. ``attributes`` are set on every slice (PatientIdentityRemoved="YES", ...). UIDs derive from ``key``."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    study, series, frame = (generate_uid(entropy_srcs=[key, part]) for part in ("study", "series", "frame"))
    out = []
    for k in range(shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[key, str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Case^Synthetic", key, "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = \
            "20250301", "090000", "1", "", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "CT", 1, k + 1, "tests"
        ds.PositionReferenceIndicator, ds.Laterality = "", ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[2]]
        ds.PixelSpacing, ds.SliceThickness = [spacing[1], spacing[0]], spacing[2]
        ds.KVP, ds.AcquisitionNumber = "", ""
        ds.Rows, ds.Columns = shape[1], shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, 0, "HU"
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        plane = np.full((shape[1], shape[0]), 20 + k, np.int16) if pixels is None else pixels[:, :, k].T
        ds.PixelData = np.ascontiguousarray(plane, "<i2").tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def dicom_export(root: Path, masks: dict[int, np.ndarray], categories: dict[int, str],
                 spacing: tuple[float, float, float] = (0.7, 0.8, 2.5), origin: tuple[float, float, float] =
                 (-20.0, -15.0, -10.0), name: str = "Case 001", taxonomy: dict[str, Any] | None = None,
                 **attributes: Any) -> Path:
    """An export folder with one task: a CT series (the shape of the masks: columns, rows, slices) written as
    DICOM under ``images/`` and a label map of the (possibly overlapping) instance ``masks`` on its grid, in
    RAS as RedBrick stores it (i = column, j = row, k = slice upwards)."""
    shape = next(iter(masks.values())).shape
    folder = root / "images" / name / "CT"
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for k, data in enumerate(ct_slices(name, shape, spacing, origin, **attributes)):
        (folder / f"{k:04d}.dcm").write_bytes(data)
        items.append(f"images/{name}/CT/{k:04d}.dcm")
    labels, groups = overlapped(masks)
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [-origin[0], -origin[1], origin[2]]
    write_label_map(root / "segmentations" / name / "CT.nii.gz", labels, affine)
    seg_map = {str(n): {"id": f"label-{n}", "category": categories[n],
                        **({"overlappingGroups": groups[n]} if groups[n] else {})} for n in sorted(masks)}
    write_records(root, [{"taskId": f"task-{name}", "name": name, "updatedAt": "2025-03-01T10:00:00+00:00",
                          "series": [{"name": "CT", "items": items, "imageHeaders": {"dimensions": list(shape)},
                                      "segmentations": f"segmentations/{name}/CT.nii.gz", "segmentMap": seg_map}]}])
    if taxonomy is not None:
        (root / "taxonomy.json").write_text(json.dumps(taxonomy))
    return root


# -- training cases: DICOM CT tasks with overlapping classes ---------------------------------------------------

TRAINING_SHAPE = (24, 20, 8)  # columns, rows, slices
TRAINING_CLASSES = {1: "Liver", 2: "Tumor", 3: "Tumor", 4: "Kidney"}


def training_masks(shift: int) -> dict[int, np.ndarray]:
    """Liver; two Tumor instances overlapping each other and the Liver; a Kidney crossing the Liver and the
    first Tumor (three classes on some voxels)."""
    masks = {n: np.zeros(TRAINING_SHAPE, bool) for n in TRAINING_CLASSES}
    masks[1][2:16, 3:15, 1:7] = True
    masks[2][10 + shift:20, 8:17, 2:6] = True
    masks[3][14:22, 12:19, 3:8] = True
    masks[4][12:14, 0:20, 0:5] = True
    return masks


def training_project(root: Path, names: list[str]) -> tuple[Path, dict[str, dict[int, np.ndarray]]]:
    """An export folder with one DICOM CT task per name (each its own masks and origin) and the taxonomy."""
    records, truth = [], {}
    for n, name in enumerate(names):
        masks = training_masks(n)
        dicom_export(root, masks, TRAINING_CLASSES, name=name, origin=(-20.0 + 3 * n, -15.0, -10.0 - 7 * n),
                     taxonomy=TAXONOMY)
        records += read_records(root)
        truth[name] = masks
    write_records(root, records)
    return root, truth


def class_masks(masks: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for n, name in TRAINING_CLASSES.items():
        out[name] = out.get(name, np.zeros(TRAINING_SHAPE, bool)) | masks[n]
    return out


def lowest_classes(masks: dict[int, np.ndarray]) -> np.ndarray:
    """The class value of each voxel (taxonomy order: Liver 1, Kidney 2, Tumor 3), an overlap taking the lowest."""
    classes = class_masks(masks)
    out = np.zeros(TRAINING_SHAPE, np.uint8)
    for value, name in ((3, "Tumor"), (2, "Kidney"), (1, "Liver")):
        out[classes[name]] = value
    return out
