"""The local source and the canonical model it builds."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

import labelport
from labelport import LocalExport, SourceError, TaskFilter


def test_demo_tasks_and_segments(demo: Path) -> None:
    src = LocalExport(demo)
    tasks = list(src)
    assert [t.name for t in tasks] == ["Patient 001", "Patient 002", "Patient 003", "Patient 004"]
    p1 = tasks[0]
    seg = p1.series[0].segments
    assert [(s.instance_id, s.category, s.class_id) for s in seg.values()] == [
        (1, "Liver", 0), (2, "Kidney", 1), (3, "Kidney", 1)]
    assert seg[2].attributes == {"Side": "L"} and seg[1].color == (0xE6, 0x19, 0x4B)
    assert p1.series[0].annotations["measurements"][0]["length"] == 11.2
    assert p1.classification == {"id": "c1", "attributes": {"Quality": "Good"}}
    assert p1.record["x-custom"] == {"keep": [1, 2, 3]}
    lm = p1.series[0].label_map
    assert lm is not None and not lm.loaded
    ref = nib.load(str(demo / "segmentations/Patient 001/CT.nii.gz"))
    assert lm.array.dtype == np.uint8 and np.array_equal(lm.array, np.asanyarray(ref.dataobj))
    assert np.allclose(lm.affine, ref.affine)
    assert not lm.array.flags.writeable
    p1.release()
    assert not lm.loaded


def test_overlap_groups(demo: Path) -> None:
    task = list(LocalExport(demo))[2]
    series = task.series[0]
    assert series.overlap_groups == {3: frozenset({1, 2})}
    assert series.unknown_values() == []


@pytest.mark.parametrize("series_index", [0, 1])
def test_project_relative_and_list_paths(demo: Path, series_index: int) -> None:
    """Patient 002 writes '<project>/segmentations/...' (once as a list); both resolve, whatever the folder name."""
    renamed = demo.rename(demo.parent / "another-name")
    task = list(LocalExport(renamed))[1]
    lm = task.series[series_index].label_map
    assert lm is not None and Path(lm.path).is_file()


def test_nii_with_extension_and_vox_offset(demo: Path) -> None:
    """The T2 map is an uncompressed .nii whose voxels start after a header extension (byte 400)."""
    path = demo / "segmentations/Patient 002/T2 axial.nii"
    raw = path.read_bytes()
    assert struct.unpack("<f", raw[108:112])[0] == 400.0
    series = list(LocalExport(demo))[1].series[1]
    expected = np.frombuffer(raw[400:], np.uint8).reshape((20, 16, 8), order="F")
    assert np.array_equal(series.label_map.array, expected)
    assert set(np.unique(expected)) == {0, 1, 2}


def _rewrite_with_offset(path: Path, offset: int) -> None:
    """Move the voxel data of a .nii.gz to a larger vox_offset (legal NIfTI the SDK misreads)."""
    img = nib.load(str(path))
    header = img.header.copy()
    header["vox_offset"] = offset
    raw = header.binaryblock + b"\x00" * (offset - 348) + np.asanyarray(img.dataobj).tobytes(order="F")
    path.with_suffix("").write_bytes(raw)  # .nii.gz -> .nii
    path.unlink()


def test_large_vox_offset(demo: Path) -> None:
    path = demo / "segmentations/Patient 001/CT.nii.gz"
    before = np.asanyarray(nib.load(str(path)).dataobj)
    _rewrite_with_offset(path, 1024)
    records = json.loads((demo / "tasks.json").read_text())
    records[0]["series"][0]["segmentations"] = "segmentations/Patient 001/CT.nii"
    (demo / "tasks.json").write_text(json.dumps(records))
    got = list(LocalExport(demo))[0].series[0].label_map.array
    assert np.array_equal(got, before)


def test_other_encodings(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.int16).reshape(4, 3, 2) % 5
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    # big-endian NIfTI-1
    img = nib.Nifti1Image(data.astype(">i2"), aff)
    nib.save(img, str(tmp_path / "be.nii"))
    vol = labelport.read_label_nifti(str(tmp_path / "be.nii"))
    assert vol.array.dtype == np.int16 and vol.array.dtype.isnative and np.array_equal(vol.array, data)
    # NIfTI-2
    nib.save(nib.Nifti2Image(data.astype(np.int32), aff), str(tmp_path / "n2.nii.gz"))
    assert np.array_equal(labelport.read_label_nifti(str(tmp_path / "n2.nii.gz")).array, data)
    # 2D becomes (i, j, 1)
    nib.save(nib.Nifti1Image(data[:, :, 0].astype(np.uint8), aff), str(tmp_path / "flat.nii.gz"))
    assert labelport.read_label_nifti(str(tmp_path / "flat.nii.gz")).array.shape == (4, 3, 1)
    # whole-number floats become integers; fractions are refused
    nib.save(nib.Nifti1Image(data.astype(np.float32), aff), str(tmp_path / "f.nii.gz"))
    vol = labelport.read_label_nifti(str(tmp_path / "f.nii.gz"))
    assert vol.array.dtype == np.uint8 and np.array_equal(vol.array, data)
    nib.save(nib.Nifti1Image(data.astype(np.float32) + 0.5, aff), str(tmp_path / "g.nii.gz"))
    with pytest.raises(SourceError, match="non-integer"):
        labelport.read_label_nifti(str(tmp_path / "g.nii.gz"))
    # a 4D map with a real fourth dimension is refused
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 2), np.uint8), aff), str(tmp_path / "4d.nii.gz"))
    with pytest.raises(SourceError, match="4 dimensions"):
        labelport.read_label_nifti(str(tmp_path / "4d.nii.gz"))


@pytest.mark.parametrize("seed", range(3))
def test_slice_peaks_worked_out_while_reading_are_the_arrays_own(tmp_path: Path, seed: int,
                                                                  monkeypatch: Any) -> None:
    """The largest value of each k slice and of each block of a slice, taken from each piece as it is inflated,
    against ``slice_peaks`` and ``block_peaks`` of the array read, and the label map's largest value and extent
    from them against numpy: pieces of one slice or many (the piece size made small), slices larger than a
    piece, one slice, blocks of one byte or more, a voxel offset that puts voxels in the header's read, signed
    values, gzip or not. Maps stored big-endian or scaled are converted, so their
    peaks are worked out from the array."""
    from labelport import model, niftiio
    from labelport.model import LabelMap, block_peaks, slice_peaks

    rng = np.random.default_rng(seed)
    monkeypatch.setattr(niftiio, "_CHUNK", int(rng.choice([64, 256, 4096])))
    monkeypatch.setattr(model, "PEAK_BLOCK", int(rng.choice([1, 6, 16, 1 << 14])))  # (blocks of a slice: many)
    for n in range(12):
        shape = tuple(int(v) for v in rng.integers(1, 9, 3))
        dtype = np.dtype(str(rng.choice(["uint8", "int8", "uint16", "int16", "int32", "<u2", ">u2", ">i4"])))
        data = np.zeros(shape, dtype)
        for _ in range(rng.integers(0, 6)):
            data[tuple(rng.integers(0, v) for v in shape)] = rng.integers(-4 if dtype.kind == "i" else 1, 9)
        header = nib.Nifti1Header(endianness=">" if dtype.byteorder == ">" else "<")
        header.set_data_dtype(dtype)
        image = nib.Nifti1Image(data, np.diag([2.0, 3.0, 4.0, 1.0]), header=header)
        if n % 4 == 3:
            image.header.set_slope_inter(2, 0)
        path = str(tmp_path / f"m{n}.nii{'.gz' if n % 2 else ''}")
        nib.save(image, path)
        volume = niftiio.read_label_nifti(path)
        assert nib.load(path).header.endianness == (">" if dtype.byteorder == ">" else "<")
        converted = dtype.byteorder == ">" or n % 4 == 3
        assert (volume.peaks is None) == converted == (volume.block_peaks is None), (dtype, n)
        if not converted:
            assert np.array_equal(volume.peaks, slice_peaks(volume.array)), (shape, dtype)
            assert np.array_equal(volume.block_peaks, block_peaks(volume.array)), (shape, dtype)
        label_map = LabelMap(path, niftiio.read_label_nifti)
        found = np.argwhere(volume.array != 0)
        assert label_map.extent == (tuple(slice(int(a), int(b) + 1) for a, b in zip(found.min(0), found.max(0)))
                                    if found.size else None)
        assert label_map.top == int(volume.array.max())


def test_derived_taxonomy(demo: Path) -> None:
    (demo / "taxonomy.json").unlink()
    src = LocalExport(demo)
    assert src.taxonomy.derived
    # by category name: the ids do not depend on which task comes first
    assert [(c.name, c.class_id) for c in src.taxonomy.categories] == [("Kidney", 0), ("Liver", 1), ("Tumor", 2)]
    assert [c.color for c in src.taxonomy.categories] == [c.color for c in LocalExport(demo).taxonomy.categories]
    assert len({c.color for c in src.taxonomy.categories}) == 3
    records = json.loads((demo / "tasks.json").read_text())
    (demo / "tasks.json").write_text(json.dumps(records[::-1]))
    assert LocalExport(demo).taxonomy == src.taxonomy


def test_taxonomy_file_missing_a_category(demo: Path, tmp_path: Path) -> None:
    tax = {"objectTypes": [{"category": "Tumor", "classId": 5, "color": "#010203"}]}
    (tmp_path / "t.json").write_text(json.dumps(tax))
    src = LocalExport(demo, taxonomy=tmp_path / "t.json")
    assert [(c.name, c.class_id) for c in src.taxonomy.categories] == [
        ("Tumor", 5), ("Kidney", 6), ("Liver", 7)]
    assert any("Liver" in w for w in src.warnings)
    task = list(src)[1]
    assert task.series[0].segments[1].color == (1, 2, 3)


def test_v1_taxonomy(demo: Path) -> None:
    (demo / "taxonomy.json").write_text(json.dumps({"categories": [{"name": "Object", "children": [
        {"name": "Liver", "classId": 0, "children": []},
        {"name": "Kidney", "classId": 1, "children": []},
        {"name": "Tumor", "classId": 2, "children": []}]}]}))
    assert [(c.name, c.class_id) for c in LocalExport(demo).taxonomy.categories] == [
        ("Liver", 0), ("Kidney", 1), ("Tumor", 2)]


@pytest.mark.parametrize(
    ("flt", "names"),
    [
        (TaskFilter.of(), ["Patient 001", "Patient 002", "Patient 003", "Patient 004"]),
        (TaskFilter.of(stage="Review_1"), ["Patient 003"]),
        (TaskFilter.of(only_ground_truth=True), ["Patient 001", "Patient 002", "Patient 004"]),
        (TaskFilter.of(task_ids=["00000000-0000-4000-8000-000000000002"]), ["Patient 002"]),
    ],
)
def test_filters(demo: Path, flt: TaskFilter, names: list[str]) -> None:
    src = LocalExport(demo, task_filter=flt)
    assert [t.name for t in src] == names
    assert src.count() == len(names)


def test_absolute_paths(demo: Path, tmp_path: Path) -> None:
    inside = demo / "segmentations/Patient 001/CT.nii.gz"  # an export written with an absolute destination
    records = json.loads((demo / "tasks.json").read_text())
    records[0]["series"][0]["segmentations"] = str(inside)
    (demo / "tasks.json").write_text(json.dumps(records))
    assert list(LocalExport(demo))[0].series[0].label_map.path == str(inside)
    moved = tmp_path / "elsewhere.nii.gz"  # outside the export: only for an export one trusts
    shutil.copy(inside, moved)
    records[0]["series"][0]["segmentations"] = str(moved)
    (demo / "tasks.json").write_text(json.dumps(records))
    with pytest.raises(SourceError, match="leads outside the export folder"):
        list(LocalExport(demo))
    assert list(LocalExport(demo, allow_outside_paths=True))[0].series[0].label_map.path == str(moved)


def test_series_without_label_map_and_empty_map(demo: Path) -> None:
    task = list(LocalExport(demo))[3]
    assert task.series[0].label_map is None and task.series[0].segments == {}
    assert task.series[1].label_map.values.tolist() == [0]
    task.check()


def test_files_under_a_missing_folder_are_missing_without_asking_the_disk(tmp_path: Path, monkeypatch: Any) -> None:
    """Once ``images/`` is found missing, the image folders of later tasks under it are not listed; files are
    found as before everywhere else, a file where a folder should be included."""
    (tmp_path / "tasks.json").write_text("[]")
    (tmp_path / "segmentations" / "b").mkdir(parents=True)
    (tmp_path / "segmentations" / "b" / "x.nii.gz").write_bytes(b"")
    (tmp_path / "notes").write_bytes(b"")
    source = LocalExport(tmp_path)
    listed: list[str] = []  # folders listed or asked about
    scandir, stat = os.scandir, os.stat
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(path) or scandir(path))
    monkeypatch.setattr(os, "stat", lambda path, **kw: listed.append(path) or stat(path, **kw))
    assert source.find("images/a/CT/0.dcm") is None and listed  # found missing (and its parents with it)
    listed.clear()
    assert [source.find(f"images/{n}/CT/{k}.dcm") for n in "bcd" for k in range(3)] == [None] * 9
    assert listed == []
    assert source.find("segmentations/b/x.nii.gz") == str(tmp_path / "segmentations" / "b" / "x.nii.gz")
    assert source.find("notes/a/x.dcm") is None and source.find("notes/b/x.dcm") is None
    assert source.find("segmentations/b/y.nii.gz") is None


def test_zero_vox_offset_means_right_after_the_header(tmp_path: Path) -> None:
    data = (np.arange(60, dtype=np.uint8) % 4).reshape(5, 4, 3, order="F")
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_data_dtype(np.uint8)
    header["vox_offset"] = 0
    raw = header.binaryblock + b"\0\0\0\0" + data.tobytes(order="F")
    (tmp_path / "zero.nii").write_bytes(raw)
    assert np.array_equal(labelport.read_label_nifti(str(tmp_path / "zero.nii")).array, data)


def test_taxonomy_codes() -> None:
    from labelport.sources.taxonomy import parse_taxonomy

    liver = {"CodeValue": "10200004", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Liver"}
    tissue = {"CodeValue": "85756007", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Tissue"}
    taxonomy = parse_taxonomy({"objectTypes": [
        {"category": "Liver", "segmentedPropertyCategory": tissue, "segmentedPropertyType": liver},
        {"category": "Spine", "SegmentedPropertyCategoryCodeSequence": tissue,
         "SegmentedPropertyTypeCodeSequence": liver},
        {"category": "Other", "segmentedPropertyType": liver},  # one code alone: none
    ]}, "taxonomy.json")
    assert [c.codes for c in taxonomy.categories] == [
        (("85756007", "SCT", "Tissue"), ("10200004", "SCT", "Liver")),
        (("85756007", "SCT", "Tissue"), ("10200004", "SCT", "Liver")), None]
    with pytest.raises(labelport.SourceError, match=r"objectTypes\[0\] \('Bad'\): segmentedPropertyType needs"):
        parse_taxonomy({"objectTypes": [{"category": "Bad", "segmentedPropertyCategory": tissue,
                                         "segmentedPropertyType": {"CodeValue": "1"}}]}, "taxonomy.json")


HOSTILE_RECORDS = [
    {"taskId": "a", "name": "A", "currentStageName": "END", "updatedAt": "2025-01-01T00:00:00Z",
     "series": [{"segmentMap": {"1": {"category": "Liver"}, "2": {"category": ["Organ", "Kidney"]}}}]},
    [1, 2, 3],
    "a string",
    None,
    {"taskId": 7, "name": None, "series": "not a list"},
    {"taskId": "b", "series": [None, {"segmentMap": None}, {"segmentMap": {"1": None, "2": {"category": 5}}}]},
    {"taskId": "c", "series": [{"segmentMap": {"1": {"category": "Tumor"}, "2": {"category": "Liver"}}}],
     "deep": [[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]},
    {"taskId": "d", "currentStageName": "Review", "series": [{"segmentMap": {"1": {"category": "Tumor"}}}]},
]


@pytest.mark.parametrize("whole", [False, True], ids=["split", "parsed whole"])
def test_records_are_read_the_same_split_or_parsed_whole(tmp_path: Path, whole: bool) -> None:
    """tasks.json is kept as one slice of text per record, parsed when its task comes; a file msgspec cannot
    split (here: a NaN, which Python's json reads) is parsed whole. Both give what json.load gives."""
    from labelport.sources.recordfile import RecordFile
    from labelport.sources.records import record_categories

    records = [*HOSTILE_RECORDS, {"taskId": "e", "value": float("nan")}] if whole else HOSTILE_RECORDS
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(records))
    expected = json.loads(path.read_text())
    got = RecordFile(path)
    assert len(got) == len(expected) and [json.dumps(r) for r in got] == [json.dumps(r) for r in expected]
    assert json.dumps(got[6]) == json.dumps(expected[6])
    heads = [(isinstance(r, dict), *((r.get(k) for k in ("taskId", "name", "currentStageName"))
                                     if isinstance(r, dict) else (None,) * 3)) for r in expected]
    assert [tuple(h) for h in got.heads] == heads == [tuple(got.heads[n - len(heads)]) for n in range(len(heads))]
    categories = list(dict.fromkeys(c for r in expected if isinstance(r, dict) for c in record_categories(r)))
    assert got.categories == categories == ["Liver", "Organ/Kidney", "Tumor"]


