"""The dicom-seg writer, checked by third-party readers: dciodvfy (dicom3tools), highdicom and dcmqi's
segimage2itkimage. Every segment is compared with its source instance mask in world coordinates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from dicomcheck import (
    assert_conformant,
    check_dcmqi,
    check_highdicom,
    dciodvfy_errors,
    image_grid,
    sample,
)

import labelport

hd = pytest.importorskip("highdicom", reason="highdicom is not installed (pip install labelport[dicom-seg])")

def _export(project: Path, out: Path, **options: Any) -> tuple[Path, dict[str, Any]]:
    report = labelport.export(project, out, ["dicom-seg"], options={"dicom-seg": options}, allow_outside_paths=True)
    assert report.ok, [str(f) for f in report.failures]
    return out, json.loads((out / "tasks.json").read_text())


def _dciodvfy(path: Path, images: list[str] | None = None) -> None:
    """dciodvfy: no error the images do not have themselves (with ``images``, dcentvfy: nothing about our file)."""
    if images:
        assert_conformant(path, images)
    else:
        assert not dciodvfy_errors(path), dciodvfy_errors(path)


def _instance_masks(project: Path, task_index: int = 0) -> tuple[dict[int, np.ndarray], np.ndarray, dict[str, Any]]:
    """Each instance's voxels (its overlap groups included) from the source label map, read with nibabel."""
    task = json.loads((project / "tasks.json").read_text())[task_index]
    series = task["series"][0]
    seg = series["segmentations"]
    image = nib.load(str(project / (seg[0] if isinstance(seg, list) else seg)))
    data = np.asanyarray(image.dataobj)
    masks = {int(k): np.isin(data, [int(k), *(v.get("overlappingGroups") or [])])
             for k, v in series["segmentMap"].items()}
    return masks, image.affine, task


