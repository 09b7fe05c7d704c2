"""The rtstruct writer, checked by third-party tools: dciodvfy and dcentvfy (dicom3tools), pydicom in strict
mode, rt-utils, and plastimatch, whose rasterisation is compared with the source masks in world coordinates."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from cases import overlapped
from dicomcheck import check_rois

import labelport

TOOLS = {name: shutil.which(name) for name in ("dciodvfy", "dcentvfy", "plastimatch")}


def _need(*names: str) -> None:
    missing = [n for n in names if not TOOLS[n]]
    if missing:
        reason = f"{', '.join(missing)} not installed (Debian packages dicom3tools, plastimatch)"
        if os.environ.get("LABELPORT_REQUIRE_TOOLS"):  # CI installs them: never skip there
            pytest.fail(reason)
        pytest.skip(reason)


def _export(project: Path, out: Path, **options: Any) -> tuple[Path, dict[str, Any]]:
    report = labelport.export(project, out, ["rtstruct"], options={"rtstruct": options}, allow_outside_paths=True)
    assert report.ok, [str(f) for f in report.failures]
    return out, json.loads((out / "tasks.json").read_text())


# -- synthetic: thin structures, a ring with a hole, overlaps, non-square pixels ------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("roi,holes", [("instance", "separate"), ("class", "separate"), ("instance", "keyhole"),
                                       ("class", "keyhole")])
def test_make_case_thin_and_overlap(tmp_path: Path, make_case: Any, roi: str, holes: str) -> None:
    _need("dciodvfy", "dcentvfy", "plastimatch")
    project = make_case(tmp_path / "case", "--thin", "--overlap", "--shape", "64", "56", "24")
    out, tasks = _export(project, tmp_path / "out", roi=roi, holes=holes)
    task = next(iter(labelport.open_source(project, allow_outside_paths=True)))
    checked = check_rois(project, out, tasks[0], task, tmp_path, xor=True)
    assert checked == (7 if roi == "instance" else 4)
    if holes == "keyhole":  # the same voxels for a reader that takes the union of contours
        assert check_rois(project, out, tasks[0], task, tmp_path, xor=False) == checked
    else:  # which that reader would not get from separate hole contours: the ring's hole is filled
        with pytest.raises(AssertionError, match="Tumor 3" if roi == "instance" else "Tumor"):
            check_rois(project, out, tasks[0], task, tmp_path, xor=False)
    names = list(tasks[0]["series"][0]["segmentMap"])
    if roi == "instance":  # categories repeat: names are made unique; ids are in the description
        assert names == ["Liver", "Kidney", "Kidney 2", "Tumor", "Tumor 2", "Vessel", "Tumor 3"]
        ds = pydicom.dcmread(out / tasks[0]["series"][0]["segmentations"])
        assert ds.StructureSetROISequence[1].ROIDescription.startswith("instance 2, label ")
        colour = [int("3cb44b"[i:i + 2], 16) for i in (0, 2, 4)]
        assert list(ds.ROIContourSequence[1].ROIDisplayColor) == colour


def test_rt_utils_reads_it(tmp_path: Path, make_case: Any) -> None:
    rt_utils = pytest.importorskip("rt_utils")
    project = make_case(tmp_path / "case", "--thin", "--shape", "64", "56", "24")
    out, tasks = _export(project, tmp_path / "out")
    rtstruct = rt_utils.RTStructBuilder.create_from(
        dicom_series_path=str(project / "images" / "Case 001" / "CT Axial"),
        rt_struct_path=str(out / tasks[0]["series"][0]["segmentations"]))
    assert rtstruct.get_roi_names() == list(tasks[0]["series"][0]["segmentMap"])
    assert rtstruct.get_roi_mask_by_name("Liver").any()


def test_same_input_same_file(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--shape", "48", "40", "12")
    a, tasks = _export(project, tmp_path / "a")
    b, _ = _export(project, tmp_path / "b")
    rel = tasks[0]["series"][0]["segmentations"]
    assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_images_from_a_named_folder(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--shape", "48", "40", "12")
    shutil.move(project / "images", tmp_path / "elsewhere")
    report = labelport.export(project, tmp_path / "none", ["rtstruct"], allow_outside_paths=True)
    assert len(report.failures) == 1 and "no DICOM images" in report.failures[0].message
    _export(project, tmp_path / "named", images=str(tmp_path / "elsewhere"))


# -- real data ---------------------------------------------------------------------------------------------


def _project(root: Path, name: str, label_map: Path, images: list[str], seg_map: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    (root / "tasks.json").write_text(json.dumps([{
        "taskId": name, "name": name, "updatedAt": "2025-02-03T04:05:06+00:00",
        "series": [{"name": "images", "segmentations": str(label_map), "items": images, "segmentMap": seg_map}]}]))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("case", ["STS_001/CT", "STS_001/MR_T1", "STS_002/CT"])
def test_sts_sarcoma(realdata: Path, tmp_path: Path, case: str) -> None:
    """MIRP's mask of the sarcoma -> our RT Struct -> plastimatch: the same voxels, with either hole mode and
    either way of combining contours; patient and study exactly the images' (a StudyID longer than SH allows
    is kept, and said)."""
    _need("dciodvfy", "dcentvfy", "plastimatch")
    folder = realdata / "sts_sarcoma" / case
    images = sorted(str(p) for p in (folder / "dicom_image").iterdir())
    project = _project(tmp_path / "p", case.replace("/", "-"), folder / "mask.nii.gz", images,
                       {"1": {"id": "gtv", "category": "GTV"}})
    task = next(iter(labelport.open_source(project, allow_outside_paths=True)))
    for holes in ("separate", "keyhole"):
        report = labelport.export(project, tmp_path / holes, ["rtstruct"], options={"rtstruct": {"holes": holes}},
                                  allow_outside_paths=True)
        assert report.ok
        tasks = json.loads((tmp_path / holes / "tasks.json").read_text())
        for xor in (True, False) if holes == "keyhole" else (True,):
            assert check_rois(project, tmp_path / holes, tasks[0], task, tmp_path / holes, xor=xor) == 1
        head = pydicom.dcmread(images[0], stop_before_pixels=True)
        ds = pydicom.dcmread(tmp_path / holes / tasks[0]["series"][0]["segmentations"])
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyID", "PatientIdentityRemoved",
                        "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
            assert ds[keyword] == head[keyword], keyword
        long_id = [w for w in report.warnings if "StudyID" in w]
        assert len(long_id) == 1 and f"'{head.StudyID}' is longer than its VR (SH) allows (16)" in long_id[0]


@pytest.mark.slow
def test_oblique_orientation(realdata: Path, tmp_path: Path) -> None:
    _need("dciodvfy", "dcentvfy", "plastimatch")
    images = sorted(str(p) for p in (realdata / "rtutils_tests" / "oriented_data").glob("*.dcm"))
    dicom = labelport.read_dicom_series(images)
    labels = np.zeros(dicom.shape, np.uint8)
    labels[10:40, 20:80, :] = 1
    labels[20:30, 40:60, 1] = 0  # a hole on the middle slice
    labels[5:9, 5:12, 0:2] = 2
    (tmp_path / "seg").mkdir()
    nib.save(nib.Nifti1Image(labels, dicom.ras_affine), str(tmp_path / "seg" / "o.nii.gz"))
    project = _project(tmp_path / "p", "oblique", tmp_path / "seg" / "o.nii.gz", images,
                       {"1": {"category": "Box"}, "2": {"category": "Small"}})
    out, tasks = _export(project, tmp_path / "out")
    task = next(iter(labelport.open_source(project, allow_outside_paths=True)))
    assert check_rois(project, out, tasks[0], task, tmp_path) == 2


@pytest.mark.slow
def test_label_map_stored_in_another_axis_order(realdata: Path, tmp_path: Path) -> None:
    """The same mask stored RAS (flipped i and j) still lands on the same voxels."""
    _need("plastimatch")
    folder = realdata / "sts_sarcoma" / "STS_002" / "CT"
    img = nib.load(str(folder / "mask.nii.gz"))
    flipped = nib.as_closest_canonical(img)
    assert nib.aff2axcodes(flipped.affine) == ("R", "A", "S")
    (tmp_path / "seg").mkdir()
    nib.save(flipped, str(tmp_path / "seg" / "ras.nii.gz"))
    images = sorted(str(p) for p in (folder / "dicom_image").iterdir())
    project = _project(tmp_path / "p", "ras", tmp_path / "seg" / "ras.nii.gz", images, {"1": {"category": "GTV"}})
    out, tasks = _export(project, tmp_path / "out")
    task = next(iter(labelport.open_source(project, allow_outside_paths=True)))
    assert check_rois(project, out, tasks[0], task, tmp_path) == 1


# -- inputs that must be refused, with no file written -------------------------------------------------------


def _refused(project: Path, out: Path, *expected: str) -> None:
    report = labelport.export(project, out, ["rtstruct"], allow_outside_paths=True)
    assert len(report.failures) == 1, report.failures
    message = report.failures[0].message
    for text in expected:
        assert text in message, message
    assert not list(out.rglob("*.dcm"))


def test_images_without_uids(realdata: Path, tmp_path: Path) -> None:
    folder = realdata / "totalseg_example"
    images = sorted(str(p) for p in (folder / "example_ct_dicom").iterdir())
    project = _project(tmp_path / "p", "totalseg", folder / "example_seg_dicom.nii.gz", images,
                       {str(v): {"category": f"label {v}"} for v in range(1, 118)})
    report = labelport.export(project, tmp_path / "o", ["rtstruct"], unknown_labels="warn", allow_outside_paths=True)
    assert len(report.failures) == 1
    assert "task 'totalseg', series 'images'" in report.failures[0].message
    assert "has no StudyInstanceUID" in report.failures[0].message
    assert not list((tmp_path / "o").rglob("*.dcm"))


def test_mixed_series(realdata: Path, tmp_path: Path) -> None:
    base = realdata / "sts_sarcoma"
    images = sorted(str(p) for p in (base / "STS_001" / "CT" / "dicom_image").iterdir())
    images += sorted(str(p) for p in (base / "STS_002" / "CT" / "dicom_image").iterdir())[:3]
    project = _project(tmp_path / "p", "mixed", base / "STS_001" / "CT" / "mask.nii.gz", images,
                       {"1": {"category": "GTV"}})
    _refused(project, tmp_path / "o", "belong to 2 different series")


@pytest.mark.parametrize("thickness", [3.0, 1.0])
def test_a_single_image_with_overlapping_rois(realdata: Path, tmp_path: Path, thickness: float) -> None:
    """One CT slice (dicompyler's breast case) with four overlapping ROIs, up to four deep, and one with a hole:
    a one-slice RT Struct, read back by plastimatch both ways."""
    _need("dciodvfy", "dcentvfy", "plastimatch")
    image = realdata / "dicompyler_breast" / "ct.0.dcm"
    dicom = labelport.read_dicom_series([str(image)])
    i, j = np.ogrid[:dicom.shape[0], :dicom.shape[1]]
    disks = {n + 1: ((i - 200 - 30 * n) ** 2 + (j - 250) ** 2 < 60 ** 2)[..., None] for n in range(4)}
    ring = (((i - 380) ** 2 + (j - 380) ** 2) < 50 ** 2) & (((i - 380) ** 2 + (j - 380) ** 2) >= 20 ** 2)
    labels, groups = overlapped({**disks, 5: ring[..., None]})
    assert labels.max() > 5 and max(len(g) for g in groups.values()) >= 4  # up to four deep
    affine = dicom.ras_affine.copy()
    affine[:3, 2] *= thickness  # the label map's own thickness (the image's is 3 mm)
    (tmp_path / "seg").mkdir()
    nib.save(nib.Nifti1Image(labels, affine), str(tmp_path / "seg" / "one.nii.gz"))
    seg_map = {str(n): {"category": "Ring" if n == 5 else f"Disk {n}", "overlappingGroups": groups[n]}
               for n in groups}
    project = _project(tmp_path / "p", "one", tmp_path / "seg" / "one.nii.gz", [str(image)], seg_map)
    for holes in ("separate", "keyhole"):
        out, tasks = _export(project, tmp_path / holes, holes=holes)
        task = next(iter(labelport.open_source(project, allow_outside_paths=True)))
        assert check_rois(project, out, tasks[0], task, tmp_path / holes, xor=holes == "separate") == 5


def test_grid_mismatch(realdata: Path, tmp_path: Path) -> None:
    base = realdata / "sts_sarcoma"
    images = sorted(str(p) for p in (base / "STS_002" / "CT" / "dicom_image").iterdir())
    project = _project(tmp_path / "p", "mismatch", base / "STS_001" / "CT" / "mask.nii.gz", images,
                       {"1": {"category": "GTV"}})
    _refused(project, tmp_path / "o", "does not match its DICOM series", "label map 198x202x59 voxels",
             "images 161x143x48 voxels")


def test_shifted_grid_is_refused(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--shape", "48", "40", "12")
    path = project / "segmentations" / "Case 001" / "CT Axial.nii.gz"
    img = nib.load(str(path))
    affine = img.affine.copy()
    affine[2, 3] += 1.0  # 1 mm along z: 0.4 of a slice
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), affine), str(path))
    _refused(project, tmp_path / "o", "does not match its DICOM series", "spacing, orientation or position")
