"""labelport.Dataset for training code: geometry carried into MONAI and TorchIO (judged in world coordinates
after their own spatial transforms), dtypes torch's losses take, collate, transform and caches."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from cases import TRAINING_SHAPE, lowest_classes, read_records, training_masks, training_project, write_records
from oracles import check_in_world, need

import labelport
from labelport import SourceError

SPACING = (1.4, 1.6, 5.0)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return training_project(tmp_path / "src", ["Case 001", "Case 002"])


def _affines(root: Path) -> dict[str, np.ndarray]:
    return {task.name: task.series[0].label_map.affine for task in labelport.open_source(root)}


def test_items_hold_arrays_in_the_dtypes_training_takes(project: tuple[Path, Any]) -> None:
    root, truth = project
    semantic = labelport.Dataset(root, target="semantic")[0]
    assert semantic["label"].dtype == np.int64 and semantic["image"].shape == TRAINING_SHAPE
    assert np.array_equal(semantic["label"], lowest_classes(truth["Case 001"]))
    assert labelport.Dataset(root, target="instances", label_dtype=np.int32)[0]["label"].dtype == np.int32
    binary = labelport.Dataset(root, target="binary", images=False)[0]["label"]
    assert binary.dtype == np.uint8 and binary.shape == (4, *TRAINING_SHAPE)
    assert np.array_equal(binary[1].astype(bool), truth["Case 001"][2])
    seen = []
    ds = labelport.Dataset(root, images=False, transform=lambda item: seen.append(item["task_name"]) or item["label"])
    assert ds[1].shape == TRAINING_SHAPE and seen == ["Case 002"]
    with pytest.raises(ValueError, match="integer"):
        labelport.Dataset(root, label_dtype=np.float32)


def test_images_requested_from_a_project_without_them_fail_at_once(project: tuple[Path, Any]) -> None:
    root, _ = project
    records = read_records(root)
    del records[1]["series"][0]["items"]
    write_records(root, records)
    with pytest.raises(SourceError, match=r"task 'Case 002', series 'CT' have no image files.*images=False"):
        labelport.Dataset(root)
    assert len(labelport.Dataset(root, images=False)) == 2


def _monai_pipeline() -> Any:
    from monai import transforms as mt

    return mt.Compose([mt.Orientationd(["image", "label"], axcodes="RAS"),
                       mt.Spacingd(["image", "label"], pixdim=SPACING, mode=("bilinear", "nearest"))])


def _drop_affines(monkeypatch: Any) -> None:
    """Mutate the Dataset: its items lose their affine (identity), as plain arrays would."""
    load = labelport.Dataset._load

    def identity(self: Any, index: int) -> dict[str, Any]:
        item = load(self, index)
        item["affine"] = np.eye(4)
        return item

    monkeypatch.setattr(labelport.Dataset, "_load", identity)


def _judged(check: Any, mutant: bool) -> None:
    if mutant:
        with pytest.raises(AssertionError):
            check()
    else:
        check()


MUTANT = pytest.mark.parametrize("mutant", [False, True], ids=["dataset", "affine-dropped"])


@MUTANT
def test_monai_transforms_see_the_geometry(project: tuple[Path, Any], monkeypatch: Any, mutant: bool) -> None:
    need("torch")
    need("monai")
    root, truth = project
    affines = _affines(root)
    if mutant:
        _drop_affines(monkeypatch)
    ds = labelport.Dataset(root, target="semantic").as_monai()
    pipeline = _monai_pipeline()

    def check() -> None:
        for n, name in enumerate(truth):
            data = pipeline(ds[n])
            image, label = data["image"], data["label"]
            assert image.shape[0] == 1
            check_in_world(np.asarray(image[0]), np.asarray(label[0]), np.asarray(image.affine), affines[name],
                           lowest_classes(truth[name]))

    _judged(check, mutant)


def test_plain_items_lose_the_geometry_in_monai(project: tuple[Path, Any]) -> None:
    """Why as_monai exists: plain arrays reach MONAI's spatial transforms as 1 mm voxels, and the world check
    catches it."""
    need("torch")
    need("monai")
    from monai import transforms as mt

    root, truth = project
    item = labelport.Dataset(root, target="semantic")[0]
    data = mt.Compose([mt.EnsureChannelFirstd(["image", "label"], channel_dim="no_channel"),
                       _monai_pipeline()])(item)
    with pytest.raises(AssertionError):
        check_in_world(np.asarray(data["image"][0]), np.asarray(data["label"][0]), np.asarray(data["image"].affine),
                       _affines(root)["Case 001"], lowest_classes(truth["Case 001"]))


@MUTANT
def test_torchio_subjects_carry_the_geometry(project: tuple[Path, Any], monkeypatch: Any, mutant: bool) -> None:
    need("torch")
    tio = need("torchio")
    root, truth = project
    affines = _affines(root)
    if mutant:
        _drop_affines(monkeypatch)
    subjects = labelport.Dataset(root, target="semantic").as_torchio()
    # 1.5 source voxels: TorchIO keeps the corner, so voxel centres fall between source centres, not on ties
    transform = tio.Compose([tio.ToCanonical(), tio.Resample((1.05, 1.2, 3.75))])

    def check() -> None:
        for n, name in enumerate(truth):
            subject = transform(subjects[n])
            assert subject["task_name"] == name
            check_in_world(subject["image"].data[0].numpy(), subject["label"].data[0].numpy(),
                           subject["image"].affine, affines[name], lowest_classes(truth[name]),
                           atol=0.5 + 1e-3)  # TorchIO resamples the int16 CT back into int16

    _judged(check, mutant)


def test_dataloader_batches_volumes_of_different_shapes(tmp_path: Path, project: tuple[Path, Any]) -> None:
    torch = need("torch")
    root, _ = project
    records = read_records(root)
    small = nib.load(str(root / records[1]["series"][0]["segmentations"]))
    cropped = nib.Nifti1Image(np.asarray(small.dataobj)[:, :, :5], small.affine)  # type: ignore[attr-defined]
    nib.save(cropped, str(root / "small.nii.gz"))
    records[1]["series"][0]["segmentations"] = "small.nii.gz"
    records[1]["series"][0].pop("imageHeaders")
    write_records(root, records)
    ds = labelport.Dataset(root, target="semantic", images=False)
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=labelport.collate))
    (batch,) = batches
    assert batch["task_name"] == ["Case 001", "Case 002"]
    assert [tuple(t.shape) for t in batch["label"]] == [TRAINING_SHAPE, (*TRAINING_SHAPE[:2], 5)]
    assert all(t.dtype == torch.int64 for t in batch["label"])
    assert [len(s) for s in batch["segments"]] == [4, 4]
    assert tuple(batch["affine"].shape) == (2, 4, 4), "same-shape arrays are stacked"
    # a cross-entropy loss takes the targets as they come
    logits = torch.zeros((1, 4, *TRAINING_SHAPE))
    assert torch.nn.functional.cross_entropy(logits, batch["label"][0][None]).item() > 0


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_cached_items_always_equal_fresh_ones(tmp_path: Path, project: tuple[Path, Any], cache: str) -> None:
    """Random edits of everything an item is made from; after each, the cached dataset (made anew, as a new
    epoch or a new process would) gives what an uncached one gives."""
    root, _ = project
    rng = random.Random(7)
    store = tmp_path / "cache"
    taxonomy = json.loads((root / "taxonomy.json").read_text())
    kinds = ["labels", "record", "taxonomy", "image", "none"] * 2
    rng.shuffle(kinds)
    for step, kind in enumerate(kinds):
        records = read_records(root)
        task = rng.randrange(2)
        series = records[task]["series"][0]
        if kind == "labels":
            masks = training_masks(rng.randrange(5))
            path = root / series["segmentations"]
            img: Any = nib.load(str(path))
            data = np.asarray(img.dataobj).copy()
            data[masks[1] & (data == 0)] = 1
            nib.save(nib.Nifti1Image(data, img.affine, img.header), str(path))
        elif kind == "record":
            entry = series["segmentMap"][str(rng.choice([1, 2, 3, 4]))]
            entry["category"] = rng.choice(["Liver", "Kidney", "Tumor"])
            write_records(root, records)
        elif kind == "taxonomy":
            ids = [obj["classId"] for obj in taxonomy["objectTypes"]]
            for obj, class_id in zip(taxonomy["objectTypes"], ids[1:] + ids[:1]):  # every class moves
                obj["classId"] = class_id
            (root / "taxonomy.json").write_text(json.dumps(taxonomy))
        elif kind == "image":
            dicom = root / series["items"][rng.randrange(len(series["items"]))]
            raw = bytearray(dicom.read_bytes())
            raw[-2:] = bytes([rng.randrange(256), 0])  # one pixel of the slice
            dicom.write_bytes(bytes(raw))
        fresh = labelport.Dataset(root, target="semantic")
        cached = labelport.Dataset(root, target="semantic", cache=cache, cache_dir=store)  # type: ignore[arg-type]
        for n in range(len(fresh)):
            want, got = fresh[n], cached[n]
            again = cached[n]
            for item in (got, again):
                assert set(item) == set(want), (step, kind)
                for key, value in want.items():
                    if isinstance(value, np.ndarray):
                        assert np.array_equal(item[key], value) and item[key].dtype == value.dtype, (step, kind, key)
                    else:
                        assert item[key] == value, (step, kind, key)
            got["label"][...] = 99  # changing an item never reaches the cache
            assert not np.any(cached[n]["label"] == 99)
    if cache == "disk":
        assert any(store.glob("*.npz"))
