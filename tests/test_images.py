"""Images on the label grid, the training dataset, and the images-nifti writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import labelport
from labelport import SourceError

HU = {"Liver": 60, "Kidney": 150, "Tumor": 100, "Vessel": 250}  # the CT values casegen gives each category


def _expected_hu(series: labelport.Series, labels: np.ndarray) -> dict[int, int]:
    out = {n: HU[s.category] for n, s in series.segments.items()}
    out.update({g: 90 for g in series.overlap_groups})  # casegen gives overlap voxels their own value
    return {v: out[v] for v in np.unique(labels).tolist() if v}


def test_dicom_image_matches_labels(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--overlap", "--thin", "--shape", "64", "56", "24")
    series = next(iter(labelport.open_source(project, allow_outside_paths=True))).series[0]
    volumes = labelport.load_aligned(series)
    assert volumes.image.shape == volumes.labels.shape and volumes.image.dtype == np.int16
    assert np.allclose(volumes.affine, series.label_map.affine)
    for value, hu in _expected_hu(series, volumes.labels).items():
        assert set(np.unique(volumes.image[volumes.labels == value]).tolist()) == {hu}, value


def test_an_image_array_is_ours_to_change_and_outlives_the_reader(tmp_path: Path, make_case: Any) -> None:
    """The pixels of a DICOM series are used where ITK decoded them, not copied: the array must keep them alive
    and be writable, as a copy would be."""
    import gc

    project = make_case(tmp_path / "case", "--shape", "64", "56", "24")
    series = next(iter(labelport.open_source(project, allow_outside_paths=True))).series[0]
    image = labelport.load_aligned(series).image
    expected = {v: HU[s.category] for v, s in series.segments.items()}
    gc.collect()
    np.zeros(20_000_000, dtype=np.int16).fill(-1)  # memory freed too early would be reused here
    labels = series.label_map.array
    for value, hu in expected.items():
        assert set(np.unique(image[labels == value]).tolist()) == {hu}
    image[labels > 0] = -1000
    assert image.flags.writeable and int(image.max()) < 60


def test_label_map_in_another_axis_order(tmp_path: Path, make_case: Any) -> None:
    """The same labels stored RAS instead of LPS: the image follows the labels' voxel order."""
    project = make_case(tmp_path / "case", "--shape", "64", "56", "24")
    path = project / "segmentations" / "Case 001" / "CT Axial.nii.gz"
    canonical = nib.as_closest_canonical(nib.load(str(path)))
    nib.save(canonical, str(path))
    series = next(iter(labelport.open_source(project, allow_outside_paths=True))).series[0]
    volumes = labelport.load_aligned(series)
    for value, hu in _expected_hu(series, volumes.labels).items():
        assert set(np.unique(volumes.image[volumes.labels == value]).tolist()) == {hu}


def test_grid_mismatch_refused_or_resampled(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--shape", "64", "56", "24")
    path = project / "segmentations" / "Case 001" / "CT Axial.nii.gz"
    img = nib.load(str(path))
    full = np.asanyarray(img.dataobj)
    crop = full[10:50, 5:40, 2:20]
    affine = img.affine.copy()
    affine[:3, 3] = (img.affine @ [10, 5, 2, 1])[:3]
    nib.save(nib.Nifti1Image(crop, affine), str(path))
    tasks = json.loads((project / "tasks.json").read_text())
    del tasks[0]["series"][0]["imageHeaders"]  # the crop is a label map on its own grid
    (project / "tasks.json").write_text(json.dumps(tasks))
    series = next(iter(labelport.open_source(project, allow_outside_paths=True))).series[0]
    with pytest.raises(SourceError, match="the image grid differs from the label map's: image 64x56x24 voxels"):
        labelport.load_aligned(series)
    volumes = labelport.load_aligned(series, resample=True)
    assert volumes.labels.shape == (64, 56, 24)
    expected = np.zeros_like(full)
    expected[10:50, 5:40, 2:20] = crop
    assert np.array_equal(volumes.labels, expected)


def test_sts_ct_matches_mirp(realdata: Path, tmp_path: Path) -> None:
    folder = realdata / "sts_sarcoma" / "STS_001" / "CT"
    images = sorted(str(p) for p in (folder / "dicom_image").iterdir())
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "tasks.json").write_text(json.dumps([{"taskId": "s", "name": "s", "series": [
        {"name": "CT", "segmentations": str(folder / "mask.nii.gz"), "items": images,
         "segmentMap": {"1": {"category": "GTV"}}}]}]))
    series = next(iter(labelport.open_source(tmp_path / "p", allow_outside_paths=True))).series[0]
    volumes = labelport.load_aligned(series)
    reference: Any = nib.load(str(folder / "image.nii.gz"))
    assert np.allclose(volumes.affine, reference.affine, atol=1e-3)
    assert np.array_equal(volumes.image.astype(np.float64), np.asanyarray(reference.dataobj).astype(np.float64))


