"""The test-case generator itself, checked with pydicom and nibabel only: the tests that use it are only as good
as its geometry."""

from __future__ import annotations

import json
from pathlib import Path

import casegen
import nibabel as nib
import numpy as np
import pydicom
from scipy import ndimage


def test_dicom_and_label_map_agree_in_world_coordinates(tmp_path: Path) -> None:
    root = casegen.main([str(tmp_path / "case"), "--overlap", "--thin", "--shape", "40", "36", "12", "--tasks", "2"])
    records = json.loads((root / "tasks.json").read_text())
    for t, record in enumerate(records):
        series = record["series"][0]
        image = nib.load(str(root / series["segmentations"]))
        labels = np.asarray(image.dataobj)
        assert labels.shape == (40, 36, 12) and np.allclose(image.affine, image.get_qform())
        slices = [pydicom.dcmread(root / item) for item in series["items"]]
        normal = np.cross(*np.reshape(np.array(slices[0].ImageOrientationPatient, float), (2, 3)))
        heights = [float(np.dot(normal, s.ImagePositionPatient)) for s in slices]
        assert heights == sorted(heights, reverse=True), "files are numbered head first"
        slices.reverse()
        assert slices[0].ImagePositionPatient == series["imageHeaders"]["origin"]
        for i, j, k in [(0, 0, 0), (39, 35, 11), (5, 30, 7), (39, 0, 3)]:  # DICOM PS3.3 C.7.6.2.1.1 against RAS
            head = slices[k]
            iop = np.array(head.ImageOrientationPatient, float)
            row_spacing, column_spacing = (float(v) for v in head.PixelSpacing)
            lps = np.array(head.ImagePositionPatient, float) + i * column_spacing * iop[:3] + j * row_spacing * iop[3:]
            assert np.allclose(lps * [-1, -1, 1], (image.affine @ [i, j, k, 1])[:3], atol=1e-4)
        hu = np.stack([s.pixel_array.T for s in slices], axis=-1)
        names = {int(v): e["category"] for v, e in series["segmentMap"].items()}
        for value in np.unique(labels[labels > 0]).tolist():
            expected = casegen.HU_GROUP if value == 6 else casegen.HU[names[value]]
            assert set(np.unique(hu[labels == value]).tolist()) == {expected}, value
        assert names == {1: "Liver", 2: "Kidney", 3: "Kidney", 4: "Tumor", 5: "Tumor", 7: "Vessel", 8: "Tumor"}
        assert series["segmentMap"]["1"]["overlappingGroups"] == [6] == series["segmentMap"]["2"]["overlappingGroups"]
        assert (labels == 6).any() and (labels == 1).any() and (labels == 2).any()
        vessel = labels == 7
        assert vessel.any(axis=(0, 1)).sum() >= 6, "the vessel runs through the slices"
        assert not ndimage.binary_erosion(vessel, np.ones((2, 2, 1))).any(), "the vessel is one voxel wide"
        ring = labels == 8
        assert ring.any() and (ndimage.binary_fill_holes(ring[:, :, 5]) & ~ring[:, :, 5]).any(), "the ring has a hole"
        assert record["name"] == f"Case {t + 1:03d}"


def test_same_options_same_files(tmp_path: Path) -> None:
    a = casegen.main([str(tmp_path / "a"), "--shape", "24", "20", "8", "--seed", "3"])
    b = casegen.main([str(tmp_path / "b"), "--shape", "24", "20", "8", "--seed", "3"])
    c = casegen.main([str(tmp_path / "c"), "--shape", "24", "20", "8", "--seed", "4"])
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    label = "segmentations/Case 001/CT Axial.nii.gz"
    other = np.asarray(nib.load(str(c / label)).dataobj)
    assert not np.array_equal(np.asarray(nib.load(str(a / label)).dataobj), other), "the seed moves the instances"