def test_packed_heads_give_back_what_was_put_in() -> None:
    """Record heads are packed as text; whatever a record's fields hold, reading them back gives the same
    values and types, by position from either end."""
    from labelport.sources.recordfile import Head, Heads

    rng = random.Random(3)
    texts = ["", "a", "é", "名前", "\U0001f600", "\ud800", "x\0y", "}, {"]
    values = [*texts, None, 7, 1.5, ["a"], {"b": 1}, True]
    put = [Head(False)] + [Head(True, rng.choice(values if rng.random() < 0.2 else texts),
                                rng.choice(values if rng.random() < 0.2 else texts),
                                rng.choice([None, "END", "Review", "名", 3, ["x"]])) for _ in range(300)]
    heads = Heads()
    for head in put:
        heads.append(head)
    got = list(heads)
    assert len(heads) == len(put) and got == put
    assert [type(v) for h in got for v in h] == [type(v) for h in put for v in h]
    assert [heads[n - len(put)] for n in range(len(put))] == put
    with pytest.raises(IndexError):
        heads[len(put)]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    """JSON that tempts a splitter: objects in lists, strings with braces, commas, quotes and escapes."""
    kinds = ["object", "list", "text", "number", "null"] if depth < 4 else ["text", "number", "null"]
    kind = rng.choice(kinds)
    if kind == "object":
        return {rng.choice(["a", "}", "b,", '"q"', "é"]) + str(n): _random_value(rng, depth + 1)
                for n in range(rng.randrange(4))}
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == "text":
        return "".join(rng.choice(["}", "},", "}, {", '"', "\\", "\n", "é", "x", " ", "]"]) for _ in range(6))
    return rng.choice([0, -1.5, 1e300, None])


