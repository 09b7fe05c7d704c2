"""Real third-party label maps (../shared/realdata; skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import labelport
import nibabel as nib
import numpy as np
import SimpleITK as sitk


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
        task = next(iter(labelport.open_source(root)))
        assert len(task.series[0].segments) == len(np.unique(task.series[0].label_map.array)) - 1
        assert task.taxonomy.derived
        assert {s.category for s in task.series[0].segments.values()} <= set(
            json.loads((realdata / "totalseg_example" / class_map).read_text()).values())
        report = labelport.export(root, tmp_path / name / "out", ["nifti"])
        assert report.ok, report.failures
        entry = json.loads((tmp_path / name / "out" / "tasks.json").read_text())[0]
        _assert_same(seg, tmp_path / name / "out" / entry["series"][0]["segmentations"])
        assert set(entry["series"][0]["segmentMap"]) == {str(i) for i in task.series[0].segments}
