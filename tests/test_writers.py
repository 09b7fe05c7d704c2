"""The built-in writers, read back with nibabel, SimpleITK and pillow and compared with references computed
here from the source label map and segmentMap (plain numpy, not labelport's derived views)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from cases import write_label_map, write_records
from PIL import Image

import labelport
from labelport import color_layers
from labelport.testing import output_files

# -- references --------------------------------------------------------------------------------------------


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img: Any = nib.load(str(path))
    return np.asanyarray(img.dataobj), img.affine


def _class_ids(project: Path) -> dict[str, int]:
    tax = project / "taxonomy.json"
    if tax.is_file():
        return {o["category"]: o["classId"] for o in json.loads(tax.read_text())["objectTypes"]}
    return {c.name: c.class_id for c in labelport.LocalExport(project).taxonomy.categories}


def ref_instance(arr: np.ndarray, n: int, seg_map: dict[str, Any]) -> np.ndarray:
    return (arr == n) | np.isin(arr, seg_map[str(n)].get("overlappingGroups", []))


def ref_semantic(arr: np.ndarray, seg_map: dict[str, Any], classes: dict[str, int], rule: str) -> np.ndarray:
    out = np.zeros(arr.shape, np.int64)
    for value in np.unique(arr):
        if value == 0:
            continue
        members = [int(k) for k, e in seg_map.items() if int(k) == value or value in e.get("overlappingGroups", [])]
        ids = [classes[seg_map[str(m)]["category"]] for m in members]
        out[arr == value] = (max(ids) if rule == "highest" else min(ids)) + 1
    return out


def _series_pairs(project: Path, out: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    src = json.loads((project / "tasks.json").read_text())
    dst = {t["taskId"]: t for t in json.loads((out / "tasks.json").read_text())}
    pairs = []
    for task in src:
        for s_src, s_dst in zip(task["series"], dst[task["taskId"]]["series"], strict=True):
            if "segmentations" in s_src:
                pairs.append((s_src, s_dst))
    return pairs


def _source_array(project: Path, series: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    path = series["segmentations"]
    path = path[0] if isinstance(path, list) else path
    resolved = labelport.LocalExport(project).resolve(path)
    vol = labelport.read_label_nifti(resolved)
    return vol.array, vol.affine


def _export(project: Path, out: Path, writer: str, **options: Any) -> Path:
    report = labelport.export(project, out, [writer], options={writer: options})
    assert report.ok, [str(f) for f in report.failures]
    return out


def _files_on_disk(out: Path) -> set[str]:
    return set(output_files(out))


def _referenced(series: dict[str, Any]) -> set[str]:
    segs = series.get("segmentations", [])
    return set([segs] if isinstance(segs, str) else segs) | ({series["classMap"]} if "classMap" in series else set())


@pytest.fixture(params=["demo", "overlap", "thin", "large"])
def project(request: pytest.FixtureRequest, demo: Path, tmp_path: Path, make_case: Any) -> Path:
    if request.param == "demo":
        return demo
    if request.param == "large":  # (slices of 128 KiB: writers skip the map's empty 16 KiB blocks, see zero_runs)
        return make_case(tmp_path / "large", "--overlap", "--shape", "256", "256", "20", "--no-images")
    flag = "--overlap" if request.param == "overlap" else "--thin"
    return make_case(tmp_path / request.param, flag, "--shape", "64", "56", "24", "--dtype", "uint8", "--tasks", "2")


# -- the label map's extent and largest value ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_extent_and_largest_value_match_a_direct_search(seed: int) -> None:
    """``LabelMap.extent`` and ``top`` (one pass over the k slices, then an 8-byte-wide OR of the occupied
    ones) against ``np.argwhere`` and ``max``, over dtypes, orders and shapes whose slices are not a multiple of 8
    bytes, negative values included."""
    from labelport.model import LabelMap, LabelVolume

    rng = np.random.default_rng(seed)
    for _ in range(300):
        shape = tuple(int(n) for n in rng.integers(1, 10, 3))
        dtype = np.dtype(rng.choice(["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64"]))
        array = np.zeros(shape, dtype)
        for _ in range(rng.integers(0, 4)):
            array[tuple(rng.integers(0, n) for n in shape)] = rng.integers(-3 if dtype.kind == "i" else 1, 5)
        array = np.asfortranarray(array) if rng.random() < 0.7 else np.ascontiguousarray(array)
        label_map = LabelMap("a.nii.gz", lambda _, a=array: LabelVolume(a, np.eye(4), None))
        found = np.argwhere(array != 0)
        expected = tuple(slice(int(a), int(b) + 1) for a, b in zip(found.min(0), found.max(0))) if found.size \
            else None
        assert label_map.extent == expected, (shape, dtype, array.flags.f_contiguous)
        assert label_map.top == int(array.max())


# -- semantic-nifti ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["lowest", "highest"])
def test_semantic(project: Path, tmp_path: Path, rule: str) -> None:
    out = _export(project, tmp_path / "out", "semantic-nifti", overlap=rule)
    classes = _class_ids(project)
    for src, dst in _series_pairs(project, out):
        arr, affine = _source_array(project, src)
        got, got_affine = _read(out / dst["segmentations"])
        assert np.array_equal(got, ref_semantic(arr, src["segmentMap"], classes, rule))
        assert got.dtype == np.uint8 and np.allclose(got_affine, affine)
        assert dst["semanticMask"] is True and dst["binaryMask"] is False
        # one entry per class, keyed classId + 1, keeping the FIRST instance's id and attributes
        first: dict[str, dict[str, Any]] = {}
        for entry in src["segmentMap"].values():
            first.setdefault(str(classes[entry["category"]] + 1), entry)
        assert set(dst["segmentMap"]) == set(first)
        for key, entry in first.items():
            assert dst["segmentMap"][key]["id"] == entry["id"]
            assert dst["segmentMap"][key].get("attributes") == entry.get("attributes")
            assert dst["segmentMap"][key]["mask"] == dst["segmentations"]


def test_semantic_overlap_error_rule(tmp_path: Path, demo: Path, make_case: Any) -> None:
    # Patient 003's overlapping instances are both Tumor: no conflict
    refuse = {"semantic-nifti": {"overlap": "error"}}
    assert labelport.export(demo, tmp_path / "a", ["semantic-nifti"], options=refuse).ok
    case = make_case(tmp_path / "ov", "--overlap", "--shape", "64", "56", "24")  # Liver and Kidney overlap
    report = labelport.export(case, tmp_path / "b", ["semantic-nifti"], options=refuse)
    assert len(report.failures) == 1
    assert "overlap group 6 mixes classes Kidney, Liver" in report.failures[0].message
    assert "series 'CT Axial'" in report.failures[0].message
    assert not (tmp_path / "b" / "segmentations").exists() or not any((tmp_path / "b" / "segmentations").rglob("*.gz"))


def test_semantic_class_without_voxels(demo: Path, tmp_path: Path) -> None:
    tasks = json.loads((demo / "tasks.json").read_text())
    tasks[0]["series"][0]["segmentMap"]["9"] = {"id": "ghost", "category": "Tumor", "attributes": {"Grade": "Low"}}
    (demo / "tasks.json").write_text(json.dumps(tasks))
    out = _export(demo, tmp_path / "o", "semantic-nifti")
    seg_map = json.loads((out / "tasks.json").read_text())[0]["series"][0]["segmentMap"]
    assert seg_map["3"]["id"] == "ghost"  # Tumor is class 2
    assert 3 not in np.unique(_read(out / "segmentations/Patient 001/CT.nii.gz")[0])
    # and the binary writer states what it does with it: an empty file by default, none with empty=skip
    out = _export(demo, tmp_path / "b", "binary-mask")
    ghost = out / "segmentations/Patient 001/CT/instance-9.nii.gz"
    assert ghost.is_file() and not _read(ghost)[0].any()
    out = _export(demo, tmp_path / "c", "binary-mask", empty="skip")
    entry = json.loads((out / "tasks.json").read_text())[0]["series"][0]
    assert "mask" not in entry["segmentMap"]["9"]
    assert not (out / "segmentations/Patient 001/CT/instance-9.nii.gz").exists()
    assert _referenced(entry) == {f for f in _files_on_disk(out) if f.startswith("segmentations/Patient 001/")}


# -- binary-mask -------------------------------------------------------------------------------------------


def test_binary_per_instance(project: Path, tmp_path: Path) -> None:
    out = _export(project, tmp_path / "out", "binary-mask")
    referenced: set[str] = set()
    for src, dst in _series_pairs(project, out):
        arr, affine = _source_array(project, src)
        assert dst["binaryMask"] is True
        referenced |= _referenced(dst)
        for key in src["segmentMap"]:
            entry = dst["segmentMap"][key]
            assert "overlappingGroups" not in entry
            got, got_affine = _read(out / entry["mask"])
            assert got.dtype == np.uint8 and set(np.unique(got)) <= {0, 1}
            assert np.array_equal(got.astype(bool), ref_instance(arr, int(key), src["segmentMap"])), key
            assert np.allclose(got_affine, affine)
            assert entry["mask"].endswith(f"/instance-{key}.nii.gz")
    assert referenced == _files_on_disk(out)


def test_binary_per_class(project: Path, tmp_path: Path) -> None:
    out = _export(project, tmp_path / "out", "binary-mask", per="class")
    classes = _class_ids(project)
    for src, dst in _series_pairs(project, out):
        arr, _ = _source_array(project, src)
        expected: dict[int, np.ndarray] = {}
        for key, entry in src["segmentMap"].items():
            c = classes[entry["category"]]
            expected[c] = expected.get(c, np.zeros(arr.shape, bool)) | ref_instance(arr, int(key), src["segmentMap"])
        assert set(dst["segmentMap"]) == {str(c + 1) for c in expected}
        for c, mask in expected.items():
            path = dst["segmentMap"][str(c + 1)]["mask"]
            assert path.endswith(f"/category-{c + 1}.nii.gz")
            assert np.array_equal(_read(out / path)[0].astype(bool), mask)


# -- overlapping -------------------------------------------------------------------------------------------


def test_overlapping_layers(project: Path, tmp_path: Path) -> None:
    out = _export(project, tmp_path / "out", "overlapping")
    for src, dst in _series_pairs(project, out):
        arr, affine = _source_array(project, src)
        layers = {p: _read(out / p) for p in dst["segmentations"]}
        assert all(np.allclose(a, affine) for _, a in layers.values())
        assert all(v.dtype == arr.dtype for v, _ in layers.values())
        groups = {g for e in src["segmentMap"].values() for g in e.get("overlappingGroups", [])}
        assert len(layers) == (2 if groups & set(np.unique(arr).tolist()) else 1)
        seen = []
        for key, entry in dst["segmentMap"].items():
            ref = ref_instance(arr, int(key), src["segmentMap"])
            layer, _ = layers[entry["mask"]]
            assert entry["mask"].endswith(f"layer-{entry['layer']}.nii.gz")
            assert np.array_equal(layer == int(key), ref), key  # whole, and only itself
            seen.append(int(key))
        assert sorted(seen) == sorted(map(int, src["segmentMap"]))
        for layer, _ in layers.values():  # no group id remains
            assert set(np.unique(layer).tolist()) <= {0, *map(int, src["segmentMap"])}


def test_k_mutually_overlapping_instances_give_k_layers(tmp_path: Path) -> None:
    arr = np.zeros((12, 12, 3), np.uint8)
    arr[1:7, 1:7, :] = 1
    arr[5:11, 1:7, :] = 2
    arr[3:9, 5:11, :] = 3
    arr[5:7, 1:5, :] = 4   # 1 & 2
    arr[3:5, 5:7, :] = 5   # 1 & 3
    arr[7:9, 5:7, :] = 6   # 2 & 3
    arr[5:7, 5:7, :] = 7   # 1 & 2 & 3
    project = tmp_path / "p"
    (project / "segmentations").mkdir(parents=True)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(project / "segmentations" / "t.nii.gz"))
    seg_map = {"1": {"category": "A", "overlappingGroups": [4, 5, 7]},
               "2": {"category": "A", "overlappingGroups": [4, 6, 7]},
               "3": {"category": "B", "overlappingGroups": [5, 6, 7]}}
    (project / "tasks.json").write_text(json.dumps([{"taskId": "t", "name": "t", "series": [
        {"name": "s", "segmentations": "segmentations/t.nii.gz", "segmentMap": seg_map}]}]))
    out = _export(project, tmp_path / "o", "overlapping")
    entry = json.loads((out / "tasks.json").read_text())[0]["series"][0]
    assert len(entry["segmentations"]) == 3
    for key in seg_map:
        layer = _read(out / entry["segmentMap"][key]["mask"])[0]
        assert np.array_equal(layer == int(key), ref_instance(arr, int(key), seg_map))


def test_color_layers() -> None:
    clique = {frozenset(p) for p in [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]}
    assert color_layers([1, 2, 3, 4], clique) == [[1], [2], [3], [4]]
    assert color_layers([1, 2, 3], set()) == [[1, 2, 3]]
    odd_cycle = {frozenset((i, i % 5 + 1)) for i in range(1, 6)}
    assert len(color_layers([1, 2, 3, 4, 5], odd_cycle)) == 3
    bipartite = {frozenset((a, b)) for a in (1, 2, 3) for b in (4, 5, 6)}
    assert color_layers([1, 2, 3, 4, 5, 6], bipartite) == [[1, 2, 3], [4, 5, 6]]
    # a crown graph, where greedy colouring in id order needs 3 layers; DSATUR finds 2
    crown = {frozenset((a, b)) for a, b in [(1, 4), (1, 6), (2, 3), (2, 5), (3, 6), (4, 5)]}
    layers = color_layers([1, 2, 3, 4, 5, 6], crown)
    assert len(layers) == 2 and all(not any(frozenset((a, b)) in crown for a in L for b in L) for L in layers)


# -- png ---------------------------------------------------------------------------------------------------


def _display_reference(volume: np.ndarray, affine: np.ndarray, axcodes: tuple[str, str, str]) -> np.ndarray:
    """Independent of the writer: resample by world direction, voxel by voxel order of the axes."""
    current = nib.aff2axcodes(affine)
    opposite = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}
    order, flips = [], []
    for code in axcodes:
        for axis, c in enumerate(current):
            if c == code or c == opposite[code]:
                order.append(axis)
                flips.append(c != code)
    out = np.transpose(volume, order)
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis)
    return out


def test_png_color(project: Path, tmp_path: Path) -> None:
    out = _export(project, tmp_path / "out", "png")
    classes = _class_ids(project)
    colours = {o["category"]: o["color"] for o in json.loads((project / "taxonomy.json").read_text())["objectTypes"]} \
        if (project / "taxonomy.json").is_file() else {}
    for src, dst in _series_pairs(project, out):
        arr, affine = _source_array(project, src)
        semantic = _display_reference(ref_semantic(arr, src["segmentMap"], classes, "lowest"), affine, ("L", "P", "S"))
        assert dst["pngMask"] is True and len(dst["segmentations"]) == semantic.shape[2]
        for k, rel in enumerate(dst["segmentations"]):
            image = Image.open(out / rel)
            assert image.mode == "P"
            got = np.asarray(image)
            assert np.array_equal(got, semantic[:, :, k].T), rel
            palette = image.getpalette()
            for category, class_id in classes.items():
                if category in colours and (got == class_id + 1).any():
                    hexcol = colours[category].lstrip("#")
                    rgb = [int(hexcol[i:i + 2], 16) for i in (0, 2, 4)]
                    assert palette[3 * (class_id + 1): 3 * (class_id + 2)] == rgb
        class_map = json.loads((out / dst["classMap"]).read_text())
        assert set(class_map) == {e["category"] for e in src["segmentMap"].values()}


@pytest.mark.parametrize(("bits", "dtype"), [(8, np.uint8), (16, np.uint16)])
def test_png_index(demo: Path, tmp_path: Path, bits: int, dtype: type) -> None:
    out = _export(demo, tmp_path / "out", "png", mode="index", bits=str(bits), axis="coronal")
    classes = _class_ids(demo)
    for src, dst in _series_pairs(demo, out):
        arr, affine = _source_array(demo, src)
        ref = _display_reference(ref_semantic(arr, src["segmentMap"], classes, "lowest"), affine, ("L", "I", "P"))
        for k, rel in enumerate(dst["segmentations"]):
            got = np.asarray(Image.open(out / rel))
            assert got.dtype == dtype and np.array_equal(got, ref[:, :, k].T), rel


def test_png_binary(demo: Path, tmp_path: Path) -> None:
    out = _export(demo, tmp_path / "out", "png", mode="binary", axis="sagittal")
    for src, dst in _series_pairs(demo, out):
        arr, affine = _source_array(demo, src)
        for key in src["segmentMap"]:
            ref = _display_reference(ref_instance(arr, int(key), src["segmentMap"]), affine, ("P", "I", "L"))
            paths = dst["segmentMap"][key]["mask"]
            assert len(paths) == ref.shape[2] and all(f"/mask-{key}/" in p for p in paths)
            stack = np.stack([np.asarray(Image.open(out / p)) for p in paths], axis=2)
            assert set(np.unique(stack)) <= {0, 255}
            assert np.array_equal(np.transpose(stack, (1, 0, 2)) == 255, ref)


def test_png_orientation_on_an_asymmetric_shape(tmp_path: Path) -> None:
    """The same world object stored in RAS and in LPS voxel order gives identical PNGs, shown as a viewer
    shows it: axial slices with the patient's right on the left and anterior at the top."""
    ras = np.zeros((10, 8, 4), np.uint8)  # i -> Right, j -> Anterior, k -> Superior
    ras[7:9, 5:7, 2] = 1  # patient's right (high i) and anterior (high j), slice k = 2
    ras[7:9, 1, 2] = 2    # a posterior tail of another class
    ras_affine = np.diag([1.0, 1.0, 2.0, 1.0])
    lps = ras[::-1, ::-1, :].copy()  # i -> Left, j -> Posterior
    lps_affine = ras_affine @ np.array([[-1, 0, 0, 9], [0, -1, 0, 7], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    assert np.allclose(lps_affine @ [0, 0, 0, 1], ras_affine @ [9, 7, 0, 1])  # same world grid
    outs = []
    for name, data, affine in [("ras", ras, ras_affine), ("lps", lps, lps_affine)]:
        project = tmp_path / name
        (project / "segmentations").mkdir(parents=True)
        nib.save(nib.Nifti1Image(data, affine), str(project / "segmentations" / "m.nii.gz"))
        (project / "tasks.json").write_text(json.dumps([{"taskId": "t", "name": "t", "series": [
            {"name": "s", "segmentations": "segmentations/m.nii.gz",
             "segmentMap": {"1": {"category": "Blob"}, "2": {"category": "Tail"}}}]}]))
        outs.append(_export(project, tmp_path / f"{name}-out", "png", mode="index"))
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*.png"))
    assert len(files) == 4
    for rel in files:
        assert np.array_equal(np.asarray(Image.open(outs[0] / rel)), np.asarray(Image.open(outs[1] / rel)))
    plane = np.asarray(Image.open(outs[0] / "segmentations/t/s/s-002.png"))
    assert plane.shape == (8, 10)  # rows = anterior-posterior, columns = right-left
    rows, cols = np.nonzero(plane == 1)
    assert rows.max() <= 2 and cols.max() <= 2  # anterior -> top rows; patient's right -> left columns
    rows, _ = np.nonzero(plane == 2)
    assert rows.min() == 6  # the posterior tail is near the bottom


def test_png_2d_series(tmp_path: Path) -> None:
    flat = np.zeros((6, 4, 1), np.uint8)
    flat[4, 1, 0] = 1  # column i = 4, row j = 1
    project = tmp_path / "p"
    (project / "segmentations").mkdir(parents=True)
    nib.save(nib.Nifti1Image(flat, np.eye(4)), str(project / "segmentations" / "x.nii.gz"))
    (project / "tasks.json").write_text(json.dumps([{"taskId": "t", "name": "X-ray", "series": [
        {"name": "PA", "segmentations": "segmentations/x.nii.gz", "segmentMap": {"1": {"category": "Nodule"}}}]}]))
    out = _export(project, tmp_path / "o", "png", mode="index")
    entry = json.loads((out / "tasks.json").read_text())[0]["series"][0]
    assert entry["segmentations"] == ["segmentations/X-ray/PA/PA.png"]
    plane = np.asarray(Image.open(out / entry["segmentations"][0]))
    assert plane.shape == (4, 6) and plane[1, 4] == 1 and plane.sum() == 1


# -- mhd ---------------------------------------------------------------------------------------------------


def test_mhd(project: Path, tmp_path: Path) -> None:
    out = _export(project, tmp_path / "out", "mhd")
    nifti = _export(project, tmp_path / "nifti", "nifti")
    for (src, dst), (_, ref) in zip(_series_pairs(project, out), _series_pairs(project, nifti), strict=True):
        arr, _ = _source_array(project, src)
        header, data = dst["segmentations"]
        assert header.endswith(".mhd") and data.endswith(".zraw")
        image = sitk.ReadImage(str(out / header))
        assert np.array_equal(sitk.GetArrayFromImage(image).T, arr)
        assert sitk.GetArrayFromImage(image).dtype == arr.dtype
        same = sitk.ReadImage(str(nifti / ref["segmentations"]))
        assert np.allclose(image.GetOrigin(), same.GetOrigin(), atol=1e-4)
        assert np.allclose(image.GetSpacing(), same.GetSpacing(), atol=1e-5)
        assert np.allclose(image.GetDirection(), same.GetDirection(), atol=1e-5)
        corner = [s - 1 for s in image.GetSize()]
        assert np.allclose(image.TransformIndexToPhysicalPoint(corner), same.TransformIndexToPhysicalPoint(corner),
                           atol=1e-3)
        assert dst["segmentMap"] == {k: {**v, "mask": header} for k, v in src["segmentMap"].items()}


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32"])
def test_mhd_header_is_the_one_itk_writes(tmp_path: Path, dtype: str) -> None:
    """Our MetaImage, written without ITK, against SimpleITK writing the same array and geometry (an oblique,
    flipped grid): the same header apart from the compressed size, the same voxels and geometry when read."""
    from labelport_writers.mhd import itk_geometry, mhd_header

    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    affine = np.array([[-0.8 * c, 0.9 * s, 0, 12.5], [-0.8 * s, -0.9 * c, 0, -3.25], [0, 0, -2.5, 40], [0, 0, 0, 1]])
    array = np.random.default_rng(3).integers(0, 7, (9, 8, 5)).astype(dtype)
    image = sitk.GetImageFromArray(array.T)
    spacing, origin, direction = itk_geometry(affine)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    sitk.WriteImage(image, str(tmp_path / "itk.mhd"), useCompression=True)
    theirs = (tmp_path / "itk.mhd").read_text().splitlines()
    ours = mhd_header(array.shape, array.dtype, affine, "itk.zraw", 123).splitlines()
    assert [line for line in ours if not line.startswith("CompressedDataSize")] == \
        [line for line in theirs if not line.startswith("CompressedDataSize")]
    src = tmp_path / "src"
    write_label_map(src / "segmentations" / "a.nii.gz", array, affine)
    write_records(src, [{"taskId": "t", "name": "t", "series": [{"name": "S", "segmentations": "segmentations/a.nii.gz",
                                                                "segmentMap": {"1": {"category": "Liver"}}}]}])
    report = labelport.export(src, tmp_path / "out", "mhd", unknown_labels="warn")
    assert report.ok, report.failures
    back = sitk.ReadImage(str(tmp_path / "out" / "segmentations" / "t" / "S.mhd"))
    assert np.array_equal(sitk.GetArrayFromImage(back).T, array) and sitk.GetArrayFromImage(back).dtype == dtype
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):
        assert np.allclose(getattr(back, get)(), getattr(image, get)(), atol=1e-9), get
