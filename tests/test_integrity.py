"""Data integrity under hostile input and hostile plugins: an incremental export always equals a clean one
(also over random sequences of edits), a task never gets another task's files, the source is never written,
one export at a time writes into a folder, and one bad record, crashing worker or misbehaving writer is one
failed task with its name, never a lost run."""

from __future__ import annotations

import contextlib
import json
import os
import random
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
from cases import SHAPE, TAXONOMY, label_map, read_records, task_record, tiny_export, write_label_map, write_records
from click.testing import CliRunner
from conftest import ROOT
from hostile_plugin import install

import labelport
from labelport import OptionError
from labelport.cli import cli
from labelport.sources import lookups
from labelport.testing import output_files


def _tasks(root: Path) -> list[dict[str, Any]]:
    return list(json.loads((root / "tasks.json").read_text()))


def _all_trees(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".labelport" not in p.relative_to(out).parts}


def _segmentation(root: Path, entry: dict[str, Any]) -> np.ndarray:
    return np.asarray(nib.load(str(root / entry["series"][0]["segmentations"])).dataobj)


# -- 1. a task never gets another task's labels --------------------------------------------------------------


def test_tasks_with_the_same_name_keep_their_own_folders(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["dup", "dup", "other"])
    out = tmp_path / "out"
    report = labelport.export(src, out, ["nifti"], task_ids=["t-0001"])  # the second "dup" alone first
    assert report.ok and report.written == {"nifti": 1}
    report = labelport.export(src, out, ["nifti"])
    assert report.ok
    listed = {t["taskId"]: t for t in _tasks(out)}
    for n in range(3):
        assert np.array_equal(_segmentation(out, listed[f"t-{n:04d}"]), label_map(n))  # each its own map
    assert len({t["series"][0]["segmentations"] for t in listed.values()}) == 3
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean"))


def test_a_newcomer_never_takes_a_departed_tasks_folder_with_stale_files(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["dup", "dup"])
    out = tmp_path / "out"
    labelport.export(src, out, ["nifti"])
    records = read_records(src)
    del records[0]  # the first "dup" leaves; another task named "dup" arrives
    write_label_map(src / "segmentations" / "new" / "CT.nii.gz", label_map(7))
    records.append(task_record(9, "dup", "segmentations/new/CT.nii.gz"))
    write_records(src, records)
    report = labelport.export(src, out, ["nifti"])
    assert report.ok and report.removed == {"nifti": 1}
    listed = {t["taskId"]: t for t in _tasks(out)}
    assert np.array_equal(_segmentation(out, listed["t-0001"]), label_map(1))
    assert np.array_equal(_segmentation(out, listed["t-0009"]), label_map(7))
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean"))


def test_stale_files_are_removed_only_when_no_task_holds_them(tmp_path: Path) -> None:
    from labelport.manifest import Manifest

    root = tmp_path / "root"
    (root / "dup").mkdir(parents=True)
    (root / "dup" / "CT.nii.gz").write_bytes(b"A's")
    manifest = Manifest(str(root))
    manifest.record("A", "fp", ["dup/CT.nii.gz"], "{}", "dup")
    manifest.save()
    # next run, on two workers: B writes into "dup" before A (renamed) is recorded in its new folder
    manifest = Manifest(str(root))
    (root / "dup" / "CT.nii.gz").write_bytes(b"B's")
    manifest.record("A", "fp2", ["zzz/CT.nii.gz"], "{}", "zzz")
    assert (root / "dup" / "CT.nii.gz").read_bytes() == b"B's"  # nothing is removed while tasks finish
    manifest.record("B", "fp", ["dup/CT.nii.gz"], "{}", "dup")
    manifest.finish()
    assert (root / "dup" / "CT.nii.gz").read_bytes() == b"B's"
    manifest.forget("B")
    manifest.save()  # killed before finish(): the next export removes what is stale
    Manifest(str(root)).finish()
    assert not (root / "dup").exists()


def _legacy_manifest(root: Path) -> None:
    """Turn a root's manifest into the manifest.json + journal.ndjson that labelport wrote before SQLite."""
    import sqlite3

    path = root / ".labelport" / "manifest.sqlite"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, fingerprint, folder, files, entry FROM task ORDER BY pos").fetchall()
        meta = dict(db.execute("SELECT name, value FROM meta"))
    db.close()
    tasks = {k: {"fingerprint": fp, "files": json.loads(files), "json": entry, "folder": folder}
             for k, fp, folder, files, entry in rows}
    last = next(reversed(tasks))
    journal = json.dumps({"task": last, "state": tasks.pop(last)}) + "\n" + '{"task": "half-writ'  # then killed
    tasks.update({"hand-edited": {"fingerprint": 5, "json": "{}"}, "text": "x", "no-json": {"fingerprint": "f"}})
    (root / ".labelport" / "manifest.json").write_text(json.dumps(
        {"version": 2, "writer": meta["writer"], "tasks": tasks, "stale": [], "project": json.loads(meta["project"])}))
    (root / ".labelport" / "journal.ndjson").write_text(journal)
    path.unlink()


