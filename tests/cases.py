"""Small RedBrick-style export folders made by the tests themselves (no files from outside the checkout): one
series per task, a label map with a Liver and a Kidney instance, a taxonomy. Tests then damage or edit them."""

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


def read_records(root: Path) -> list[Any]:
    return list(json.loads((root / "tasks.json").read_text()))


def write_records(root: Path, records: list[Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks.json").write_text(json.dumps(records, indent=1))