@pytest.mark.parametrize("seed", range(8))
def test_tasks_json_is_split_a_block_at_a_time_as_json_reads_it(tmp_path: Path, monkeypatch: Any,
                                                                 seed: int) -> None:
    """However the records are spelled and wherever the blocks end, the records, their heads and where they are
    found are what json.load gives; the file is never parsed whole for it."""
    from labelport.sources import recordfile

    rng = random.Random(seed)
    records = [*HOSTILE_RECORDS]
    for n in range(30):
        record = {"taskId": f"t{n}", "series": [{"segmentMap": {"1": {"category": "Liver"}}, "x": _random_value(rng)},
                                                 {"y": _random_value(rng)}]}
        records.insert(rng.randrange(len(records) + 1), dict(rng.sample(list(record.items()), len(record))))
    path = tmp_path / "tasks.json"
    path.write_text(" \n" + json.dumps(records, indent=rng.choice([None, 1, "\t"]), ensure_ascii=rng.random() < 0.5)
                    + "\n", encoding="utf-8")
    monkeypatch.setattr(recordfile, "_BLOCK", rng.choice([1, 5, 64, 333]))
    monkeypatch.setattr(recordfile, "read_json", None)  # parsing the file whole fails the test
    got = recordfile.RecordFile(path)
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert [json.dumps(r) for r in got] == [json.dumps(r) for r in expected]
    assert [h.task_id for h in got.heads] == [r.get("taskId") if isinstance(r, dict) else None for r in expected]
    assert got.categories == ["Liver", "Organ/Kidney", "Tumor"]


