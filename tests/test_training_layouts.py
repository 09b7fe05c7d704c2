"""The nnunet and monai writers, checked by nnU-Net's own integrity check and LabelManager and by MONAI's loader
and spatial transforms, in world coordinates against the source."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from cases import (
    TAXONOMY,
    TRAINING_CLASSES,
    lowest_classes,
    overlapped,
    read_records,
    training_masks,
    write_label_map,
    write_records,
)
from cases import TRAINING_SHAPE as SHAPE
from cases import class_masks as _class_masks
from cases import training_project as _project
from oracles import check_in_world, need, nnunet

import labelport
from labelport_writers import _training


def _dicom_image(root: Path, name: str) -> Any:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sorted(str(p) for p in (root / "images" / name / "CT").glob("*.dcm")))
    return reader.Execute()


def _same_grid(ours: Any, reference: Any) -> None:
    assert ours.GetSize() == reference.GetSize()
    assert np.allclose(ours.GetOrigin(), reference.GetOrigin(), atol=1e-4)
    assert np.allclose(ours.GetSpacing(), reference.GetSpacing(), atol=1e-5)
    assert np.allclose(ours.GetDirection(), reference.GetDirection(), atol=1e-6)


def test_combination_values_number_every_set_of_classes_once() -> None:
    for count in range(1, 7):
        combos = [c for size in range(1, count + 1) for c in itertools.combinations(range(1, count + 1), size)]
        values = [_training.combination_value(c, count) for c in combos]
        assert values == list(range(1, 2 ** count)), "consecutive, by size then lexicographic"
        assert [_training.combination(v, count) for v in values] == combos
    assert _training.combination_value((1, 2), 40) == 41 and _training.combination_value((1, 2, 3), 40) == \
        40 + math.comb(40, 2) + 1


def _check_nnunet(out: Path, root: Path, truth: dict[str, dict[int, np.ndarray]]) -> dict[str, Any]:
    dataset = json.loads((out / "dataset.json").read_text())
    found = nnunet(out)
    assert found["ok"], found["output"]
    assert "verify_dataset_integrity Done" in found["output"]
    names = [c["category"] for c in sorted(TAXONOMY["objectTypes"], key=lambda c: c["classId"])]
    assert dataset["numTraining"] == len(truth) and dataset["channel_names"] == {"0": "CT"}
    for case, masks in truth.items():
        reference = _dicom_image(root, case)
        for path in (out / "imagesTr" / f"{case}_0000.nii.gz", out / "labelsTr" / f"{case}.nii.gz"):
            _same_grid(sitk.ReadImage(str(path)), reference)
        image = sitk.ReadImage(str(out / "imagesTr" / f"{case}_0000.nii.gz"))
        assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))
        # nnU-Net's reader and LabelManager: each class's region is exactly the union of its instances
        classes = _class_masks(masks)
        regions = found["cases"][case]["masks"]
        assert len(regions) == len(names)
        for name, path in zip(names, regions):
            region = np.load(path)  # nnU-Net's (z, y, x) of the label file, which is on the DICOM grid
            assert np.array_equal(region.transpose(2, 1, 0), classes.get(name, np.zeros(SHAPE, bool))), name
    return dataset


def test_nnunet_keeps_overlapping_classes_as_regions(tmp_path: Path) -> None:
    root, truth = _project(tmp_path / "src", ["Case 001", "Case 002"])
    out = tmp_path / "Dataset001_Test"
    report = labelport.export(root, out, "nnunet")
    assert report.ok, report.failures
    dataset = _check_nnunet(out, root, truth)
    assert dataset["regions_class_order"] == [1, 2, 3]
    assert dataset["labels"]["background"] == 0 and 5 in dataset["labels"]["Tumor"]  # Liver+Tumor is value 5


@pytest.mark.parametrize("rule", ["lowest", "highest"])
def test_nnunet_flattens_overlaps_on_request(tmp_path: Path, rule: str) -> None:
    root, truth = _project(tmp_path / "src", ["Case 001"])
    out = tmp_path / "Dataset002_Flat"
    assert labelport.export(root, out, "nnunet", options={"nnunet": {"overlap": rule}}).ok
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "Liver": 1, "Kidney": 2, "Tumor": 3}
    assert "regions_class_order" not in dataset
    found = nnunet(out)
    assert found["ok"], found["output"][-3000:]
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labelsTr" / "Case 001.nii.gz"))).transpose(2, 1, 0)
    classes = _class_masks(truth["Case 001"])
    both = classes["Liver"] & classes["Tumor"] & ~classes["Kidney"]
    assert np.all(label[both] == (1 if rule == "lowest" else 3))
    assert np.array_equal(label > 0, classes["Liver"] | classes["Tumor"] | classes["Kidney"])


def test_nnunet_geometry_check_fails_when_the_affine_is_dropped(tmp_path: Path, monkeypatch: Any) -> None:
    root, _ = _project(tmp_path / "src", ["Case 001"])
    _identity_affine(monkeypatch)
    out = tmp_path / "Dataset003_Mutant"
    assert labelport.export(root, out, "nnunet").ok
    with pytest.raises(AssertionError):
        _same_grid(sitk.ReadImage(str(out / "labelsTr" / "Case 001.nii.gz")), _dicom_image(root, "Case 001"))


def test_cases_whose_series_disagree_are_refused_by_name(tmp_path: Path) -> None:
    root, _ = _project(tmp_path / "src", ["Case 001", "Case 002"])
    records = read_records(root)
    # a second series in the first task: Case 002's images, on another grid
    records[0]["series"].append({**records[1]["series"][0], "name": "PET"})
    del records[0]["series"][1]["segmentations"], records[0]["series"][1]["segmentMap"]
    write_records(root, records)
    report = labelport.export(root, tmp_path / "out", "nnunet")
    assert [f.task for f in report.failures] == ["Case 001"]
    assert "'PET'" in report.failures[0].message and "another grid" in report.failures[0].message
    # the same series by name as the only channel: now the cases differ in channels, named in the failure
    records[0]["series"][1] = {**records[0]["series"][0], "name": "PET", "segmentations": None, "segmentMap": {}}
    del records[0]["series"][1]["segmentations"]
    write_records(root, records)
    report = labelport.export(root, tmp_path / "out2", "nnunet")
    assert [f.task for f in report.failures] == ["(project)"]
    assert "'Case 001'" in report.failures[0].message and "['CT', 'PET']" in report.failures[0].message
    assert not (tmp_path / "out2" / "dataset.json").exists()
    fixed = labelport.export(root, tmp_path / "out2", "nnunet", options={"nnunet": {"channels": "CT"}})
    assert fixed.ok and json.loads((tmp_path / "out2" / "dataset.json").read_text())["channel_names"] == {"0": "CT"}


def _identity_affine(monkeypatch: Any) -> None:
    """Mutate the training writers: their cases lose their affine."""
    build = _training.build_cases

    def identity(*args: Any) -> Any:
        cases = build(*args)
        for _, case in cases:
            case.affine = np.eye(4)
        return cases

    monkeypatch.setattr("labelport_writers._training.build_cases", identity)


@pytest.mark.parametrize("mutant", [False, True], ids=["writer", "affine-dropped"])
def test_monai_loads_the_decathlon_layout_in_world_coordinates(tmp_path: Path, monkeypatch: Any,
                                                                 mutant: bool) -> None:
    need("torch")
    need("monai")
    root, truth = _project(tmp_path / "src", ["Case 001", "Case 002"])
    out = tmp_path / "Task01_Test"
    if mutant:
        _identity_affine(monkeypatch)
    assert labelport.export(root, out, "monai").ok
    if mutant:
        with pytest.raises(AssertionError):
            _check_monai(root, out, truth)
    else:
        _check_monai(root, out, truth)


def _check_monai(root: Path, out: Path, truth: dict[str, dict[int, np.ndarray]]) -> None:
    import monai
    from monai import transforms as mt

    items = monai.data.load_decathlon_datalist(str(out / "dataset.json"), data_list_key="training",
                                               base_dir=str(out))
    assert len(items) == 2
    spacing = (1.4, 1.6, 5.0)
    load = mt.Compose([mt.LoadImaged(["image", "label"]), mt.EnsureChannelFirstd(["image", "label"]),
                       mt.Orientationd(["image", "label"], axcodes="RAS"),
                       mt.Spacingd(["image", "label"], pixdim=spacing, mode=("bilinear", "nearest"))])
    affines = {task.name: task.series[0].label_map.affine for task in labelport.open_source(root)}
    for item, (case, masks) in zip(items, truth.items()):
        data = load(item)
        assert np.allclose(np.linalg.norm(np.asarray(data["image"].affine)[:3, :3], axis=0), spacing)
        check_in_world(np.asarray(data["image"][0]), np.asarray(data["label"][0]), np.asarray(data["image"].affine),
                       affines[case], lowest_classes(masks))


def test_one_case_per_series_for_series_on_different_grids(tmp_path: Path) -> None:
    root, truth = _project(tmp_path / "src", ["Case 001", "Case 002"])
    records = read_records(root)
    records[0]["series"].append({**records[1]["series"][0], "name": "Follow-up"})  # Case 002's grid and labels
    write_records(root, records[:1])
    out = tmp_path / "Dataset004_Series"
    assert not labelport.export(root, tmp_path / "refused", "nnunet").ok, "one case per task cannot mix grids"
    assert labelport.export(root, out, "nnunet", options={"nnunet": {"case": "series"}}).ok
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["numTraining"] == 2 and dataset["channel_names"] == {"0": "CT"}
    found = nnunet(out)
    assert found["ok"], found["output"][-3000:]
    names = [c["category"] for c in sorted(TAXONOMY["objectTypes"], key=lambda c: c["classId"])]
    for case, source in (("Case 001_CT", "Case 001"), ("Case 001_Follow-up", "Case 002")):
        _same_grid(sitk.ReadImage(str(out / "labelsTr" / f"{case}.nii.gz")), _dicom_image(root, source))
        classes = _class_masks(truth[source])
        for name, path in zip(names, found["cases"][case]["masks"]):
            assert np.array_equal(np.load(path).transpose(2, 1, 0), classes.get(name, np.zeros(SHAPE, bool)))


def test_label_maps_of_several_series_make_one_case(tmp_path: Path) -> None:
    """Two series on one grid, each with its own label map: two channels, and each class is the union of its
    instances in both label maps (overlaps between the maps become region values too)."""
    root, truth = _project(tmp_path / "src", ["Case 001"])
    records = read_records(root)
    second = training_masks(3)
    labels, groups = overlapped(second)
    source = records[0]["series"][0]
    affine = next(iter(labelport.open_source(root))).series[0].label_map.affine
    write_label_map(root / "segmentations" / "second.nii.gz", labels, affine)
    seg_map = {str(n): {"id": f"second-{n}", "category": TRAINING_CLASSES[n],
                        **({"overlappingGroups": groups[n]} if groups[n] else {})} for n in second}
    records[0]["series"].append({**source, "name": "CT again", "segmentations": "segmentations/second.nii.gz",
                                 "segmentMap": seg_map})
    write_records(root, records)
    out = tmp_path / "Dataset005_Two"
    assert labelport.export(root, out, "nnunet").ok
    assert json.loads((out / "dataset.json").read_text())["channel_names"] == {"0": "CT", "1": "CT again"}
    found = nnunet(out)
    assert found["ok"], found["output"][-3000:]
    first, other = _class_masks(truth["Case 001"]), _class_masks(second)
    names = [c["category"] for c in sorted(TAXONOMY["objectTypes"], key=lambda c: c["classId"])]
    for name, path in zip(names, found["cases"]["Case 001"]["masks"]):
        expected = first.get(name, np.zeros(SHAPE, bool)) | other.get(name, np.zeros(SHAPE, bool))
        assert np.array_equal(np.load(path).transpose(2, 1, 0), expected), name
