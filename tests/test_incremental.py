"""Incremental, resumable and parallel export: what a second export into the same folder does."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

import labelport
from labelport.testing import output_files


def _state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` (tasks.json included) with its inode, mtime and content."""
    out = {}
    for rel in [*output_files(root), "tasks.json"]:
        st = os.stat(root / rel)
        out[rel] = (st.st_ino, st.st_mtime_ns, (root / rel).read_bytes())
    return out


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def _tasks(root: Path) -> list[dict[str, Any]]:
    return json.loads((root / "tasks.json").read_text())


def test_rerun_with_nothing_changed_rewrites_nothing(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    first = labelport.export(demo, out, ["nifti", "binary-mask"])
    assert first.written == {"nifti": 4, "binary-mask": 4}
    before = {w: _state(out / w) for w in ("nifti", "binary-mask")}
    time.sleep(0.01)
    again = labelport.export(demo, out, ["nifti", "binary-mask"])
    assert again.ok and again.written == {"nifti": 0, "binary-mask": 0}
    assert again.unchanged == {"nifti": 4, "binary-mask": 4}
    for w in ("nifti", "binary-mask"):
        assert _changed(before[w], _state(out / w)) == set()


def test_spelling_the_source_another_way_rewrites_nothing(demo: Path, tmp_path: Path, monkeypatch: Any) -> None:
    import shutil

    source = tmp_path / "project"
    shutil.copytree(demo, source)
    out = tmp_path / "o"
    monkeypatch.chdir(tmp_path)
    first = labelport.export("project", out, "nifti")
    assert first.written["nifti"] >= 3
    for spelling in (str(source), "./project/", f"{tmp_path}/project/../project"):
        assert labelport.export(spelling, out, "nifti").written == {"nifti": 0}, spelling


def test_a_record_is_judged_by_its_text_then_by_its_meaning(demo: Path, tmp_path: Path, monkeypatch: Any) -> None:
    """An unchanged record is not even parsed; a record spelled another way is parsed and, meaning the same,
    not written again; a record whose meaning or key order (which tasks.json keeps) changed is written again."""
    from labelport.sources.recordfile import RecordFile

    parsed: list[int] = []
    read = RecordFile.__getitem__
    monkeypatch.setattr(RecordFile, "__getitem__", lambda self, index: parsed.append(index) or read(self, index))
    out = tmp_path / "o"
    assert labelport.export(demo, out, ["nifti"]).written == {"nifti": 4}
    parsed.clear()
    assert labelport.export(demo, out, ["nifti"]).unchanged == {"nifti": 4}
    assert parsed == []
    records = _tasks(demo)
    (demo / "tasks.json").write_text(json.dumps(records, indent="\t", ensure_ascii=False))
    report = labelport.export(demo, out, ["nifti"])
    assert report.written == {"nifti": 0} and sorted(parsed) == [0, 1, 2, 3]
    parsed.clear()
    assert labelport.export(demo, out, ["nifti"]).unchanged == {"nifti": 4} and parsed == []
    records[1] = dict(reversed(records[1].items()))
    (demo / "tasks.json").write_text(json.dumps(records))
    assert labelport.export(demo, out, ["nifti"]).written == {"nifti": 1}
    assert list(_tasks(out)[1]) == [k for k in records[1] if k in _tasks(out)[1]]
    records[2]["series"][0]["name"] = "renamed series"
    (demo / "tasks.json").write_text(json.dumps(records))
    report = labelport.export(demo, out, ["nifti"])
    assert report.written == {"nifti": 1} and report.unchanged == {"nifti": 3}
    assert [s["name"] for s in _tasks(out)[2]["series"]] == ["renamed series"]


def test_changing_one_label_map_rewrites_exactly_that_task(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["semantic-nifti"])
    before = _state(out)
    path = demo / "segmentations" / "Patient 003" / "CT.nii.gz"
    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj).copy()
    data[data == 2] = 0  # the annotator removed instance 2's own voxels
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(path))
    report = labelport.export(demo, out, ["semantic-nifti"])
    assert report.written == {"semantic-nifti": 1} and report.unchanged == {"semantic-nifti": 3}
    # its entry in tasks.json is the same, so tasks.json is left alone too
    assert _changed(before, _state(out)) == {"segmentations/Patient 003/CT.nii.gz"}


def test_changed_options_rewrite_that_writer(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["png"])
    report = labelport.export(demo, out, ["png"], options={"png": {"mode": "index"}})
    assert report.written == {"png": 4}
    report = labelport.export(demo, out, ["png"], options={"png": {"mode": "index"}})
    assert report.written == {"png": 0}


def test_task_that_left_the_source_is_removed(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["binary-mask"])
    tasks = json.loads((demo / "tasks.json").read_text())
    (demo / "tasks.json").write_text(json.dumps([t for t in tasks if t["name"] != "Patient 001"]))
    before = _state(out)
    report = labelport.export(demo, out, ["binary-mask"])
    assert report.removed == {"binary-mask": 1} and report.written == {"binary-mask": 0}
    assert [t["name"] for t in _tasks(out)] == ["Patient 002", "Patient 003", "Patient 004"]
    assert not (out / "segmentations" / "Patient 001").exists()
    assert {k for k in _changed(before, _state(out)) if k != "tasks.json"} == {
        k for k in before if k.startswith("segmentations/Patient 001/")}