def test_a_manifest_from_before_sqlite_is_read_once(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b", "c"])
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    _legacy_manifest(out)
    assert labelport.export(src, out, ["nifti"], dry_run=True).unchanged == {"nifti": 3}
    again = labelport.export(src, out, ["nifti"])
    assert again.unchanged == {"nifti": 3} and again.written == {"nifti": 0}
    assert sorted(p.name for p in (out / ".labelport").iterdir() if p.is_file()) == \
        ["last-export.json", "lock", "manifest.sqlite", "taxonomy.json"]
    records = read_records(src)
    write_records(src, records[1:])  # the first task leaves the source: the imported manifest knew its files
    assert labelport.export(src, out, ["nifti"]).removed == {"nifti": 1}
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean"))


@pytest.mark.parametrize("schema", [3, 4])
def test_a_manifest_of_an_earlier_schema_keeps_what_it_knew(tmp_path: Path, schema: int) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b", "c"])
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    path = out / ".labelport" / "manifest.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:  # schema 4 had no seal; 3 no inputs either
        db.executescript("DROP TABLE seen; DELETE FROM meta WHERE name = 'seal';"
                         + ("ALTER TABLE task DROP COLUMN inputs;" if schema == 3 else "")
                         + f"PRAGMA user_version = {schema};")
    if schema == 4:  # a dry run reads it as it is
        assert labelport.export(src, out, ["nifti"], dry_run=True).unchanged == {"nifti": 3}
    write_records(src, read_records(src)[1:])  # the first task leaves the source: its files are still known
    report = labelport.export(src, out, ["nifti"])
    assert report.ok and report.removed == {"nifti": 1} and report.removed_files == {"nifti": 1}
    assert labelport.export(src, out, ["nifti"]).unchanged == {"nifti": 2}
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (5,)
        assert all(inputs for (inputs,) in db.execute("SELECT inputs FROM task"))
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean"))


@pytest.mark.parametrize("damage", [b"", b"SQLite format 3\x00" + b"\xff" * 200, b"not a database at all" * 50])
def test_a_damaged_manifest_means_writing_everything_again(tmp_path: Path, damage: bytes) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"])
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    (out / ".labelport" / "manifest.sqlite").write_bytes(damage)
    again = labelport.export(src, out, ["nifti"])
    assert again.ok and again.written == {"nifti": 2}
    assert labelport.export(src, out, ["nifti"]).unchanged == {"nifti": 2}
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean"))


# -- 2, 3. everything an output depends on is in its fingerprint --------------------------------------------


def _clean(src: Path, out: Path, writers: list[str] | None = None, **kwargs: Any) -> Path:
    report = labelport.export(src, out, writers or ["nifti"], **kwargs)
    assert report.ok or kwargs.get("unknown_labels") == "error", [str(f) for f in report.failures]
    return out


def test_a_taxonomy_change_rewrites_the_class_maps(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"])
    out = tmp_path / "out"
    labelport.export(src, out, ["semantic-nifti", "png"])
    taxonomy = json.loads((src / "taxonomy.json").read_text())
    taxonomy["objectTypes"][0]["classId"], taxonomy["objectTypes"][1]["classId"] = 1, 0  # swap Liver and Kidney
    (src / "taxonomy.json").write_text(json.dumps(taxonomy))
    report = labelport.export(src, out, ["semantic-nifti", "png"])
    assert report.written == {"semantic-nifti": 2, "png": 2}
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean", ["semantic-nifti", "png"]))


def test_derived_class_ids_do_not_depend_on_the_tasks_a_run_sees(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"], taxonomy=None)
    out = tmp_path / "out"
    labelport.export(src, out, ["semantic-nifti"])
    records = read_records(src)
    write_label_map(src / "segmentations" / "top" / "CT.nii.gz", label_map(5))
    top = task_record(5, "top", "segmentations/top/CT.nii.gz")  # a task at the top, categories already known
    write_records(src, [top, *records])
    report = labelport.export(src, out, ["semantic-nifti"])
    assert report.written == {"semantic-nifti": 1} and report.unchanged == {"semantic-nifti": 2}
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean", ["semantic-nifti"]))


def test_unknown_labels_checked_again_on_a_rerun(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"])
    records = read_records(src)
    del records[0]["series"][0]["segmentMap"]["2"]  # value 2 is now unexplained
    write_records(src, records)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"], unknown_labels="warn").ok
    again = labelport.export(src, out, ["nifti"], unknown_labels="error")
    assert [f.task for f in again.failures] == ["a"]  # as a clean export reports it
    assert [t["name"] for t in _tasks(out)] == ["b"] and not (out / "segmentations" / "a").exists()


@pytest.mark.parametrize(("values", "unknown"), [((1, 2, 4), [4]), ((1, 3), [3]), ((1, -2), [-2]), ((1, 2), [])])
def test_every_unknown_label_value_is_found(tmp_path: Path, values: tuple[int, ...], unknown: list[int]) -> None:
    """The check reads the largest value first and scans for values only when 0..max are not all known: gaps,
    values past the ids and negative values must all still be found."""
    src = tiny_export(tmp_path / "src", ["a"])
    data = np.zeros(SHAPE, np.int16)
    for n, value in enumerate(values):
        data[n, 0, 0] = value
    write_label_map(src / "segmentations" / "task-0000" / "CT.nii.gz", data)
    report = labelport.export(src, tmp_path / "out", ["nifti"])
    if unknown:
        assert len(report.failures) == 1 and f"value(s) {', '.join(map(str, unknown))} " in report.failures[0].message
    else:
        assert report.ok, report.failures


def test_every_writer_option_and_version_is_in_the_fingerprint(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a"])
    out = tmp_path / "out"
    labelport.export(src, out, ["semantic-nifti"])
    again = labelport.export(src, out, ["semantic-nifti"], options={"semantic-nifti": {"overlap": "highest"}})
    assert again.written == {"semantic-nifti": 1}
    from labelport.manifest import Manifest

    assert set(Manifest(str(out), readonly=True).folders().values()) == {"a"}


# -- random edit sequences: incremental always equals clean --------------------------------------------------

WRITERS = ["nifti", "semantic-nifti", "png"]


def _edit(rng: random.Random, src: Path, out: Path, step: int) -> tuple[str, dict[str, Any]]:
    """One random edit of the source (or of the output); returns its kind and the export options to use after
    it."""
    records = read_records(src)
    kind = rng.choice(["rename", "remove", "add", "taxonomy", "label", "options", "filter", "image", "images",
                       "spelling", "id", "nothing", "nothing", "project path", "shadow", "lose output",
                       "taxonomy file"])
    options: dict[str, Any] = {}
    project = [r for r in records if r["series"][0]["segmentations"].startswith(f"{src.name}/")]
    if kind == "rename" and records:
        target = rng.choice(records)
        target["name"] = rng.choice([r["name"] for r in records] + [f"renamed {step}", "dup"])
    elif kind == "remove" and len(records) > 1:
        records.pop(rng.randrange(len(records)))
    elif kind == "add":
        path = f"segmentations/added-{step}/CT.nii.gz"
        write_label_map(src / path, label_map(step))
        records.insert(rng.randrange(len(records) + 1), task_record(100 + step, rng.choice(["dup", f"new {step}"]),
                                                                    path))
    elif kind == "taxonomy file":  # the taxonomy file goes (the taxonomy is derived) or comes back
        if (src / "taxonomy.json").exists():
            (src / "taxonomy.json").unlink()
        else:
            (src / "taxonomy.json").write_text(json.dumps(TAXONOMY))
    elif kind == "taxonomy" and (src / "taxonomy.json").exists():
        taxonomy = json.loads((src / "taxonomy.json").read_text())
        types = taxonomy["objectTypes"]
        i, j = rng.sample(range(len(types)), 2)
        types[i]["classId"], types[j]["classId"] = types[j]["classId"], types[i]["classId"]
        types[i]["color"] = f"#{rng.randrange(1 << 24):06x}"
        (src / "taxonomy.json").write_text(json.dumps(taxonomy))
    elif kind == "label" and records:
        target = rng.choice(records)
        path = src / target["series"][0]["segmentations"]
        if not path.exists():  # a path from the export's parent, found there
            path = src.parent / target["series"][0]["segmentations"]
        data = np.asarray(nib.load(str(path)).dataobj).copy()
        data[rng.randrange(SHAPE[0]), rng.randrange(SHAPE[1]), rng.randrange(SHAPE[2])] = rng.choice([0, 1, 2])
        write_label_map(path, data)
    elif kind == "id" and records:  # task ids that repeat, or that read like a repeat's key (<id>\0<n>)
        other = rng.choice(records)["taskId"]
        rng.choice(records)["taskId"] = rng.choice([other, f"{other}\x002", f"{other}\x003", f"id {step}"])
    elif kind == "options":
        options = {"options": {"semantic-nifti": {"overlap": rng.choice(["lowest", "highest"])},
                               "png": {"mode": rng.choice(["color", "index"])}}}
    elif kind == "filter":
        options = {"stage": "END"}
    elif kind == "image" and records:  # an image appears, changes in place, is replaced or disappears
        image = src / rng.choice(records)["series"][0]["items"][0]
        image.parent.mkdir(parents=True, exist_ok=True)
        change = rng.choice(["write", "replace", "delete"])
        if change == "delete":
            image.unlink(missing_ok=True)
        elif change == "replace":
            (image.parent / "new").write_bytes(rng.randbytes(rng.choice([8, 16])))
            (image.parent / "new").replace(image)
        else:
            with open(image, "wb") as f:  # the same file, new bytes
                f.write(rng.randbytes(rng.choice([8, 16])))
    elif kind == "images":
        options = {"images": rng.choice(["reference", "copy", "link"])}
    elif kind == "project path" and records:  # a path from the export's parent, looked up in <export>/<project>
        series = rng.choice(records)["series"][0]
        series["segmentations"] = f"{src.name}/{series['segmentations'].removeprefix(src.name + '/')}"
    elif kind == "shadow" and project:  # a label map appears (or changes) where such a path is looked up first
        write_label_map(src / rng.choice(project)["series"][0]["segmentations"], label_map(rng.randrange(100)))
    elif kind == "lose output":
        files = [p for p in out.rglob("*") if p.is_file() and ".labelport" not in p.relative_to(out).parts]
        if files:
            rng.choice(files).unlink()
        return kind, options
    elif kind == "spelling":  # the same records in other JSON: keys in another order, other white space
        shuffled = [dict(rng.sample(list(r.items()), len(r))) for r in records]
        (src / "tasks.json").write_text(json.dumps(shuffled, indent=rng.choice([None, 2, "\t"])))
        return kind, options
    write_records(src, records)
    return kind, options


def _random_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, steps: int, workers: int = 1) -> None:
    """(Odd seeds note folders by their times, as folders that changed a while before an export are; even
    seeds by their files, as every folder here is, having just changed.)"""
    rng = random.Random(seed)
    monkeypatch.setattr(lookups, "RECENT", 0 if seed % 2 else 1 << 62)
    src = tiny_export(tmp_path / "src", ["a", "b", "dup", "dup"])
    out = tmp_path / "out"
    labelport.export(src, out, WRITERS, workers=workers)
    options: dict[str, Any] = {}
    for step in range(steps):
        kind, extra = _edit(rng, src, out, step)
        options = {k: v for k, v in {**options, **extra}.items() if k != "stage"} | (
            {"stage": extra["stage"]} if "stage" in extra else {})
        report = labelport.export(src, out, WRITERS, workers=workers, **options)
        assert report.ok, (seed, step, kind, [str(f) for f in report.failures])
        clean = tmp_path / f"clean-{step}"
        labelport.export(src, clean, WRITERS, **options)
        if "stage" in options:  # a filtered run: the tasks it selects are as a clean run writes them
            for writer in WRITERS:
                def where(task: dict[str, Any]) -> tuple[str, str]:  # task ids may repeat; folders do not
                    return task["taskId"], json.dumps([s.get("segmentations") for s in task["series"]])

                mine = {where(t): t for t in _tasks(out / writer)}
                for task in _tasks(clean / writer):
                    assert mine[where(task)] == task, (seed, step, kind, writer)
                listed = {p for t in _tasks(out / writer) for s in t["series"]
                          for p in ([s["segmentations"]] if isinstance(s.get("segmentations"), str)
                                    else s.get("segmentations") or [])}
                assert {os.path.normpath(p) for p in listed} <= set(output_files(out / writer))
            options.pop("stage")
        else:
            assert _all_trees(out) == _all_trees(clean), (seed, step, kind)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_keep_incremental_equal_to_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     seed: int) -> None:
    _random_edits(tmp_path, monkeypatch, seed, steps=25)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 24))
def test_many_random_edits_keep_incremental_equal_to_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          seed: int) -> None:
    _random_edits(tmp_path, monkeypatch, seed, steps=40)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(24, 28))
