#!/usr/bin/env python3
"""Synthetic RedBrick-style export folders of any size, for the tests: a CT series per task written as DICOM,
its instance label map, the tasks.json records and the taxonomy.

    python tests/casegen.py OUT [--tasks N] [--shape X Y Z] [--instances K] [--overlap] [--thin]
                                [--no-images] [--seed S] [--dtype uint8|uint16]

What a task holds (every value a function of the options, the seed and the task's index):
  - Task "Case NNN", one series "CT Axial": columns x rows x slices = X x Y x Z, column spacing 0.7 mm, row
    spacing 0.8 mm (non-square pixels), slices 2.5 mm apart, axial, head first on disk: file 0000.dcm is the
    HIGHEST slice, so a reader that sorts by file name gets the volume upside down.
  - The label map (RAS NIfTI, qform = sform) on the same grid: voxel (i, j, k) is column i, row j of the k-th
    slice from the bottom. Instances 1..K are ellipsoids, one per cell of a grid over the body; instance 1 is a
    lobulated "Liver", the others are split between "Kidney" and "Tumor".
  - ``--overlap``: instance 2 sits on instance 1's edge; the shared voxels hold the group id K+1 and both
    segmentMap entries list ``"overlappingGroups": [K+1]``.
  - ``--thin``: instance K+2 is a one-voxel-wide "Vessel" (a run through the slices, then a helix), K+3 a
    "Tumor" ring with a hole, a few slices high.
  - CT values (HU) follow the labels, so images and labels can be compared: air -1000, body 20, Liver 60,
    Kidney 150, Tumor 100, Vessel 250, overlap group 90.
  - ``imageHeaders`` in the ITK/LPS convention (origin = the lowest slice's ImagePositionPatient).
"""

from __future__ import annotations

import argparse
import json
import math
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from cases import ct_slices

SERIES = "CT Axial"
SPACING = (0.7, 0.8, 2.5)
HU = {"Liver": 60, "Kidney": 150, "Tumor": 100, "Vessel": 250}
HU_AIR, HU_BODY, HU_GROUP = -1000, 20, 90
COLOURS = {"Liver": "#e6194b", "Kidney": "#3cb44b", "Tumor": "#ffe119", "Vessel": "#4363d8"}
SIZE = {"Liver": 0.42, "Kidney": 0.34, "Tumor": 0.28}  # in-plane semi-axis, as a fraction of a cell
NAMESPACE = uuid.UUID("3f5c2d0e-8a41-4c55-9d1e-6c6162656c70")


