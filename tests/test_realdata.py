"""Real third-party label maps (../shared/realdata; skipped when absent)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

import labelport


def _totalseg_project(realdata: Path, tmp_path: Path, name: str, class_map: str) -> tuple[Path, Path]:
    """An export folder whose single task points (absolute path) at a TotalSegmentator label map, with its
    class map turned into a segmentMap for the labels present."""
    seg = realdata / "totalseg_example" / name
    classes = json.loads((realdata / "totalseg_example" / class_map).read_text())
    present = np.unique(np.asanyarray(nib.load(str(seg)).dataobj))
    seg_map = {str(v): {"id": f"ts-{v}", "category": classes[str(v)]} for v in present if v}
    task = {"taskId": "ts-1", "name": name.split(".")[0], "currentStageName": "END",
            "series": [{"name": "CT", "segmentations": str(seg), "segmentMap": seg_map}]}
    root = tmp_path / "project"
    root.mkdir(parents=True)
    (root / "tasks.json").write_text(json.dumps([task]))
    return root, seg


def _assert_same(a: Path, b: Path) -> None:
    na, nb = nib.load(str(a)), nib.load(str(b))
    assert np.asanyarray(nb.dataobj).dtype == np.asanyarray(na.dataobj).dtype
    assert np.array_equal(np.asanyarray(na.dataobj), np.asanyarray(nb.dataobj))
    assert np.allclose(na.affine, nb.affine, atol=1e-6)
    ia, ib = sitk.ReadImage(str(a)), sitk.ReadImage(str(b))
    assert np.array_equal(sitk.GetArrayViewFromImage(ia), sitk.GetArrayViewFromImage(ib))
    for index in ([0, 0, 0], [s - 1 for s in ia.GetSize()]):
        assert np.allclose(ia.TransformIndexToPhysicalPoint(index), ib.TransformIndexToPhysicalPoint(index), atol=1e-4)


def test_totalsegmentator_round_trip(realdata: Path, tmp_path: Path) -> None:
    for name, class_map in [("example_seg.nii.gz", "class_map_total.json"),
                            ("example_seg_mr.nii.gz", "class_map_total_mr.json"),
                            ("example_seg_dicom.nii.gz", "class_map_total.json")]:
        root, seg = _totalseg_project(realdata, tmp_path / name, name, class_map)
        task = next(iter(labelport.open_source(root, allow_outside_paths=True)))
        assert len(task.series[0].segments) == len(np.unique(task.series[0].label_map.array)) - 1
        assert task.taxonomy.derived
        assert {s.category for s in task.series[0].segments.values()} <= set(
            json.loads((realdata / "totalseg_example" / class_map).read_text()).values())
        report = labelport.export(root, tmp_path / name / "out", ["nifti"], allow_outside_paths=True)
        assert report.ok, report.failures
        entry = json.loads((tmp_path / name / "out" / "tasks.json").read_text())[0]
        _assert_same(seg, tmp_path / name / "out" / entry["series"][0]["segmentations"])
        assert set(entry["series"][0]["segmentMap"]) == {str(i) for i in task.series[0].segments}


WRITERS = ["nifti", "semantic-nifti", "binary-mask", "overlapping", "png", "mhd"]


def _world_equal(path: Path, reference: sitk.Image, expected: np.ndarray) -> None:
    """``path`` (read by SimpleITK) holds ``expected`` on ``reference``'s grid, compared in world space."""
    image = sitk.ReadImage(str(path))
    assert image.GetSize() == reference.GetSize()
    for index in ([0, 0, 0], [s - 1 for s in image.GetSize()], [3, 5, 1]):
        assert np.allclose(image.TransformIndexToPhysicalPoint(index), reference.TransformIndexToPhysicalPoint(index),
                           atol=1e-3)
    assert np.array_equal(sitk.GetArrayFromImage(image), expected)


def test_totalsegmentator_through_every_writer(realdata: Path, tmp_path: Path) -> None:
    root, seg = _totalseg_project(realdata, tmp_path, "example_seg.nii.gz", "class_map_total.json")
    reference = sitk.ReadImage(str(seg))
    labels = sitk.GetArrayFromImage(reference)  # (k, j, i)
    task = next(iter(labelport.open_source(root, allow_outside_paths=True)))
    class_of = {n: s.class_id for n, s in task.series[0].segments.items()}
    for writer in WRITERS:
        report = labelport.export(root, tmp_path / writer, [writer], allow_outside_paths=True)
        assert report.ok, (writer, [str(f) for f in report.failures])
    entry = lambda w: json.loads((tmp_path / w / "tasks.json").read_text())[0]["series"][0]  # noqa: E731
    lut = np.zeros(256, np.uint8)
    for n, c in class_of.items():
        lut[n] = c + 1
    _world_equal(tmp_path / "semantic-nifti" / entry("semantic-nifti")["segmentations"], reference, lut[labels])
    binary = entry("binary-mask")
    assert len(binary["segmentations"]) == len(class_of) == 41
    for key in ("1", "5", "117"):
        _world_equal(tmp_path / "binary-mask" / binary["segmentMap"][key]["mask"], reference,
                     (labels == int(key)).astype(np.uint8))
    layers = entry("overlapping")["segmentations"]
    assert len(layers) == 1
    _world_equal(tmp_path / "overlapping" / layers[0], reference, labels)
    assert len(entry("png")["segmentations"]) == labels.shape[0]
    _world_equal(tmp_path / "mhd" / entry("mhd")["segmentations"][0], reference, labels)