def test_random_edits_on_two_workers_keep_incremental_equal_to_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    seed: int) -> None:
    _random_edits(tmp_path, monkeypatch, seed, steps=15, workers=2)


# -- 4, 5. the source is never written; one export at a time ------------------------------------------------


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_an_output_folder_on_the_source_is_refused_before_anything_is_written(tmp_path: Path, where: str) -> None:
    src = tiny_export(tmp_path / "project" / "src", ["a"])
    before = _all_trees(tmp_path / "project")
    out = {"same": src, "inside": src / "out", "around": tmp_path / "project"}[where]
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(out), "-w", "semantic-nifti"])
    assert result.exit_code == 1 and result.output.startswith("error: the output folder ")
    assert {"same": " is the source", "inside": " is inside the source", "around": " contains the source"}[where] \
        in result.output
    assert _all_trees(tmp_path / "project") == before and not (src / ".labelport").exists()


def test_a_second_export_into_the_same_folder_is_refused_naming_the_first(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a"])
    out = tmp_path / "out"
    from labelport.outdir import OutputLock

    with OutputLock(str(out)):
        result = CliRunner().invoke(cli, ["export", str(src), "-o", str(out), "-w", "nifti"])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: another export is writing into {out} (process {os.getpid()}, since ")
    assert labelport.export(src, out, ["nifti"]).ok  # released: the next export runs


@pytest.mark.skipif(os.name != "posix", reason="processes are told dead by signal 0 on POSIX only")
def test_the_lock_of_a_killed_export_is_taken_once_its_workers_let_go(tmp_path: Path) -> None:
    """A killed export's workers hold its lock for a moment after it ended: an export started right away waits
    for them, and one whose holder is alive is still refused at once."""
    src = tiny_export(tmp_path / "src", ["a"])
    out = tmp_path / "out"
    lock = out / ".labelport" / "lock"
    lock.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()

    def holder(pid: int | str, seconds: float) -> subprocess.Popen[bytes]:  # a process that holds the lock a while
        held = subprocess.Popen([sys.executable, "-c", f"""import fcntl, json, os, sys, time
f = open({str(lock)!r}, "a+"); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
f.truncate(0); f.write(json.dumps({{"pid": {pid}, "since": "then", "command": "export"}})); f.flush()
print("held", flush=True); time.sleep({seconds})"""], stdout=subprocess.PIPE)
        assert held.stdout is not None and held.stdout.readline() == b"held\n"
        return held

    orphan = holder(dead.pid, 0.5)
    started = time.monotonic()
    assert labelport.export(src, out, ["nifti"]).ok
    assert time.monotonic() - started >= 0.3  # it waited for the lock
    orphan.wait()
    alive = holder("os.getpid()", 30)  # an export still running
    try:
        with pytest.raises(labelport.LabelportError, match="another export is writing into"):
            labelport.export(src, out, ["nifti"])
    finally:
        alive.kill()
        alive.wait()


# -- 6. one malformed record is one failed task ---------------------------------------------------------------


@pytest.mark.parametrize("damage,expected", [
    (lambda r: r["series"][0].update(segmentations=5), "series[0].segmentations: expected `str | array | null`"),
    (lambda r: r["series"][0].update(items=5), "series[0].items: expected `str | array | null`, got `int`"),
    (lambda r: r["series"][0].update(items=["images/a\x00b.dcm"]), "holds a control character"),
    (lambda r: r.update(series="none"), "series: expected `array`, got `str`"),
    (lambda r: r["series"][0].update(segmentMap=[1]), "series[0].segmentMap: expected `object | null`, got `array`"),
    (lambda r: r.update(deep=None), "the task record nests too deeply to be read"),
])
def test_a_malformed_record_fails_only_its_task(tmp_path: Path, damage: Any, expected: str) -> None:
    src = tiny_export(tmp_path / "src", ["bad", "good"])
    records = read_records(src)
    damage(records[0])
    (src / "tasks.json").write_text(json.dumps(records) if "deep" not in records[0] else
                                    json.dumps(records).replace('"deep": null', '"deep": ' + "[" * 3000 + "]" * 3000))
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "out"), "-w", "nifti", "-j", "1"])
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "task 'bad'" in failed[0] and expected in failed[0], result.output
    assert [t["name"] for t in _tasks(tmp_path / "out")] == ["good"]