def category(index: int, k: int) -> str:
    """The category of instance ``index`` (0-based) of ``k``: a Liver, then Kidneys, then Tumors."""
    return "Liver" if index == 0 else ("Kidney", "Tumor")[min(1, (index - 1) * 2 // max(1, k - 1))]


class Cells:
    """A grid of equal cells over the central part of each slice (where the body is), and the slices objects
    may use: all but the outer ones from 8 slices up, so objects do not touch the volume's faces."""

    def __init__(self, shape: Sequence[int], count: int) -> None:
        self.columns = math.ceil(math.sqrt(count))
        rows = math.ceil(count / self.columns)
        self.lo = (0.2 * shape[0], 0.2 * shape[1])
        self.size = (0.6 * shape[0] / self.columns, 0.6 * shape[1] / rows)
        self.z = (1.0, shape[2] - 2.0) if shape[2] >= 8 else (0.0, shape[2] - 1.0)

    def centre(self, n: int) -> tuple[float, float]:
        row, column = divmod(n, self.columns)
        return self.lo[0] + (column + 0.5) * self.size[0], self.lo[1] + (row + 0.5) * self.size[1]


def blob(data: np.ndarray, centre: Sequence[float], semi: Sequence[float], lobes: int, phase: float) -> np.ndarray:
    """The voxels of an ellipsoid (semi-axes in voxels), lobulated in-plane when ``lobes`` > 0."""
    gi, gj, gk = np.ogrid[:data.shape[0], :data.shape[1], :data.shape[2]]
    u, v, w = (gi - centre[0]) / semi[0], (gj - centre[1]) / semi[1], (gk - centre[2]) / semi[2]
    limit = 1 + 0.12 * np.cos(lobes * np.arctan2(v, u) + phase) if lobes else 1.0
    return np.asarray(u * u + v * v + w * w <= limit * limit)


def instances(shape: Sequence[int], k: int, overlap: bool, thin: bool, rng: np.random.Generator,
              dtype: np.dtype[Any]) -> tuple[np.ndarray, dict[int, str]]:
    """The label map and each instance id's category."""
    data = np.zeros(shape, dtype)
    cells = Cells(shape, k + (2 if thin else 0))
    z_lo, z_hi = cells.z
    z_semi = max(0.6, 0.3 * (z_hi - z_lo))
    categories = {}
    first: tuple[float, ...] = ()
    for index in range(k):
        name = category(index, k)
        grow = rng.uniform(0.9, 1.1)
        semi = (max(1.6, SIZE[name] * cells.size[0] * grow), max(1.6, SIZE[name] * cells.size[1] * grow), z_semi)
        ci, cj = cells.centre(index)
        ci, cj = ci + rng.uniform(-0.05, 0.05) * cells.size[0], cj + rng.uniform(-0.05, 0.05) * cells.size[1]
        if overlap and index == 1:  # on instance 1's edge, reaching into the second cell only
            ci, cj = first[0] + first[3] + 0.2 * semi[0], first[1]
        centre = (ci, cj, (z_lo + z_hi) / 2 + rng.uniform(-0.1, 0.1) * (z_hi - z_lo))
        mask = blob(data, centre, semi, 3 if name == "Liver" else 0, rng.uniform(0, 2 * math.pi))
        if overlap and index == 1:
            data[mask & (data == 1)] = k + 1
        data[mask & (data == 0)] = index + 1
        categories[index + 1] = name
        first = first or (*centre, semi[0])
    if thin:
        vessel(data, cells.centre(k), min(cells.size) * 0.3, cells.z, k + 2)
        ring(data, cells.centre(k + 1), min(cells.size) * 0.4, cells.z, k + 3)
        categories.update({k + 2: "Vessel", k + 3: "Tumor"})
    if overlap and not ((data == k + 1).any() and (data == 1).any() and (data == 2).any()):
        raise SystemExit(f"casegen: shape {tuple(shape)} is too small for an overlap between instances 1 and 2")
    return data, categories


def vessel(data: np.ndarray, centre: tuple[float, float], radius: float, z: tuple[float, float], value: int) -> None:
    """One voxel wide: straight through the lowest slices of its range, then a helix of 1.5 turns."""
    z_lo, z_hi = int(z[0]), int(z[1])
    run = max(1, (z_hi - z_lo) // 4)
    radius = max(2.0, radius)
    t = np.linspace(0.0, 1.0, 200 * (z_hi - z_lo + 1))
    points = [np.stack([np.full(run, centre[0] + radius), np.full(run, centre[1]), z_lo + np.arange(run)], 1),
              np.stack([centre[0] + radius * np.cos(3 * math.pi * t), centre[1] + radius * np.sin(3 * math.pi * t),
                        z_lo + run + (z_hi - z_lo - run) * t], 1)]
    ijk = np.clip(np.rint(np.concatenate(points)).astype(int), 0, np.array(data.shape) - 1)
    data[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = value


def ring(data: np.ndarray, centre: tuple[float, float], radius: float, z: tuple[float, float], value: int) -> None:
    """An annulus (outer ``radius`` voxels, a hole half as wide) over up to three middle slices."""
    radius = max(3.0, radius)
    gi, gj = np.ogrid[:data.shape[0], :data.shape[1]]
    rho = np.hypot(gi - centre[0], gj - centre[1])
    annulus = (rho <= radius) & (rho >= radius / 2)
    middle = int((z[0] + z[1]) / 2)
    for k in range(max(int(z[0]), middle - 1), min(int(z[1]), middle + 1) + 1):
        data[:, :, k][annulus & (data[:, :, k] == 0)] = value


def ct_values(data: np.ndarray, categories: dict[int, str], group: int | None) -> np.ndarray:
    """HU per voxel: air outside an elliptic body, the category's value inside an instance."""
    gi, gj = np.ogrid[:data.shape[0], :data.shape[1]]
    inside = ((gi - data.shape[0] / 2) / (0.47 * data.shape[0])) ** 2 + \
        ((gj - data.shape[1] / 2) / (0.45 * data.shape[1])) ** 2 <= 1
    table = np.full(int(data.max()) + 1, HU_BODY, np.int16)
    for n, name in categories.items():
        table[n] = HU[name]
    if group is not None:
        table[group] = HU_GROUP
    return np.where(inside[:, :, None] | (data > 0), table[data], HU_AIR).astype(np.int16)


def decimal(value: float) -> float:
    """A value that a DICOM DS string holds exactly."""
    return float(f"{value:.4f}")


def make_case(out: Path, tasks: int = 1, shape: Sequence[int] = (64, 56, 24), k: int = 5, overlap: bool = False,
              thin: bool = False, images: bool = True, seed: int = 0, dtype: str = "uint16") -> Path:
    """Write the export folder ``out`` (see the module's docstring) and return it."""
    names = sorted({category(n, k) for n in range(k)} | ({"Tumor", "Vessel"} if thin else set()),
                   key=list(HU).index)
    grade = {"name": "Grade", "attrType": "SELECT", "attrId": 0,
             "options": [{"name": "Low", "optionId": 0}, {"name": "High", "optionId": 1}]}
    taxonomy = {"name": "labelport cases", "isNew": True, "objectTypes": [
        {"category": name, "classId": n, "labelType": "SEGMENTATION", "color": COLOURS[name], "parents": [],
         "archived": False, "attributes": [grade] if name == "Tumor" else []} for n, name in enumerate(names)]}
    records = []
    for t in range(tasks):
        name = f"Case {t + 1:03d}"
        data, categories = instances(shape, k, overlap, thin, np.random.default_rng([seed, t]), np.dtype(dtype))
        origin = [decimal(-0.5 * (shape[0] - 1) * SPACING[0]), decimal(-0.5 * (shape[1] - 1) * SPACING[1] - 12.5),
                  decimal(-612.5 + 10.0 * t)]
        lps = np.diag([*SPACING, 1.0])
        lps[:3, 3] = origin
        ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
        label_path = f"segmentations/{name}/{SERIES}.nii.gz"
        image = nib.Nifti1Image(data, ras)
        image.set_qform(ras, code=1)
        image.set_sform(ras, code=1)
        image.header.set_xyzt_units("mm")
        (out / label_path).parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, str(out / label_path))
        width = max(4, len(str(shape[2] - 1)))
        items = [f"images/{name}/{SERIES}/{n:0{width}d}.dcm" for n in range(shape[2])]
        if images:
            (out / items[0]).parent.mkdir(parents=True, exist_ok=True)
            pixels = ct_values(data, categories, k + 1 if overlap else None)
            slices = ct_slices(f"case-{seed}-{t}", tuple(shape), SPACING, tuple(origin), pixels,  # type: ignore[arg-type]
                               SeriesDescription=SERIES, PatientName=f"Synthetic^Case{t + 1:03d}",
                               PatientID=f"SYN-{seed}-{t + 1:03d}", StudyDescription="Synthetic abdomen",
                               BodyPartExamined="ABDOMEN", PatientPosition="HFS")
            for item, blob_ in zip(reversed(items), slices):  # head first: the last file is the lowest slice
                (out / item).write_bytes(blob_)

        def uid(*parts: object, t: int = t) -> str:
            return str(uuid.uuid5(NAMESPACE, "/".join(map(str, (seed, t, *parts)))))

        segment_map: dict[str, Any] = {}
        for n, (value, kind) in enumerate(sorted(categories.items())):
            entry: dict[str, Any] = {"id": uid("label", value), "category": kind, "mask": label_path}
            if kind == "Tumor":
                entry["attributes"] = {"Grade": ("High", "Low")[n % 2]}
            if overlap and value in (1, 2):
                entry["overlappingGroups"] = [k + 1]
            segment_map[str(value)] = entry
        day = f"2025-01-{1 + t % 28:02d}"
        records.append({
            "taskId": uid("task"), "name": name, "labelsId": uid("labels"), "storageId": uid("storage"),
            "currentStageName": "END", "status": "COMPLETED", "metaData": {"source": "labelport casegen"},
            "createdBy": "uploader@example.com", "createdAt": f"{day}T10:00:00.000000+00:00",
            "updatedBy": "annotator@example.com", "updatedAt": f"{day}T11:30:00.000000+00:00",
            "series": [{
                "name": SERIES, "items": items, "segmentations": label_path, "segmentMap": segment_map,
                "imageHeaders": {"dimensions": list(shape), "spacing": list(SPACING), "origin": origin,
                                 "affine": lps.tolist(), "direction": np.eye(3).tolist()},
                "binaryMask": False, "semanticMask": False, "pngMask": False}],
        })
    (out / "tasks.json").write_text(json.dumps(records, indent=2))
    (out / "taxonomy.json").write_text(json.dumps(taxonomy, indent=2))
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 56, 24], metavar=("X", "Y", "Z"))
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--overlap", action="store_true")
    parser.add_argument("--thin", action="store_true")
    parser.add_argument("--no-images", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["uint8", "uint16"], default="uint16")
    args = parser.parse_args(argv)
    if args.instances < (2 if args.overlap else 1) or args.tasks < 1 or min(args.shape) < 1:
        parser.error("need at least one task, a positive shape and K >= 1 (2 with --overlap)")
    return make_case(args.out, args.tasks, args.shape, args.instances, args.overlap, args.thin,
                     not args.no_images, args.seed, args.dtype)


if __name__ == "__main__":
    main()