def test_task_ids_that_repeat_or_hold_a_nul_keep_their_output(demo: Path, tmp_path: Path) -> None:
    """A repeated task id makes a task of its own, and an id may hold the NUL that marks repeats in the
    manifest: a second ``odd`` and an ``odd<NUL>2`` are still two tasks. Each keeps its output run after run,
    and only the task whose record left the source loses it."""
    tasks = json.loads((demo / "tasks.json").read_text())
    for task, task_id in zip(tasks, ["odd", "odd", "odd\x002", "odd"]):
        task["taskId"] = task_id
    (demo / "tasks.json").write_text(json.dumps(tasks))
    out = tmp_path / "o"
    assert labelport.export(demo, out, ["binary-mask"]).written == {"binary-mask": 4}
    entries = _tasks(out)
    assert [(t["taskId"], t["name"]) for t in entries] == [(t["taskId"], t["name"]) for t in tasks]
    for _ in range(2):
        again = labelport.export(demo, out, ["binary-mask"])
        assert again.ok and again.unchanged == {"binary-mask": 4} and again.removed == {"binary-mask": 0}
        assert _tasks(out) == entries
    (demo / "tasks.json").write_text(json.dumps(tasks[:2] + tasks[3:]))
    report = labelport.export(demo, out, ["binary-mask"])
    assert report.removed == {"binary-mask": 1}
    assert [(t["taskId"], t["name"]) for t in _tasks(out)] == [(t["taskId"], t["name"]) for t in tasks[:2] + tasks[3:]]
    assert not (out / "segmentations" / tasks[2]["name"]).exists()


def test_files_a_task_no_longer_produces_are_removed(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["binary-mask"], unknown_labels="warn")
    assert (out / "segmentations/Patient 001/CT/instance-3.nii.gz").is_file()
    tasks = json.loads((demo / "tasks.json").read_text())
    del tasks[0]["series"][0]["segmentMap"]["3"]
    (demo / "tasks.json").write_text(json.dumps(tasks))
    report = labelport.export(demo, out, ["binary-mask"], unknown_labels="warn")
    assert report.written == {"binary-mask": 1}
    assert not (out / "segmentations/Patient 001/CT/instance-3.nii.gz").exists()
    assert (out / "segmentations/Patient 001/CT/instance-2.nii.gz").is_file()


def _listed_files(root: Path) -> set[str]:
    """The files tasks.json refers to (label maps and masks), relative to ``root``."""
    found = set()
    for task in _tasks(root):
        for series in task["series"]:
            seg = series.get("segmentations") or []
            found.update(os.path.normpath(p) for p in ([seg] if isinstance(seg, str) else seg))
    return found


def test_filtered_export_keeps_the_other_tasks(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["nifti"])
    clean = _tasks(out)
    # a filtered export refreshes what it selects and keeps every other task's record, in its place
    records = json.loads((demo / "tasks.json").read_text())
    records[2]["metaData"] = {"site": "moved"}
    (demo / "tasks.json").write_text(json.dumps(records))
    for filters in ({"stage": "Review_1"}, {"task_ids": [records[2]["taskId"]]}):
        report = labelport.export(demo, out, ["nifti"], **filters)  # type: ignore[arg-type]
        assert report.removed == {"nifti": 0}
        listed = _tasks(out)
        assert [t["taskId"] for t in listed] == [t["taskId"] for t in clean]
        assert listed[2]["metaData"] == {"site": "moved"} and listed[:2] == clean[:2] and listed[3] == clean[3]
        assert _listed_files(out) == set(output_files(out))  # tasks.json describes exactly the files on disk
    # a filter that leaves out a task that has since changed keeps its earlier export until it is selected
    records[0]["metaData"] = {"site": "later"}
    (demo / "tasks.json").write_text(json.dumps(records))
    labelport.export(demo, out, ["nifti"], stage="Review_1")
    assert _tasks(out)[0] == clean[0]
    assert labelport.export(demo, out, ["nifti"]).written == {"nifti": 1}
    fresh = tmp_path / "fresh"
    labelport.export(demo, fresh, ["nifti"])
    assert (out / "tasks.json").read_bytes() == (fresh / "tasks.json").read_bytes()


def test_a_filtered_first_export_then_a_full_one_is_in_source_order(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["nifti"], stage="Review_1")
    assert [t["name"] for t in _tasks(out)] == ["Patient 003"]
    labelport.export(demo, out, ["nifti"])
    fresh = tmp_path / "fresh"
    labelport.export(demo, fresh, ["nifti"])
    assert (out / "tasks.json").read_bytes() == (fresh / "tasks.json").read_bytes()