# -- 7, 8, 9. a misbehaving writer or a dying worker is one failed task ----------------------------------------


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = install(tmp_path / "site")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("HOSTILE_MARKERS", str(tmp_path))
    return folder


def _messages(report: labelport.ExportReport) -> dict[str, str]:
    return {f.task: f.message for f in report.failures}


def test_a_writer_that_exits_or_raises_only_fails_its_own_part(hostile: Path, tmp_path: Path) -> None:
    names = ["exit:1", "keyboard:1", "base:1", "mutate:1", "nan:1", "memory:1", "fine"]
    src = tiny_export(tmp_path / "src", names)
    report = labelport.export(src, tmp_path / "out", ["hostile", "nifti"])
    messages = _messages(report)
    assert set(messages) == {"exit:1", "keyboard:1", "base:1", "nan:1", "memory:1"}
    assert messages["memory:1"] == "task 'memory:1': out of memory"
    assert all(f.writer == "hostile" for f in report.failures)
    assert "raised SystemExit(3)" in messages["exit:1"] and "raised KeyboardInterrupt" in messages["keyboard:1"]
    assert "raised Custom(a custom BaseException)" in messages["base:1"]
    assert "not strict JSON" in messages["nan:1"]
    nifti = {t["name"]: t for t in _tasks(tmp_path / "out" / "nifti")}
    assert list(nifti) == names  # every task reached the other writer, unchanged by the one that mutated it
    kept = {k: {f: v for f, v in e.items() if f != "mask"} for k, e in nifti["mutate:1"]["series"][0]["segmentMap"]
            .items()}
    assert kept == read_records(src)[3]["series"][0]["segmentMap"]
    assert [t["taskId"] for t in _tasks(tmp_path / "out" / "hostile")] == ["t-0003", "t-0006"]  # its own entries
    assert "NaN" not in (tmp_path / "out" / "hostile" / "tasks.json").read_text()