def test_overlapping_thin_case(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--overlap", "--thin", "--shape", "64", "56", "30")
    out, entries = _export(project, tmp_path / "out")
    masks, affine, task = _instance_masks(project)
    series = entries[0]["series"][0]
    path = out / series["segmentations"]
    files = [str(project / item) for item in task["series"][0]["items"]]
    _dciodvfy(path, files)
    heads, grid = image_grid(files)
    by_number = {series["segmentMap"][str(i)]["segmentNumber"]: m for i, m in masks.items()}
    assert sorted(by_number) == list(range(1, len(masks) + 1))
    expected = {n: sample(m, affine, grid) for n, m in by_number.items()}
    assert sum(int(m.sum()) for m in expected.values()) == sum(int(m.sum()) for m in masks.values())
    seg = check_highdicom(path, heads, grid, expected)
    both = [n for n, m in by_number.items() if (m & by_number[1]).any() and n != 1]
    assert both, "the casegen --overlap instances should overlap, and stay overlapping"
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG" and seg.SegmentsOverlap == "YES"
    assert seg.StudyInstanceUID == heads[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == heads[0].FrameOfReferenceUID
    # only frames with a segment: one frame per (segment, slice) that holds it
    assert int(seg.NumberOfFrames) == sum(int(m.any(axis=(1, 2)).sum()) for m in expected.values())
    for description in seg.SegmentSequence:
        instance = next(i for i, e in series["segmentMap"].items() if e["segmentNumber"] == description.SegmentNumber)
        assert description.SegmentLabel == series["segmentMap"][instance]["category"]
        assert description.TrackingID == f"instance {instance}"
    check_dcmqi(path, tmp_path / "dcmqi", by_number, affine)


def test_per_class_labelmap_and_compression(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--shape", "48", "40", "16")
    masks, affine, task = _instance_masks(project)
    heads, grid = image_grid([str(project / item) for item in task["series"][0]["items"]])
    for options in ({"segments": "class"}, {"type": "labelmap"}, {"type": "labelmap", "compression": "jpegls"},
                    {"compression": "jpeg2000"}, {"compression": "none"}):
        out, entries = _export(project, tmp_path / "-".join(options.values()), **options)
        series = entries[0]["series"][0]
        path = out / series["segmentations"]
        if options.get("type") != "labelmap":  # dicom3tools in Debian predates the Label Map Segmentation IOD
            _dciodvfy(path, [str(project / item) for item in task["series"][0]["items"]])
        expected: dict[int, np.ndarray] = {}
        for key, entry in series["segmentMap"].items():
            ids = entry.get("instances", [int(key)])
            union = np.any([masks[i] for i in ids], axis=0)
            expected[entry["segmentNumber"]] = sample(union, affine, grid)
        seg = check_highdicom(path, heads, grid, expected)
        syntax = {"jpegls": "1.2.840.10008.1.2.4.80", "jpeg2000": "1.2.840.10008.1.2.4.90",
                  "none": "1.2.840.10008.1.2.1"}.get(options.get("compression", ""), "1.2.840.10008.1.2.1.99")
        assert seg.file_meta.TransferSyntaxUID == syntax
        if options.get("compression") == "none":  # the same content as the (deflated) default, larger
            deflated = _export(project, tmp_path / "default")[0] / series["segmentations"]
            assert deflated.stat().st_size * 5 < path.stat().st_size
            assert np.array_equal(hd.seg.segread(str(deflated)).pixel_array, seg.pixel_array)
            check_dcmqi(path, tmp_path / "dcmqi-none", {
                e["segmentNumber"]: np.any([masks[i] for i in e.get("instances", [int(key)])], axis=0)
                for key, e in series["segmentMap"].items()}, affine)
        if options.get("type") == "labelmap":
            assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7"
        if options.get("segments") == "class":
            categories = {task["series"][0]["segmentMap"][str(i)]["category"] for i in masks}
            assert sorted(d.SegmentLabel for d in seg.SegmentSequence) == sorted(categories)


def test_refusals(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--overlap", "--shape", "32", "32", "12")
    report = labelport.export(project, tmp_path / "lm", ["dicom-seg"], options={"dicom-seg": {"type": "labelmap"}})
    assert not report.ok and "segments overlap; type=labelmap" in str(report.failures[0])
    assert "Case 001" in str(report.failures[0]) and not list((tmp_path / "lm").rglob("*.dcm"))
    with pytest.raises(labelport.OptionError, match="needs type=labelmap"):
        labelport.export(project, tmp_path / "rle", ["dicom-seg"], options={"dicom-seg": {"compression": "rle"}})
    # a label map one slice off the images is refused, naming both grids
    image = nib.load(str(project / "segmentations" / "Case 001" / "CT Axial.nii.gz"))
    shifted = image.affine.copy()
    shifted[2, 3] += abs(shifted[2, 2])
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), shifted), str(
        project / "segmentations" / "Case 001" / "CT Axial.nii.gz"))
    report = labelport.export(project, tmp_path / "shift", ["dicom-seg"], allow_outside_paths=True)
    assert not report.ok and "grid" in str(report.failures[0]) and not list((tmp_path / "shift").rglob("*.dcm"))
    # images without UIDs cannot be referenced
    nib.save(image, str(project / "segmentations" / "Case 001" / "CT Axial.nii.gz"))
    first = sorted((project / "images").rglob("*.dcm"))[0]
    ds = pydicom.dcmread(first)
    del ds.SOPInstanceUID
    ds.save_as(first)
    report = labelport.export(project, tmp_path / "uids", ["dicom-seg"], allow_outside_paths=True)
    assert not report.ok and "image has no SOPInstanceUID" in str(report.failures[0])
    assert first.name in str(report.failures[0]) and not list((tmp_path / "uids").rglob("*.dcm"))


def test_contract(tmp_path: Path) -> None:
    from labelport.testing import check_writer

    check_writer("dicom-seg", tmp_path)


def _dcmqi_project(realdata: Path, tmp_path: Path, label: np.ndarray, reference: Any,
                   seg_map: dict[str, Any], object_types: list[dict[str, Any]]) -> Path:
    import SimpleITK as sitk

    project = tmp_path / "project"
    (project / "segmentations").mkdir(parents=True)
    image = sitk.GetImageFromArray(label)
    image.CopyInformation(reference)
    sitk.WriteImage(image, str(project / "segmentations" / "ct.nii.gz"))
    items = sorted(str(p) for p in (realdata / "dcmqi_ct3slice" / "CT").glob("*.dcm"))
    (project / "tasks.json").write_text(json.dumps([{"taskId": "dcmqi", "name": "dcmqi", "series": [
        {"name": "CT", "items": items, "segmentations": "segmentations/ct.nii.gz", "segmentMap": seg_map}]}]))
    (project / "taxonomy.json").write_text(json.dumps({"name": "dcmqi", "objectTypes": object_types}))
    return project


def test_dcmqi_ct3slice(realdata: Path, tmp_path: Path) -> None:
    """dcmqi's own example CT: liver and spine, then its three partially overlapping segments in one
    overlapping task; each goes to SEG and back (highdicom and dcmqi) exactly."""
    import SimpleITK as sitk

    folder = realdata / "dcmqi_ct3slice"
    heads, grid = image_grid(sorted(str(p) for p in (folder / "CT").glob("*.dcm")))
    cases = []
    liver_spine = sitk.ReadImage(str(folder / "liver_spine_seg.nrrd"))
    data = sitk.GetArrayFromImage(liver_spine).astype(np.uint8)
    meta = json.loads((folder / "seg-example_liver_spine.json").read_text())["segmentAttributes"]
    described = {int(s["labelID"]): s for group in meta for s in group}
    assert sorted(described) == sorted(int(v) for v in np.unique(data) if v)
    cases.append(("liver_spine", data, liver_spine, {n: data == n for n in described}, described))
    reference = sitk.ReadImage(str(folder / "partial_overlaps-1.nrrd"))
    parts = {}
    for n in (1, 2, 3):
        part = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"partial_overlaps-{n}.nrrd")))
        parts.update({int(v): part == v for v in np.unique(part) if v})
    meta = json.loads((folder / "seg-example_partial_overlaps.json").read_text())["segmentAttributes"]
    overlap_described = {int(s["labelID"]): s for group in meta for s in group}
    combined = np.zeros(parts[1].shape, np.uint8)
    groups: dict[tuple[int, ...], int] = {}
    cover = np.stack([parts[n] for n in sorted(parts)], axis=-1)
    for members in sorted({tuple(np.flatnonzero(row) + 1) for row in cover.reshape(-1, len(parts)) if row.any()}):
        value = members[0] if len(members) == 1 else groups.setdefault(members, len(parts) + 1 + len(groups))
        combined[np.all(cover == np.isin(np.arange(1, len(parts) + 1), members), axis=-1)] = value
    assert groups
    cases.append(("overlaps", combined, reference, parts, overlap_described, groups))
    for name, label, ref, masks, described, *rest in cases:
        groups = rest[0] if rest else {}
        seg_map = {str(n): {"id": f"seg-{n}", "category": described[n]["SegmentLabel"],
                            "overlappingGroups": sorted(g for members, g in groups.items() if n in members)}
                   for n in sorted(masks)}
        object_types = [{"category": described[n]["SegmentLabel"], "classId": i, "color": list(
            described[n].get("recommendedDisplayRGBValue", [128, 128, 128])),
            "segmentedPropertyCategory": described[n]["SegmentedPropertyCategoryCodeSequence"],
            "segmentedPropertyType": described[n]["SegmentedPropertyTypeCodeSequence"]}
            for i, n in enumerate(sorted(masks))]
        project = _dcmqi_project(realdata, tmp_path / name, label, ref, seg_map, object_types)
        out, entries = _export(project, tmp_path / name / "out")
        series = entries[0]["series"][0]
        path = out / series["segmentations"]
        _dciodvfy(path, sorted(str(p) for p in (realdata / "dcmqi_ct3slice" / "CT").glob("*.dcm")))
        image = nib.load(str(project / "segmentations" / "ct.nii.gz"))
        nifti_masks = {n: np.isin(np.asanyarray(image.dataobj), [n, *seg_map[str(n)]["overlappingGroups"]])
                       for n in masks}
        assert all(m.sum() == masks[n].sum() for n, m in nifti_masks.items())
        by_number = {series["segmentMap"][str(n)]["segmentNumber"]: m for n, m in nifti_masks.items()}
        expected = {k: sample(m, image.affine, grid) for k, m in by_number.items()}
        assert all(expected[series["segmentMap"][str(n)]["segmentNumber"]].sum() == masks[n].sum() for n in masks)
        seg = check_highdicom(path, heads, grid, expected)
        for description in seg.SegmentSequence:  # the taxonomy's codes, not the generic ones
            n = int(description.TrackingID.split()[-1])
            code = described[n]["SegmentedPropertyTypeCodeSequence"]
            assert description.SegmentedPropertyTypeCodeSequence[0].CodeValue == code["CodeValue"]
        check_dcmqi(path, tmp_path / name / "dcmqi", by_number, image.affine)


