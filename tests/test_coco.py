"""The coco writer, read back by pycocotools: every instance on every slice, overlaps included, oriented as the
png writer orients its slices, whatever the voxel order on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from cases import TRAINING_CLASSES, TRAINING_SHAPE, read_records, training_project, write_records
from oracles import need
from PIL import Image

import labelport


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    need("pycocotools")
    return training_project(tmp_path / "src", ["Case 001", "Case 002"])


def _annotations(out: Path) -> Any:
    from pycocotools.coco import COCO

    return COCO(str(out / "annotations.json"))


@pytest.mark.parametrize("segmentation", ["rle", "polygon"])
def test_every_instance_on_every_slice_comes_back_exact(tmp_path: Path, project: tuple[Path, Any],
                                                        segmentation: str) -> None:
    root, truth = project
    masks = truth["Case 001"]
    masks[1][5:9, 6:10, 2] = False  # a hole in the Liver on slice 2
    masks[1][0, 0, 3] = masks[1][1, 1, 3] = True  # pixels touching at a corner only
    records = read_records(root)
    path = root / records[0]["series"][0]["segmentations"]
    img: Any = nib.load(str(path))
    data = np.asarray(img.dataobj).copy()
    data[5:9, 6:10, 2] = np.where(data[5:9, 6:10, 2] == 1, 0, data[5:9, 6:10, 2])
    data[0, 0, 3] = data[1, 1, 3] = 1
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(path))
    out = tmp_path / "coco"
    report = labelport.export(root, out, "coco", options={"coco": {"segmentation": segmentation}})
    assert report.ok, report.failures
    coco = _annotations(out)
    assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == [(1, "Liver"), (2, "Kidney"),
                                                                               (3, "Tumor")]
    class_of = {"Liver": 1, "Kidney": 2, "Tumor": 3}
    seen = set()
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        where = image["labelport"]
        task = where["task"].removeprefix("task-")
        n, k = ann["labelport"]["instance"], where["slice"]
        # the label map is stored RAS (i to the patient's left, j to posterior): an axial slice as a viewer shows
        # it has the patient's right on the left (column = i) and anterior at the top (row = j)
        expected = truth[task][n][:, :, k].T
        assert isinstance(ann["segmentation"], dict if segmentation == "rle" else list)
        assert np.array_equal(coco.annToMask(ann).astype(bool), expected), (task, n, k)
        assert ann["category_id"] == class_of[TRAINING_CLASSES[n]] and ann["area"] == int(expected.sum())
        assert image["file_name"] == f"images/{task}/CT/CT-{k:03d}.png"
        seen.add((task, n, k))
    wanted = {(task, n, k) for task, masks in truth.items() for n, m in masks.items()
              for k in range(TRAINING_SHAPE[2]) if m[:, :, k].any()}
    assert seen == wanted, "one annotation per instance and slice where it has voxels"
    assert len(coco.getImgIds()) == 2 * TRAINING_SHAPE[2]
    # the images: the CT slice k holds 20 + k HU, shown in a soft-tissue window (-160..240 HU)
    for image in coco.loadImgs(coco.getImgIds()):
        pixels = np.asarray(Image.open(out / image["file_name"]))
        assert pixels.shape == (image["height"], image["width"]) == TRAINING_SHAPE[1::-1]
        assert np.all(pixels == round((20 + image["labelport"]["slice"] + 160) * 255 / 400))


def test_voxel_order_on_disk_changes_nothing(tmp_path: Path, project: tuple[Path, Any]) -> None:
    """The same structures stored LPS (i and j reversed, affine to match) give the same COCO file."""
    root, _ = project
    labelport.export(root, tmp_path / "ras", "coco")
    for record in read_records(root):
        path = root / record["series"][0]["segmentations"]
        img: Any = nib.load(str(path))
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:2, 3] = [img.shape[0] - 1, img.shape[1] - 1]
        lps = nib.Nifti1Image(np.asarray(img.dataobj)[::-1, ::-1].copy(), img.affine @ flip)
        nib.save(lps, str(path))
    assert labelport.export(root, tmp_path / "lps", "coco").ok
    ras, lps_ = (json.loads((tmp_path / name / "annotations.json").read_text()) for name in ("ras", "lps"))
    assert ras == lps_


def test_coco_pairs_with_the_png_writer_slice_for_slice(tmp_path: Path, project: tuple[Path, Any]) -> None:
    root, _ = project
    out = tmp_path / "both"
    assert labelport.export(root, out, ["png", "coco"], options={"png": {"mode": "index"}}).ok
    coco = _annotations(out / "coco")
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        label = np.asarray(Image.open(out / "png" / image["file_name"].replace("images/", "segmentations/", 1)))
        mask = coco.annToMask(ann).astype(bool)
        # where this instance's class is the only one, the png writer's class value is the category
        assert np.any(label[mask] == ann["category_id"])
        assert np.all(label[mask] > 0)


def test_only_labelled_slices_on_request(tmp_path: Path, project: tuple[Path, Any]) -> None:
    root, truth = project
    records = read_records(root)
    write_records(root, records[:1])
    out = tmp_path / "labelled"
    assert labelport.export(root, out, "coco", options={"coco": {"slices": "labelled"}}).ok
    coco = _annotations(out)
    slices = sorted(image["labelport"]["slice"] for image in coco.loadImgs(coco.getImgIds()))
    assert slices == [k for k in range(TRAINING_SHAPE[2]) if any(m[:, :, k].any() for m in truth["Case 001"].values())]