def test_a_dying_worker_is_replaced_and_its_task_retried_once(hostile: Path, tmp_path: Path) -> None:
    names = [f"task {n}" for n in range(20)]
    names[4], names[11], names[15] = "kill:a", "oom:b", "once:c"
    src = tiny_export(tmp_path / "src", names)
    report = labelport.export(src, tmp_path / "out", ["hostile", "nifti"], workers=2)
    messages = _messages(report)
    assert set(messages) == {"kill:a", "oom:b"}, messages
    assert messages["kill:a"] == ("task 'kill:a': its worker process was killed by SIGKILL (out of memory, or "
                                  "killed), twice")
    assert messages["oom:b"] == "task 'oom:b': its worker process exited with code 137, twice"
    assert [t["name"] for t in _tasks(tmp_path / "out" / "nifti")] == [n for n in names if n not in messages]
    assert (tmp_path / "out" / "hostile" / "segmentations" / "once-c" / "note.txt").read_bytes() == b"once:c"
    assert not list((tmp_path / "out" / "hostile" / ".labelport" / "tmp").glob("*"))


def test_a_task_that_hangs_is_stopped_at_the_time_limit(hostile: Path, tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["hang:1", "fine"])
    started = time.monotonic()
    report = labelport.export(src, tmp_path / "out", ["hostile"], task_timeout=1.0)
    assert time.monotonic() - started < 30
    assert _messages(report) == {"hang:1": "task 'hang:1': stopped after the time limit of 1 s (--task-timeout)"}
    assert [t["name"] for t in _tasks(tmp_path / "out")] == ["fine"]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_with_the_export_however_it_ends(hostile: Path, tmp_path: Path, how: signal.Signals) -> None:
    src = tiny_export(tmp_path / "src", [f"slow:{n}" for n in range(12)])
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "labelport.cli", "export", str(src), "-o", str(out), "-w",
                            "hostile", "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(_children(run.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _children(run.pid)
    assert len(workers) >= 2
    time.sleep(0.5)
    run.send_signal(how)
    run.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    if how == signal.SIGTERM:  # cleaned up as after Ctrl-C: no scratch files, the lock free, a re-run finishes
        assert run.returncode == 130, run.stderr
        assert not list((out / ".labelport" / "tmp").glob("*"))
    report = labelport.export(src, out, ["hostile"], workers=2)
    assert report.ok and len(_tasks(out)) == 12
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean", ["hostile"], workers=2))