def _optimal_layers(masks: dict[int, np.ndarray]) -> int:
    """The chromatic number of the overlap graph, by brute force (few instances)."""
    ids = sorted(masks)
    edges = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if (masks[a] & masks[b]).any()]
    for k in range(1, len(ids) + 1):
        for colours in itertools.product(range(k), repeat=len(ids)):
            colour = dict(zip(ids, colours))
            if all(colour[a] != colour[b] for a, b in edges):
                return k
    return len(ids)


def test_dcmqi_partial_overlaps_through_every_writer(realdata: Path, tmp_path: Path) -> None:
    folder = realdata / "dcmqi_ct3slice"
    reference = sitk.ReadImage(str(folder / "partial_overlaps-1.nrrd"))
    masks: dict[int, np.ndarray] = {}
    for n in (1, 2, 3):
        image = sitk.ReadImage(str(folder / f"partial_overlaps-{n}.nrrd"))
        assert np.allclose(image.GetOrigin(), reference.GetOrigin()) and image.GetSize() == reference.GetSize()
        data = sitk.GetArrayFromImage(image)
        for value in np.unique(data):
            if value:
                masks[int(value)] = data == value
    assert sorted(masks) == [1, 2, 3, 4, 5]
    names = {}
    meta = json.loads((folder / "seg-example_partial_overlaps.json").read_text())
    for file_segments in meta["segmentAttributes"]:
        for segment in file_segments:
            names[int(segment["labelID"])] = segment["SegmentLabel"]
    # one label map: a voxel covered by several segments holds a group id for that set of segments
    combined = np.zeros(reference.GetSize()[::-1], np.uint8)
    cover = np.stack([masks[n] for n in sorted(masks)], axis=-1)
    groups: dict[tuple[int, ...], int] = {}
    for members in sorted({tuple(np.flatnonzero(row) + 1) for row in cover.reshape(-1, 5) if row.any()}):
        value = members[0] if len(members) == 1 else groups.setdefault(members, 6 + len(groups))
        combined[np.all(cover == np.isin(np.arange(1, 6), members), axis=-1)] = value
    assert groups, "the dcmqi segments should overlap"
    out_image = sitk.GetImageFromArray(combined)
    out_image.CopyInformation(reference)
    project = tmp_path / "project"
    (project / "segmentations").mkdir(parents=True)
    sitk.WriteImage(out_image, str(project / "segmentations" / "ct.nii.gz"))
    seg_map = {str(n): {"id": f"seg-{n}", "category": names[n],
                        "overlappingGroups": sorted(g for members, g in groups.items() if n in members)}
               for n in sorted(masks)}
    (project / "tasks.json").write_text(json.dumps([{"taskId": "dcmqi", "name": "dcmqi", "series": [
        {"name": "CT", "segmentations": "segmentations/ct.nii.gz", "segmentMap": seg_map}]}]))
    for writer in WRITERS:
        report = labelport.export(project, tmp_path / writer, [writer], allow_outside_paths=True)
        assert report.ok, (writer, [str(f) for f in report.failures])
    binary = json.loads((tmp_path / "binary-mask" / "tasks.json").read_text())[0]["series"][0]
    for n, mask in masks.items():  # every segment complete, overlaps included, in world coordinates
        _world_equal(tmp_path / "binary-mask" / binary["segmentMap"][str(n)]["mask"], reference, mask.astype(np.uint8))
    layered = json.loads((tmp_path / "overlapping" / "tasks.json").read_text())[0]["series"][0]
    assert len(layered["segmentations"]) == _optimal_layers(masks)
    for n, mask in masks.items():
        layer_file = tmp_path / "overlapping" / layered["segmentMap"][str(n)]["mask"]
        layer = sitk.GetArrayFromImage(sitk.ReadImage(str(layer_file)))
        assert np.array_equal(layer == n, mask)
    nifti = json.loads((tmp_path / "nifti" / "tasks.json").read_text())[0]["series"][0]
    _world_equal(tmp_path / "nifti" / nifti["segmentations"], reference, combined)
