"""Every real DICOM series in ../shared/realdata (CT and MR, axial and oblique, three slices to one, square and
non-square pixels) with the same labelled structures drawn on its own grid: a ring with a hole, two overlapping
disks and a one-voxel line. The RT Struct and the SEG written on it must pass dicom3tools (no error the images
do not report themselves, nothing from dcentvfy about our file), plastimatch must read the RT Struct back voxel
for voxel (keyhole contours also without ``--xor-contours``), and highdicom and dcmqi must read the SEG back
exactly, in world coordinates. (totalseg_example's CT has no Study, Series or SOP Instance UIDs: it is refused,
see test_rtstruct.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from cases import overlapped
from dicomcheck import (
    assert_conformant,
    check_dcmqi,
    check_highdicom,
    check_rois,
    image_grid,
    sample,
    tool,
)

import labelport

pytest.importorskip("highdicom", reason="highdicom is not installed (pip install labelport[dicom-seg])")

SERIES = {
    "STS_001 CT": "sts_sarcoma/STS_001/CT/dicom_image/*",
    "STS_001 MR": "sts_sarcoma/STS_001/MR_T1/dicom_image/*",
    "STS_002 CT": "sts_sarcoma/STS_002/CT/dicom_image/*",
    "dcmqi CT": "dcmqi_ct3slice/CT/*.dcm",
    "rt-utils oblique": "rtutils_tests/oriented_data/*.dcm",
    "rt-utils two slices": "rtutils_tests/mock_data/ct_*.dcm",
    "rt-utils one oblique slice": "rtutils_tests/one_slice_data/*.dcm",
    "dicompyler one slice": "dicompyler_breast/ct.0.dcm",
}
NAMES = {1: "Ring", 2: "Disk A", 3: "Disk B", 4: "Line"}


def _structures(shape: tuple[int, ...]) -> dict[int, np.ndarray]:
    """The four structures, scaled to the grid (columns, rows, slices), on every slice but the first of a
    series with more than two."""
    cols, rows, slices = shape
    i, j, k = np.ogrid[:cols, :rows, :slices]
    unit = min(cols, rows) / 16
    on = (k >= 1) if slices > 2 else (k >= 0)
    ring = (i - 5 * unit) ** 2 + (j - 5 * unit) ** 2
    disk = [(i - (9 + d) * unit) ** 2 + (j - 10 * unit) ** 2 < (2.5 * unit) ** 2 for d in (0, 2)]
    line = (i >= 2 * unit) & (i < 14 * unit) & (j == int(13.5 * unit))
    return {1: (ring < (3.5 * unit) ** 2) & (ring >= (1.5 * unit) ** 2) & on, 2: disk[0] & on, 3: disk[1] & on,
            4: line & on}


def _project(root: Path, name: str, files: list[str]) -> tuple[Path, dict[int, np.ndarray], np.ndarray]:
    dicom = labelport.read_dicom_series(files)
    masks = _structures(dicom.shape)
    labels, groups = overlapped(masks)
    assert any(groups.values()), "the disks overlap"
    root.mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels, dicom.ras_affine), str(root / "labels.nii.gz"))
    seg_map = {str(n): {"id": f"l{n}", "category": NAMES[n], **({"overlappingGroups": groups[n]} if groups[n] else {})}
               for n in masks}
    (root / "tasks.json").write_text(json.dumps([{"taskId": name, "name": name, "series": [
        {"name": "images", "items": files, "segmentations": "labels.nii.gz", "segmentMap": seg_map}]}]))
    return root, masks, nib.load(str(root / "labels.nii.gz")).affine  # as stored (float32), as dcmqi sees it


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SERIES))
def test_every_real_series(realdata: Path, tmp_path: Path, case: str) -> None:
    tool("plastimatch")
    files = sorted(str(p) for p in realdata.glob(SERIES[case]))
    assert files, f"{SERIES[case]} not found in {realdata}"
    project, masks, affine = _project(tmp_path / "p", case.replace(" ", "-"), files)
    task = next(iter(labelport.open_source(project, allow_outside_paths=True)))
    head = pydicom.dcmread(files[0], stop_before_pixels=True)
    added = ("DeidentificationMethod",) if str(head.get("PatientIdentityRemoved", "")).upper() == "YES" and not (
        head.get("DeidentificationMethod") or head.get("DeidentificationMethodCodeSequence")) else ()

    for holes in ("separate", "keyhole"):
        out = tmp_path / holes
        report = labelport.export(project, out, ["rtstruct", "dicom-seg"], allow_outside_paths=True,
                                  options={"rtstruct": {"holes": holes}, "dicom-seg": {"compression": "none"}})
        assert report.ok, [str(f) for f in report.failures]
        rt_entry = _entry(out, "rtstruct")
        for xor in (True, False) if holes == "keyhole" else (True,):
            assert check_rois(project, out / "rtstruct", rt_entry, task, tmp_path / holes, xor=xor,
                              added=added) == 4

    seg_entry = _entry(tmp_path / "separate", "dicom-seg")
    series = seg_entry["series"][0]
    path = tmp_path / "separate" / "dicom-seg" / series["segmentations"]
    assert_conformant(path, files, added=added)
    heads, grid = image_grid(files)
    by_number = {series["segmentMap"][str(n)]["segmentNumber"]: m for n, m in masks.items()}
    check_highdicom(path, heads, grid, {n: sample(m, affine, grid) for n, m in by_number.items()})
    check_dcmqi(path, tmp_path / "dcmqi", by_number, affine)


def _entry(out: Path, writer: str) -> dict[str, Any]:
    return json.loads((out / writer / "tasks.json").read_text())[0]