def test_without_highdicom(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without highdicom the writer is still listed, with what to install, and an export asks for it."""
    import importlib.util

    from click.testing import CliRunner

    from labelport.cli import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "highdicom" else real(name, *a))
    listed = json.loads(CliRunner().invoke(cli, ["writers", "--json"]).output)
    assert next(w for w in listed["writers"] if w["name"] == "dicom-seg")["missing"] == ["highdicom"]
    result = CliRunner().invoke(cli, ["export", str(demo), "-o", str(tmp_path / "out"), "-w", "dicom-seg"])
    assert result.exit_code == 1
    assert "writer 'dicom-seg' needs highdicom (pip install highdicom)" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("case", ["STS_001/CT", "STS_001/MR_T1", "STS_002/CT", "STS_002/CT as RAS", "oblique"])
def test_real_series(realdata: Path, tmp_path: Path, case: str) -> None:
    """Real series (MIRP's sarcoma masks, one re-stored RAS; rt-utils' oblique series with our own mask)
    -> SEG -> highdicom, on the image grid in world coordinates."""
    if case == "oblique":
        images = sorted(str(p) for p in (realdata / "rtutils_tests" / "oriented_data").glob("*.dcm"))
        dicom = labelport.read_dicom_series(images)
        labels = np.zeros(dicom.shape, np.uint8)
        labels[10:40, 20:80, :] = 1
        labels[5:9, 5:12, 0:2] = 2
        mask_image = nib.Nifti1Image(labels, dicom.ras_affine)
    else:
        folder = realdata / "sts_sarcoma" / case.split(" ")[0]
        images = sorted(str(p) for p in (folder / "dicom_image").iterdir())
        mask_image = nib.load(str(folder / "mask.nii.gz"))
        if case.endswith("as RAS"):
            mask_image = nib.as_closest_canonical(mask_image)
            assert nib.aff2axcodes(mask_image.affine) == ("R", "A", "S")
    project = tmp_path / "p"
    project.mkdir()
    nib.save(mask_image, str(project / "mask.nii.gz"))
    data = np.asanyarray(mask_image.dataobj)
    seg_map = {str(int(v)): {"id": f"l{int(v)}", "category": f"Region {int(v)}"} for v in np.unique(data) if v}
    (project / "tasks.json").write_text(json.dumps([{"taskId": "t", "name": case.replace("/", "-"), "series": [
        {"name": "images", "items": images, "segmentations": "mask.nii.gz", "segmentMap": seg_map}]}]))
    out, entries = _export(project, tmp_path / "out")
    series = entries[0]["series"][0]
    path = out / series["segmentations"]
    _dciodvfy(path, images)
    heads, grid = image_grid(images)
    expected = {series["segmentMap"][k]["segmentNumber"]: sample(data == int(k), mask_image.affine, grid)
                for k in seg_map}
    assert all(m.any() for m in expected.values())
    check_highdicom(path, heads, grid, expected)