@pytest.mark.parametrize("text", ['[{"a": 1}, ]', '[{"a": 1},, {"b": 2}]', '[, {"a": 1}]', '[{"a": 1}, {"b": 2}',
                                  '{"a": 1}, {"b": 2}]', '[{"a": 1} {"b": 2}]'])
@pytest.mark.parametrize("block", [1, 3, 1 << 23])
def test_a_tasks_json_that_is_not_an_array_is_an_error_however_it_is_split(tmp_path: Path, monkeypatch: Any,
                                                                          text: str, block: int) -> None:
    from labelport.sources import recordfile

    monkeypatch.setattr(recordfile, "_BLOCK", block)
    path = tmp_path / "tasks.json"
    path.write_text(text)
    with pytest.raises(SourceError, match=r"malformed JSON|expected a JSON array") as raised:
        recordfile.RecordFile(path)
    assert "tasks.json" in str(raised.value)


def test_a_source_lists_and_filters_from_the_record_heads(tmp_path: Path) -> None:
    (tmp_path / "tasks.json").write_text(json.dumps(HOSTILE_RECORDS))
    source = LocalExport(tmp_path)
    assert list(source.listing()) == [("a", "A"), ("", ""), ("", ""), ("", ""), ("7", ""), ("b", ""), ("c", ""),
                                ("d", "")]
    assert source.stage_names() == {"END", "Review"} and source.count() == 8
    assert [t["taskId"] for t in source.list_tasks()] == ["a", 7, "b", "c", "d"]
    assert [t["taskId"] for t in source.list_tasks(stage="Review")] == ["d"]
    staged = LocalExport(tmp_path, task_filter=TaskFilter(stage="END"))
    assert [(r.index, r.task_id) for r in staged.refs()] == [(0, "a"), (1, ""), (2, ""), (3, "")]
    assert set(staged.all_task_ids()) == {"a", "7", "b", "c", "d"}
    assert sorted(c.name for c in source.taxonomy.categories) == ["Liver", "Organ/Kidney", "Tumor"]