def test_killed_and_resumed_with_a_writer_dying_mid_task(hostile: Path, tmp_path: Path) -> None:
    names = [f"slow:{n}" for n in range(12)]
    names[3] = "once:x"
    src = tiny_export(tmp_path / "src", names)
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "labelport.cli", "export", str(src), "-o", str(out), "-w",
                            "hostile", "-w", "nifti", "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not list(out.glob("*/segmentations/slow-6*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    run.kill()
    run.wait()
    report = labelport.export(src, out, ["hostile", "nifti"], workers=2)
    assert report.ok, [str(f) for f in report.failures]
    assert _all_trees(out) == _all_trees(_clean(src, tmp_path / "clean", ["hostile", "nifti"], workers=2))


# -- 10, 11, 12, 13. hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/passwd", "../../outside.nii.gz", "segmentations/link/CT.nii.gz"])
def test_paths_leading_outside_the_source_are_refused(tmp_path: Path, path: str) -> None:
    src = tiny_export(tmp_path / "a" / "b" / "src", ["evil", "good"])
    write_label_map(tmp_path / "a" / "outside.nii.gz", label_map(0))
    (src / "segmentations" / "link").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "CT.nii.gz").write_bytes((src / "segmentations/task-0001/CT.nii.gz").read_bytes())
    records = read_records(src)
    records[0]["series"][0]["segmentations"] = path
    write_records(src, records)
    report = labelport.export(src, tmp_path / "out", ["nifti"])
    assert _messages(report) == {"evil": f"task 'evil': path {path!r} leads outside the export folder (for an export "
                                         "you trust, --allow-outside-paths reads it)"}
    if path != "/etc/passwd":
        trusted = labelport.export(src, tmp_path / "trusted", ["nifti"], allow_outside_paths=True)
        assert trusted.ok


def test_the_same_refusal_whether_the_outside_file_exists_or_not(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a"])
    messages = []
    for path in ("/etc/shadow", "/etc/no-such-file-here"):
        records = read_records(src)
        records[0]["series"][0]["segmentations"] = path
        write_records(src, records)
        messages.append(_messages(labelport.export(src, tmp_path / "out", ["nifti"]))["a"].replace(path, "P"))
    assert messages[0] == messages[1]


def test_a_header_claiming_a_huge_volume_is_refused_before_allocating(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["huge", "good"])
    path = src / "segmentations" / "task-0000" / "CT.nii.gz"
    img = nib.Nifti1Image(np.zeros((2048, 2048, 1), np.uint16), np.eye(4))
    img.header.set_data_shape((2048, 2048, 1024))
    header = img.header.binaryblock + b"\0" * 4
    import gzip

    path.write_bytes(gzip.compress(header + b"\0" * 4096))
    records = read_records(src)
    records[0]["series"][0]["imageHeaders"] = {"dimensions": [2048, 2048, 1024]}
    write_records(src, records)
    report = labelport.export(src, tmp_path / "out", ["nifti"], max_label_memory=1 << 30)
    assert "label map would take 8.0 GiB (2048x2048x1024 uint16); the limit is 1.0 GiB" in _messages(report)["huge"]
    del records[0]["series"][0]["imageHeaders"]["dimensions"]
    records[0]["series"][0]["imageHeaders"]["dimensions"] = [6, 5, 4]
    write_records(src, records)
    report = labelport.export(src, tmp_path / "out2", ["nifti"])  # against the image grid, before allocating
    assert "label map is 2048x2048x1024 but the image series is 6x5x4" in _messages(report)["huge"]


def test_data_past_the_declared_volume_is_refused_without_reading_it(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["long", "good"])
    path = src / "segmentations" / "task-0000" / "CT.nii.gz"
    data = np.zeros((6, 5, 8), np.uint8)
    data[:, :, 4:] = 2  # instance 2 lives only in the slices the header will not declare
    img = nib.Nifti1Image(data, np.diag([-1.0, -1.0, 2.0, 1.0]))
    raw = img.to_bytes()
    header = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(raw))
    header.set_data_shape((6, 5, 4))
    import gzip

    path.write_bytes(gzip.compress(header.binaryblock + raw[348:] + b"\0" * (1 << 20)))
    report = labelport.export(src, tmp_path / "out", ["nifti"])
    assert "label map holds more data than its header declares (6x5x4 uint8)" in _messages(report)["long"]