def test_a_task_that_starts_failing_loses_its_output_and_fails_every_run(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["nifti"])
    (demo / "segmentations" / "Patient 003" / "CT.nii.gz").write_bytes(b"not a label map")
    for _ in range(2):
        report = labelport.export(demo, out, ["nifti"])
        assert [f.task for f in report.failures] == ["Patient 003"]
        assert [t["name"] for t in _tasks(out)] == ["Patient 001", "Patient 002", "Patient 004"]
        assert not (out / "segmentations" / "Patient 003").exists()
        assert _listed_files(out) == set(output_files(out))


def test_force_rewrites_everything(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["nifti"])
    before = _state(out)
    time.sleep(0.01)
    report = labelport.export(demo, out, ["nifti"], force=True)
    assert report.written == {"nifti": 4}
    after = _state(out)
    assert all(before[k][:2] != after[k][:2] for k in before if k != "tasks.json")  # new files, same bytes
    assert all(before[k][2] == after[k][2] for k in before)


def test_leftover_temporary_files_are_swept_and_nobody_elses(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["nifti"])
    stale = out / ".labelport" / "tmp" / "12345-1-0-CT.nii.gz"  # what a killed export leaves
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a file")
    theirs = [out / ".report.2024.tmp", out / "other-project" / "deep" / ".x.tmp",
              out / ".labelport-mywork.tmp" / "notes.txt", out / "segmentations" / "Patient 001" / ".CT.nii.gz.9.tmp"]
    for path in theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("someone else's")
    labelport.export(demo, out, ["nifti"])
    assert not stale.exists()
    assert all(p.read_text() == "someone else's" for p in theirs)


@pytest.mark.slow
def test_parallel_export_equals_serial(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--tasks", "4", "--overlap", "--shape", "64", "56", "24")
    # dicom-seg first: it drops the label array once it has its frames, and the writers after it read it again
    writers = ["dicom-seg", "nifti", "semantic-nifti", "binary-mask", "overlapping", "png", "mhd", "rtstruct"]
    serial = labelport.export(project, tmp_path / "serial", writers)
    parallel = labelport.export(project, tmp_path / "parallel", writers, workers=2)
    assert serial.ok and parallel.ok and parallel.written == dict.fromkeys(writers, 4)
    for w in writers:
        a, b = tmp_path / "serial" / w, tmp_path / "parallel" / w
        assert output_files(a) == output_files(b)
        for rel in [*output_files(a), "tasks.json"]:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), (w, rel)
    alone = labelport.export(project, tmp_path / "alone", ["binary-mask"])
    assert alone.ok and output_files(tmp_path / "alone") == output_files(tmp_path / "serial" / "binary-mask")
    for rel in output_files(tmp_path / "alone"):
        assert (tmp_path / "alone" / rel).read_bytes() == (tmp_path / "serial" / "binary-mask" / rel).read_bytes()


def _committed(root: Path) -> int:
    """How many tasks a running export has committed to a root's manifest (read by SQLite, not by labelport)."""
    path = root / ".labelport" / "manifest.sqlite"
    if not path.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1)) as db:
            return int(db.execute("SELECT count(*) FROM task").fetchone()[0])
    except sqlite3.Error:  # the export is creating it
        return 0


@pytest.mark.slow
def test_killed_export_resumes_to_the_same_result(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--tasks", "12", "--shape", "128", "112", "48")
    writers = ["nifti", "binary-mask", "png"]
    args = [a for w in writers for a in ("--writer", w)]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "labelport.cli", "export", str(project), "-o", str(out), *args,
                             "-j", "1", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and _committed(out / "png") < 4:
        time.sleep(0.01)
    assert proc.poll() is None, "the export finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "png" / "tasks.json").exists()  # nothing claims to be complete
    resumed = labelport.export(project, out, writers)
    assert resumed.ok and sum(resumed.unchanged.values()) >= 4 * len(writers) - 2
    clean = labelport.export(project, tmp_path / "clean", writers)
    assert clean.ok
    for w in writers:
        a, b = tmp_path / "clean" / w, out / w
        assert output_files(a) == output_files(b)
        for rel in [*output_files(a), "tasks.json"]:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), (w, rel)


def test_change_to_a_project_relative_label_map_is_seen(demo: Path, tmp_path: Path) -> None:
    """Patient 002 names its maps '<project>/segmentations/...': their changes must count too."""
    out = tmp_path / "o"
    labelport.export(demo, out, ["nifti"])
    path = demo / "segmentations" / "Patient 002" / "T1 axial.nii.gz"
    img = nib.load(str(path))
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint16), img.affine, img.header), str(path))
    report = labelport.export(demo, out, ["nifti"])
    assert report.written == {"nifti": 1} and report.unchanged == {"nifti": 3}


def test_unpicklable_source_runs_in_this_process(demo: Path, tmp_path: Path) -> None:
    source = labelport.LocalExport(demo)
    source.lock = __import__("threading").Lock()  # type: ignore[attr-defined]  # cannot be pickled
    with pytest.warns(UserWarning, match="cannot be sent to worker processes"):
        report = labelport.export(source, tmp_path / "o", ["nifti"], workers=2)
    assert report.ok and report.written == {"nifti": 4}
