"""The nifti writer: voxel-for-voxel and world-coordinate round trips, read back by nibabel and SimpleITK."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

import labelport
from labelport.testing import output_files


def _same_image(a: Path, b: Path) -> None:
    """Equal voxels and equal geometry, by two independent readers."""
    na, nb = nib.load(str(a)), nib.load(str(b))
    va, vb = np.asanyarray(na.dataobj), np.asanyarray(nb.dataobj)
    assert vb.dtype == va.dtype
    assert np.array_equal(va, vb)
    assert np.allclose(na.affine, nb.affine, atol=1e-6)
    ia, ib = sitk.ReadImage(str(a)), sitk.ReadImage(str(b))
    assert np.array_equal(sitk.GetArrayViewFromImage(ia), sitk.GetArrayViewFromImage(ib))
    assert np.allclose(ia.GetOrigin(), ib.GetOrigin(), atol=1e-5)
    assert np.allclose(ia.GetDirection(), ib.GetDirection(), atol=1e-6)
    assert np.allclose(ia.GetSpacing(), ib.GetSpacing(), atol=1e-6)
    # the same voxel lands on the same world point (ITK's LPS vs nibabel's RAS)
    corner = [n - 1 for n in va.shape[:3]]
    ras = nb.affine @ [*corner, 1]
    lps = ib.TransformIndexToPhysicalPoint([int(c) for c in corner])
    assert np.allclose([-ras[0], -ras[1], ras[2]], lps, atol=1e-4)


def test_make_case_overlap_round_trip(tmp_path: Path, make_case) -> None:
    case = make_case(tmp_path / "case", "--overlap", "--shape", "256", "128", "30")  # (slices of 4 blocks)
    report = labelport.export(case, tmp_path / "x", ["nifti"])
    assert report.ok and report.written == {"nifti": 1}
    src_tasks = json.loads((case / "tasks.json").read_text())
    out_tasks = json.loads((tmp_path / "x" / "tasks.json").read_text())
    rel = out_tasks[0]["series"][0]["segmentations"]
    assert rel == "segmentations/Case 001/CT Axial.nii.gz"
    _same_image(case / src_tasks[0]["series"][0]["segmentations"], tmp_path / "x" / rel)
    # group id 6 is still in the voxels, and both instances still name it
    voxels = np.asanyarray(nib.load(str(tmp_path / "x" / rel)).dataobj)
    assert 6 in np.unique(voxels)
    seg_map = out_tasks[0]["series"][0]["segmentMap"]
    assert seg_map["1"]["overlappingGroups"] == [6] and seg_map["2"]["overlappingGroups"] == [6]
    # every input field is kept; only paths and mask flags change
    src, out = src_tasks[0], out_tasks[0]
    assert {k: v for k, v in src.items() if k != "series"} == {k: v for k, v in out.items() if k != "series"}
    for key, value in src["series"][0].items():
        if key == "segmentMap":
            for inst, entry in value.items():
                assert {k: v for k, v in seg_map[inst].items() if k != "mask"} == {
                    k: v for k, v in entry.items() if k != "mask"}
                assert seg_map[inst]["mask"] == rel
        elif key == "items":  # the same image files, named from the output folder
            assert [(tmp_path / "x" / i).resolve() for i in out["series"][0][key]] == [
                (case / i).resolve() for i in value]
        elif key != "segmentations":
            assert out["series"][0][key] == value, key


def test_demo_round_trip(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = labelport.export(demo, out, ["nifti"])
    assert report.ok, report.failures
    src_tasks = json.loads((demo / "tasks.json").read_text())
    out_tasks = json.loads((out / "tasks.json").read_text())
    assert [t["taskId"] for t in out_tasks] == [t["taskId"] for t in src_tasks]
    source = labelport.LocalExport(demo)
    for task, entry in zip(source, out_tasks):
        for series, record in zip(task.series, entry["series"]):
            if series.label_map is None:
                assert "segmentations" not in record
                continue
            _same_image(Path(series.label_map.path), out / record["segmentations"])
            assert not Path(record["segmentations"]).is_absolute()
    # vector annotations and custom fields pass through
    assert out_tasks[0]["series"][0]["measurements"] == src_tasks[0]["series"][0]["measurements"]
    assert out_tasks[0]["series"][0]["landmarks3d"] == src_tasks[0]["series"][0]["landmarks3d"]
    assert out_tasks[0]["x-custom"] == {"keep": [1, 2, 3]}
    # the uncompressed input with a header extension comes out gzipped, extension kept
    t2 = out / out_tasks[1]["series"][1]["segmentations"]
    assert t2.name == "T2 axial.nii.gz"
    assert [e.get_content() for e in nib.load(str(t2)).header.extensions] == [
        b"labelport demo: data after an extension"]
    # the nameless series is named by its letter
    assert out_tasks[3]["series"][1]["segmentations"] == "segmentations/Patient 004/B.nii.gz"


def test_output_is_plain_gzip_and_deterministic(demo: Path, tmp_path: Path) -> None:
    labelport.export(demo, tmp_path / "a", ["nifti"])
    labelport.export(demo, tmp_path / "b", ["nifti"])
    files = [Path(f) for f in output_files(tmp_path / "a")] + [Path("tasks.json")]
    assert len(files) == 6
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
        if rel.suffix == ".gz":
            raw = (tmp_path / "a" / rel).read_bytes()
            assert raw[4:8] == b"\x00\x00\x00\x00"  # no timestamp in the gzip header
            gzip.decompress(raw)  # the standard library reads it


def test_options(demo: Path, tmp_path: Path) -> None:
    report = labelport.export(demo, tmp_path / "o", ["nifti"], options={"nifti": {"extension": ".nii",
                                                                                 "compresslevel": "0"}})
    assert report.ok
    out = json.loads((tmp_path / "o" / "tasks.json").read_text())
    path = tmp_path / "o" / out[0]["series"][0]["segmentations"]
    assert path.suffix == ".nii" and path.read_bytes()[:4] == (348).to_bytes(4, "little")
    _same_image(demo / "segmentations/Patient 001/CT.nii.gz", path)