@pytest.mark.parametrize("name", ["~evil", "~", ".hidden"])
def test_names_never_lead_to_a_home_folder_or_a_hidden_file(tmp_path: Path, name: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    src = tiny_export(tmp_path / "src", [name])
    records = read_records(src)
    records[0]["series"][0]["name"] = name
    write_records(src, records)
    monkeypatch.chdir(tmp_path)
    report = labelport.export(src, tmp_path / "out", ["mhd", "nifti"])
    assert report.ok, [str(f) for f in report.failures]
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and ".labelport" not in p.parts]
    assert all(not part.startswith(("~", ".")) for p in written for part in p.relative_to(tmp_path / "out").parts)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("~")]


@pytest.mark.parametrize("key", ["01", "١", "1_0", "+1", " 1", "0"])
def test_segment_map_keys_must_be_plain_instance_ids(tmp_path: Path, key: str) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"])
    records = read_records(src)
    seg_map = records[0]["series"][0]["segmentMap"]
    seg_map[key] = seg_map.pop("1")
    write_records(src, records)
    report = labelport.export(src, tmp_path / "out", ["nifti"])
    assert f"segmentMap key {key!r} is not an instance id as RedBrick writes them" in _messages(report)["a"]


@pytest.mark.parametrize("affine", [np.full((4, 4), np.nan), np.zeros((4, 4))])
def test_a_label_map_without_usable_geometry_is_refused(tmp_path: Path, affine: np.ndarray) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"])
    path = src / "segmentations" / "task-0000" / "CT.nii.gz"
    img = nib.Nifti1Image(label_map(0), None)
    img.header.set_qform(None, code=0)
    img.header.set_sform(affine, code=1)
    img.header["pixdim"][1:4] = 0 if not np.isnan(affine).any() else np.nan
    nib.save(img, str(path))
    report = labelport.export(src, tmp_path / "out", ["nifti", "png"])
    assert "label map has no usable geometry" in _messages(report)["a"]


@pytest.mark.parametrize("class_id", [-4, 65535, 1.5, True])
def test_class_ids_must_fit(tmp_path: Path, class_id: Any) -> None:
    taxonomy = json.loads(json.dumps(TAXONOMY))
    taxonomy["objectTypes"][0]["classId"] = class_id
    src = tiny_export(tmp_path / "src", ["a"], taxonomy=taxonomy)
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "out"), "-w", "semantic-nifti"])
    assert result.exit_code == 1 and "is not a whole number from 0 to 65534" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_writers_image_folder_cannot_be_left_through_a_task_name(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["../escape"])
    records = read_records(src)
    records[0]["series"][0]["items"] = []
    write_records(src, records)
    (tmp_path / "escape" / "CT").mkdir(parents=True)
    (tmp_path / "escape" / "CT" / "0001.dcm").write_bytes(b"not for this export")
    (tmp_path / "images").mkdir()
    options = {"rtstruct": {"images": str(tmp_path / "images")}}
    report = labelport.export(src, tmp_path / "out", ["rtstruct"], options=options)
    assert "no DICOM images for this series" in _messages(report)["../escape"]


# -- 14, 15, 16. clear errors, not tracebacks ------------------------------------------------------------------


def test_a_full_disk_fails_the_task_by_name_and_a_rerun_completes(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import labelport.context

    src = tiny_export(tmp_path / "src", ["a", "b", "c"])
    real = labelport.context.move_into_place

    def full(tmp: str, final: str) -> None:
        if "/b/" in final:
            raise OSError(errno.ENOSPC, "No space left on device", final)
        real(tmp, final)

    monkeypatch.setattr(labelport.context, "move_into_place", full)
    report = labelport.export(src, tmp_path / "out", ["nifti"])
    assert list(_messages(report)) == ["b"] and "No space left on device" in _messages(report)["b"]
    assert not list((tmp_path / "out" / ".labelport" / "tmp").glob("*"))
    monkeypatch.setattr(labelport.context, "move_into_place", real)
    assert labelport.export(src, tmp_path / "out", ["nifti"]).ok
    assert _all_trees(tmp_path / "out") == _all_trees(_clean(src, tmp_path / "clean"))


@pytest.mark.parametrize("make,expected", [
    (lambda tmp: tmp / "file" / "out", "is not a folder"),
    (lambda tmp: Path("/dev/null"), "is not a folder"),
    (lambda tmp: tmp / "tasksdir", "tasks.json is a folder"),
    (lambda tmp: tmp / "dotfile", ".labelport"),
])
def test_an_unusable_output_folder_is_one_line(tmp_path: Path, make: Any, expected: str) -> None:
    src = tiny_export(tmp_path / "src", ["a"])
    (tmp_path / "file").write_text("x")
    (tmp_path / "tasksdir" / "tasks.json").mkdir(parents=True)
    (tmp_path / "dotfile").mkdir()
    (tmp_path / "dotfile" / ".labelport").write_text("x")
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(make(tmp_path)), "-w", "nifti"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("error: ") and expected in result.output


def test_a_read_only_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tiny_export(tmp_path / "src", ["a"])
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    if os.geteuid() == 0:  # root may write anywhere: let the folder answer as it answers everyone else
        import labelport.outdir

        monkeypatch.setattr(labelport.outdir.os, "access", lambda path, mode: not str(path).endswith("/ro"))
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "ro" / "out"), "-w", "nifti"])
    assert result.exit_code == 1 and result.output == f"error: cannot write into {tmp_path / 'ro'}: permission denied\n"