def test_totalsegmentator_jpeg2000(realdata: Path, tmp_path: Path) -> None:
    """JPEG 2000 images without UIDs decode, and line up with the LAS-stored label map in world space."""
    folder = realdata / "totalseg_example"
    images = sorted(str(p) for p in (folder / "example_ct_dicom").iterdir())
    names = json.loads((folder / "class_map_total.json").read_text())
    seg = folder / "example_seg_dicom.nii.gz"
    assert nib.aff2axcodes(nib.load(str(seg)).affine) == ("L", "A", "S")
    values = [int(v) for v in np.unique(np.asanyarray(nib.load(str(seg)).dataobj)) if v]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "tasks.json").write_text(json.dumps([{"taskId": "t", "name": "t", "series": [
        {"name": "CT", "segmentations": str(seg), "items": images,
         "segmentMap": {str(v): {"category": names[str(v)]} for v in values}}]}]))
    series = next(iter(labelport.open_source(tmp_path / "p", allow_outside_paths=True))).series[0]
    volumes = labelport.load_aligned(series)
    raw = sitk.GetArrayFromImage(sitk.ReadImage(sorted(images)[0]))[0].T  # one slice, stored order (i, j)
    assert raw.shape == volumes.image.shape[:2]
    median = {names[str(v)]: float(np.median(volumes.image[volumes.labels == v])) for v in values}
    assert 30 < median["liver"] < 150 and 30 < median["spleen"] < 150
    assert min(median["vertebrae_T12"], median["humerus_left"], median["humerus_right"], median["rib_left_8"]) > 150
    assert median["colon"] < -200  # gas
    # mirrored left-right (what array-order alignment of LAS labels with LPS images would do) it falls apart
    mirrored = volumes.image[::-1]
    liver = float(np.median(mirrored[volumes.labels == 5]))
    humerus = float(np.median(mirrored[volumes.labels == 69]))
    assert not (30 < liver < 150 and humerus > 150)


def test_dataset_targets(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--tasks", "2", "--overlap", "--shape", "64", "56", "24")
    ds = labelport.Dataset(project, target="binary")
    assert len(ds) == 2
    item = ds[1]
    assert item["task_name"] == "Case 002" and item["series"] == "CT Axial"
    assert item["image"].shape == (64, 56, 24) and item["label"].shape == (5, 64, 56, 24)
    assert item["image"].flags.writeable and item["label"].flags.writeable
    series = next(t for t in labelport.open_source(project, allow_outside_paths=True) if t.name == "Case 002").series[0]
    labels = series.label_map.array
    for channel, n in enumerate(sorted(series.segments)):
        groups = [g for g, ids in series.overlap_groups.items() if n in ids]
        assert np.array_equal(item["label"][channel] == 1, (labels == n) | np.isin(labels, groups))
    assert [s["category"] for s in item["segments"]] == ["Liver", "Kidney", "Kidney", "Tumor", "Tumor"]
    assert np.allclose(item["spacing"], (0.7, 0.8, 2.5), atol=1e-5)
    semantic = labelport.Dataset(project, target="semantic")[1]["label"]
    assert set(np.unique(semantic).tolist()) == {0, 1, 2, 3}
    layers = labelport.Dataset(project, target="layers")[1]["label"]
    assert layers.shape[0] == 2 and 6 not in np.unique(layers)
    assert [it["task_name"] for it in labelport.Dataset(project, images=False)] == ["Case 001", "Case 002"]
    with pytest.raises(ValueError, match="target must be"):
        labelport.Dataset(project, target="boxes")  # type: ignore[arg-type]


def test_dataset_reports_missing_images(demo: Path) -> None:
    with pytest.raises(SourceError, match=r"task 'Patient 001', series 'CT'.* have no image files"):
        labelport.Dataset(demo)
    assert "image" not in labelport.Dataset(demo, images=False)[0]


def test_torch_dataloader(demo: Path) -> None:
    """A DataLoader over the demo project (which has no images: labels only)."""
    torch = pytest.importorskip("torch")
    ds = labelport.Dataset(demo, target="semantic", images=False)
    batches = list(torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2))
    assert [b["task_name"][0] for b in batches] == ["Patient 001", "Patient 002", "Patient 002", "Patient 003",
                                                    "Patient 004"]
    assert tuple(batches[0]["label"].shape) == (1, 32, 28, 12)
    expected = next(iter(labelport.open_source(demo, allow_outside_paths=True))).series[0].label_map.array
    classes = {0: 0, 1: 1, 2: 2, 3: 2}  # Liver -> 1, both Kidneys -> 2
    assert np.array_equal(batches[0]["label"][0].numpy(), np.vectorize(classes.get)(expected))