def test_a_tasks_json_changed_during_an_export_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "tasks.json").write_text(json.dumps(HOSTILE_RECORDS))
    source = LocalExport(tmp_path)
    refs = source.refs()
    assert next(refs).task_id == "a"
    path = tmp_path / "tasks.json"
    stat = path.stat()
    path.write_text(json.dumps(HOSTILE_RECORDS[::-1]))  # rewritten in place: same size, same time below
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_ino == stat.st_ino
    with pytest.raises(SourceError, match="changed while it was being exported") as raised:
        print(next(refs).record)  # read when it is first used
    assert "tasks.json" in str(raised.value)


def test_a_forked_worker_lets_go_of_the_record_index_it_inherits(demo: Path) -> None:
    """A worker process runs its tasks with its own copy of the source (without the record index); the parent's
    source that a forked worker inherits lets go of its index, which the worker would otherwise keep."""
    from labelport import taskrun

    src = LocalExport(demo)
    refs, taxonomy = list(src.refs()), src.taxonomy
    names = [t.name for t in LocalExport(demo)]
    saved = dict(taskrun._WORKER)
    try:
        taskrun.worker_init(src, [], {}, {}, taskrun.Settings("error", "reference"))
        assert len(src._heads) == 0 and src.taxonomy == taxonomy
        assert [taskrun._WORKER["src"].open(ref).name for ref in refs] == names
    finally:
        taskrun._WORKER.clear()
        taskrun._WORKER.update(saved)