def test_an_unreadable_label_map_says_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"])
    path = src / "segmentations" / "task-0000" / "CT.nii.gz"
    path.chmod(0)
    if os.geteuid() == 0:  # root reads every file: let this one refuse as it refuses everyone else
        import labelport.niftiio

        real = labelport.niftiio._open

        def refuse(name: str) -> Any:
            if name == str(path):
                raise PermissionError(13, "Permission denied", name)
            return real(name)

        monkeypatch.setattr(labelport.niftiio, "_open", refuse)
    report = labelport.export(src, tmp_path / "out", ["nifti"])
    assert _messages(report) == {"a": f"task 'a', series 'CT', file {path}: cannot read label map: permission denied"}


@pytest.mark.parametrize("kwargs,expected", [
    ({"unknown_labels": None}, "unknown_labels must be 'error' or 'warn', not None"),
    ({"unknown_labels": "ERROR"}, "unknown_labels must be 'error' or 'warn', not 'ERROR'"),
    ({"unknown_labels": "ignore"}, "unknown_labels must be 'error' or 'warn'"),
    ({"workers": 0}, "workers must be a whole number of at least 1"),
    ({"workers": "2"}, "workers must be a whole number of at least 1"),
    ({"workers": True}, "workers must be a whole number of at least 1"),
    ({"force": "yes"}, "force must be True or False"),
    ({"only_ground_truth": 1}, "only_ground_truth must be True or False"),
    ({"stage": 3}, "stage must be a stage name or None"),
    ({"options": {"nifti": "compresslevel=1"}}, "options must map writer names to"),
    ({"options": ["nifti"]}, "options must map writer names to"),
    ({"task_ids": 5}, "task_ids must be a list of strings, not int"),
    ({"task_ids": [5]}, "task_ids must be a list of non-empty strings; got 5"),
    ({"progress": "bar"}, "progress must be a function or None"),
    ({"registry": "nifti"}, "registry must be a labelport Registry or None"),
    ({"taxonomy": 5}, "taxonomy must be a file path or None"),
    ({"task_timeout": -1}, "task_timeout must be a number of seconds above 0"),
    ({"max_label_memory": "4GiB"}, "max_label_memory must be a number of bytes above 0 or None"),
    ({"writers": 5}, "writers must be a list of strings, not int"),
    ({"writers": [None]}, "writers must be a list of non-empty strings; got None"),
    ({"out": None}, "out must be a folder path"),
    ({"out": ""}, "out must be a folder path"),
    ({"source": 5}, "source must be a folder path or a labelport Source"),
])
def test_misuse_of_the_python_api_is_one_clear_error(tmp_path: Path, kwargs: dict[str, Any], expected: str) -> None:
    src = tiny_export(tmp_path / "src", ["a"])
    args = {"source": src, "out": tmp_path / "out", "writers": ["nifti"], **kwargs}
    with pytest.raises(OptionError) as info:
        labelport.export(args.pop("source"), args.pop("out"), args.pop("writers"), **args)
    assert expected in str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_lone_task_id_or_writer_name_is_not_split_into_characters(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a", "b"])
    report = labelport.export(src, tmp_path / "out", "nifti", task_ids="t-0001")
    assert report.ok and [t["name"] for t in _tasks(tmp_path / "out")] == ["b"]


def test_nibabel_log_lines_are_printed_once(tmp_path: Path) -> None:
    src = tiny_export(tmp_path / "src", ["a"])
    path = src / "segmentations" / "task-0000" / "CT.nii.gz"
    img = nib.load(str(path))
    header = img.header.copy()
    header["qform_code"] = 7  # nibabel logs "qform_code 7 not valid; setting to 0" when it reads the header
    path.write_bytes(__import__("gzip").compress(header.binaryblock + b"\0" * 4 +
                                                 np.asarray(img.dataobj).tobytes(order="F")))
    run = subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(src), "-o", str(tmp_path / "out"),
                          "-w", "nifti", "-j", "1"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "qform_code 7" in line]
    assert len(lines) == 1, run.stderr