def test_images_nifti_writer(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--overlap", "--shape", "64", "56", "24")
    report = labelport.export(project, tmp_path / "o", ["images-nifti"], allow_outside_paths=True)
    assert report.ok, report.failures
    series = json.loads((tmp_path / "o" / "tasks.json").read_text())[0]["series"][0]
    assert series["items"] == "images/Case 001/CT Axial.nii.gz"
    image: Any = nib.load(str(tmp_path / "o" / series["items"]))
    labels: Any = nib.load(str(tmp_path / "o" / series["segmentations"]))
    assert np.allclose(image.affine, labels.affine) and image.shape == labels.shape
    data, lab = np.asanyarray(image.dataobj), np.asanyarray(labels.dataobj)
    source = next(iter(labelport.open_source(project, allow_outside_paths=True))).series[0]
    for value, hu in _expected_hu(source, lab).items():
        assert set(np.unique(data[lab == value]).tolist()) == {hu}
    a = sitk.ReadImage(str(tmp_path / "o" / series["items"]))
    b = sitk.ReadImage(str(tmp_path / "o" / series["segmentations"]))
    assert np.allclose(a.GetOrigin(), b.GetOrigin()) and np.allclose(a.GetDirection(), b.GetDirection())


def test_nifti_image_series(realdata: Path, tmp_path: Path) -> None:
    """A series whose image is a NIfTI file (MIRP's image.nii.gz), with the label map stored RAS."""
    folder = realdata / "sts_sarcoma" / "STS_002" / "CT"
    (tmp_path / "p" / "seg").mkdir(parents=True)
    nib.save(nib.as_closest_canonical(nib.load(str(folder / "mask.nii.gz"))), str(tmp_path / "p" / "seg" / "m.nii.gz"))
    (tmp_path / "p" / "tasks.json").write_text(json.dumps([{"taskId": "s", "name": "s", "series": [
        {"name": "CT", "segmentations": "seg/m.nii.gz", "items": [str(folder / "image.nii.gz")],
         "segmentMap": {"1": {"category": "GTV"}}}]}]))
    series = next(iter(labelport.open_source(tmp_path / "p", allow_outside_paths=True))).series[0]
    volumes = labelport.load_aligned(series)
    reference: Any = nib.as_closest_canonical(nib.load(str(folder / "image.nii.gz")))
    assert np.allclose(volumes.affine, reference.affine, atol=1e-3)
    assert np.array_equal(volumes.image, np.asanyarray(reference.dataobj))


def test_rescale_slope_and_intercept_are_applied(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--shape", "48", "40", "12")
    import pydicom

    for path in (project / "images" / "Case 001" / "CT Axial").iterdir():
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = "2", "-50"
        ds.save_as(path)
    series = next(iter(labelport.open_source(project, allow_outside_paths=True))).series[0]
    volumes = labelport.load_aligned(series)
    for value, hu in _expected_hu(series, volumes.labels).items():
        assert set(np.unique(volumes.image[volumes.labels == value]).tolist()) == {2 * hu - 50}
