"""Re-exports that find nothing changed without looking at each task (labelport.seal): they are taken only when
every input still stands, and a change of any kind leads to the same output as a clean export."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from cases import TAXONOMY, label_map, read_records, tiny_export, write_label_map, write_records

import labelport
from labelport.pipeline import TaskDone
from labelport.sources import LocalExport, local, lookups

NAMES = ["a", "b", "dup", "dup"]


def _trees(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".labelport" not in p.relative_to(out).parts}


class Spy:
    """Counts the tasks whose files an export looked up (none when it took the seal)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = LocalExport.input_files

        def counted(source: LocalExport, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(source, *args, **kwargs)

        monkeypatch.setattr(LocalExport, "input_files", counted)

    def export(self, *args: Any, **kwargs: Any) -> tuple[labelport.ExportReport, int]:
        """An export, and how many tasks it looked at."""
        self.calls = 0
        report = labelport.export(*args, **kwargs)
        return report, self.calls


@pytest.fixture(params=["descriptor, times", "descriptor, files", "path, times", "path, files"])
def spy(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Spy:
    """(Each test runs four times: folders listed through a descriptor opened without following links, or, as
    where that cannot be done, by path with a look-up of their own for whether they are links; and folders
    noted by their times, as those that changed a while before they are listed are, or by their files, as the
    others are, and every folder of a test's export that has just been made.)"""
    how, noted = request.param.split(", ")
    if how == "path":
        monkeypatch.setattr(lookups, "_NO_LINK", 0)
    monkeypatch.setattr(lookups, "RECENT", 0 if noted == "times" else 1 << 62)
    return Spy(monkeypatch)


def test_an_export_that_finds_nothing_changed_looks_nothing_up(tmp_path: Path, spy: Spy) -> None:
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    first, looked = spy.export(src, out, ["nifti", "png"])
    assert first.ok and looked == 4
    done: list[TaskDone] = []
    progress: list[tuple[int, int | None, bool]] = []
    again, looked = spy.export(src, out, ["nifti", "png"], on_task=done.append,
                               progress=lambda *a: progress.append(a))
    assert again.ok and looked == 0
    assert again.unchanged == {"nifti": 4, "png": 4} and again.written == {"nifti": 0, "png": 0}
    assert again.tasks_seen == 4 and progress == [(n, 4, False) for n in range(1, 5)]
    records = read_records(src)
    assert [(d.name, d.task_id, d.unchanged, d.written) for d in done] == \
        [(r["name"], r["taskId"], ("nifti", "png"), ()) for r in records]
    dry, looked = spy.export(src, out, ["nifti", "png"], dry_run=True)
    assert looked == 0 and dry.unchanged == {"nifti": 4, "png": 4}
    clean = tmp_path / "clean"
    labelport.export(src, clean, ["nifti", "png"])
    assert _trees(out) == _trees(clean)


def _rewrite_in_place(path: Path) -> None:
    """New voxels, the same size and modification time (only the change time tells)."""
    before = path.stat()
    kept = np.asarray(nib.load(str(path)).dataobj)
    for index in np.ndindex(kept.shape):  # a voxel whose change compresses to the same size
        data = kept.copy()
        data[index] = 2 if data[index] != 2 else 1
        write_label_map(path, data)
        if path.stat().st_size == before.st_size:
            break
    assert path.stat().st_size == before.st_size and path.stat().st_ino == before.st_ino
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _project_paths(src: Path) -> None:
    """Records that name their label maps from the export's parent (``<project>/segmentations/...``), which
    are looked up in ``<export>/<project>/segmentations/...`` first: there, the first task's folder is there
    (without its label map), the others' are not."""
    records = read_records(src)
    for record in records:
        record["series"][0]["segmentations"] = f"{src.name}/{record['series'][0]['segmentations']}"
    write_records(src, records)
    first = src / records[0]["series"][0]["segmentations"]
    first.parent.mkdir(parents=True)
    (first.parent / "notes.txt").write_text("not a label map")


def _shadow(src: Path, task: int) -> None:
    """A label map appears where a task's path is looked up first."""
    write_label_map(src / read_records(src)[task]["series"][0]["segmentations"], label_map(7) * 0 + 1)


def _shadow_times_kept(src: Path, task: int) -> None:
    """As :func:`_shadow`, with the folder's modification time put back (only its change time tells)."""
    folder = (src / read_records(src)[task]["series"][0]["segmentations"]).parent
    before = folder.stat()
    _shadow(src, task)
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))


def _image(src: Path) -> None:
    image = src / read_records(src)[1]["series"][0]["items"][0]
    image.parent.mkdir(parents=True)
    image.write_bytes(b"an image")


def _taxonomy(src: Path) -> None:
    taxonomy = json.loads((src / "taxonomy.json").read_text())
    taxonomy["objectTypes"][0]["color"] = "#123456"
    (src / "taxonomy.json").write_text(json.dumps(taxonomy))


def _record(src: Path) -> None:
    records = read_records(src)
    records[2]["series"][0]["segmentMap"]["1"]["category"] = "Tumor"
    write_records(src, records)


def _record_in_place(src: Path) -> None:
    """A record changes, tasks.json keeps its size and modification time (only its change time tells)."""
    path, before = src / "tasks.json", (src / "tasks.json").stat()
    records = read_records(src)
    records[1]["name"] = "c"  # (was "b")
    write_records(src, records)
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _respelled(src: Path) -> None:
    (src / "tasks.json").write_text(json.dumps(read_records(src)))  # the same records, other white space


def _label_gone(src: Path) -> None:
    (src.parent / read_records(src)[3]["series"][0]["segmentations"]).unlink()


CHANGES: dict[str, tuple[Callable[[Path], None], int]] = {  # a change, and the tasks it has written again
    "label map rewritten in place": (lambda src: _rewrite_in_place(src / "segmentations/task-0001/CT.nii.gz"), 1),
    "a missing image appears": (_image, 1),
    "a label map appears in a folder where it is looked for first": (lambda src: _shadow(src, 0), 1),
    "a label map appears where it is looked for first": (lambda src: _shadow(src, 1), 1),
    "a label map appears in a folder whose modification time is put back": (lambda src: _shadow_times_kept(src, 0),
                                                                             1),
    "taxonomy": (_taxonomy, 4),
    "a record": (_record, 1),
    "a record, tasks.json keeping its size and modification time": (_record_in_place, 1),
    "tasks.json respelled": (_respelled, 0),
    "a label map is removed": (_label_gone, 0),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_is_seen(tmp_path: Path, spy: Spy, change: str) -> None:
    src = tiny_export(tmp_path / "src", NAMES)
    _project_paths(src)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    edit, written = CHANGES[change]
    edit(src)
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and report.written == {"nifti": written}, [str(f) for f in report.failures]
    clean = tmp_path / "clean"
    labelport.export(src, clean, ["nifti"])
    assert _trees(out) == _trees(clean)
    again, looked = spy.export(src, out, ["nifti"])
    assert (looked == 0) == report.ok and again.unchanged == {"nifti": 4 - len(report.failures)}


def test_folders_are_noted_by_their_times_only_when_they_changed_a_while_before(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.nii.gz").write_bytes(b"a")
    for listing in (lookups.folder_listing, lookups.real_folder_listing):
        assert listing(str(folder)) == ({"a.nii.gz": False}, b"")  # just changed: by its files
    os.utime(folder, ns=(0, 0))  # (its change time is now)
    assert lookups.folder_listing(str(folder)) == ({"a.nii.gz": False}, b"")
    made = lookups.Lookups()
    made.start()
    made.listed(str(folder), ({"a.nii.gz": False}, b""))
    assert made.take()[0][2] == lookups._listing_digest({"a.nii.gz": False})
    st = folder.stat()
    later = max(st.st_mtime_ns, st.st_ctime_ns) + lookups.RECENT + 1
    for listing in (lookups.folder_listing, lookups.real_folder_listing):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lookups.time, "time_ns", lambda: later)
            files, state = listing(str(folder))  # type: ignore[misc]
        assert files == {"a.nii.gz": False} and state == lookups._state(st)
    assert lookups.still_hold([(lookups.LISTED_REAL, str(folder), lookups._state(st))])
    (folder / "b.nii.gz").write_bytes(b"b")
    assert not lookups.still_hold([(lookups.LISTED_REAL, str(folder), lookups._state(st))])
    assert not lookups.still_hold([(lookups.LISTED, str(folder), lookups._state(st))])


def test_lost_output_files_are_written_again(tmp_path: Path, spy: Spy) -> None:
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    clean = _trees(out)
    (out / next(p for p in clean if p.startswith("segmentations/"))).unlink()
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and report.written == {"nifti": 1} and _trees(out) == clean
    (out / "tasks.json").unlink()  # the project step's file: it is not a task's
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 0 and _trees(out) == clean


def test_other_settings_or_writers_look_again(tmp_path: Path, spy: Spy) -> None:
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti", "png"]).ok
    for kwargs, looked_at in [({"options": {"png": {"mode": "index"}}}, 4), ({}, 4), ({}, 0),
                              ({"images": "copy"}, 4), ({"images": "copy"}, 0), ({"images": "copy", "force": True}, 4)]:
        report, looked = spy.export(src, out, ["nifti", "png"], **kwargs)
        assert report.ok and looked == looked_at, kwargs
    report, looked = spy.export(src, out, ["png", "nifti"], images="copy")  # another order: another first manifest
    assert looked == 4


def test_one_writer_alone_then_both(tmp_path: Path, spy: Spy) -> None:
    """A writer exported on its own into its root of a two-writer export: the other's seal no longer matches."""
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti", "png"]).ok
    _record(src)
    report, looked = spy.export(src, out / "png", ["png"])
    assert report.written == {"png": 1} and looked == 4
    report, looked = spy.export(src, out, ["nifti", "png"])
    assert looked == 4 and report.written == {"nifti": 1, "png": 0}
    clean = tmp_path / "clean"
    labelport.export(src, clean, ["nifti", "png"])
    assert _trees(out) == _trees(clean)


def test_a_failed_task_or_a_filter_leaves_no_seal(tmp_path: Path, spy: Spy) -> None:
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    label = src / "segmentations/task-0002/CT.nii.gz"
    kept = label.read_bytes()
    label.write_bytes(kept[:20])  # truncated: its task fails
    assert len(labelport.export(src, out, ["nifti"]).failures) == 1
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and len(report.failures) == 1  # tried (and reported) again
    label.write_bytes(kept)
    report, looked = spy.export(src, out, ["nifti"], stage="END")  # a filtered export cannot seal
    assert report.ok and looked == 2
    report, looked = spy.export(src, out, ["nifti"])
    assert report.ok and looked == 4 and report.written == {"nifti": 0}  # (the filtered export wrote it)
    report, looked = spy.export(src, out, ["nifti"], stage="END")  # nor does it drop a seal when nothing changed
    assert report.ok and looked == 2
    assert spy.export(src, out, ["nifti"])[1] == 0


def test_a_folder_replaced_by_a_link_is_seen(tmp_path: Path, spy: Spy) -> None:
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    folder = src / "segmentations/task-0001"
    shutil.move(folder, src / "moved")
    folder.symlink_to(src / "moved")
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and len(report.failures) == 1 and "leads outside the export folder" in report.failures[0].message


def test_the_source_spelled_otherwise_looks_again(tmp_path: Path, spy: Spy, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    monkeypatch.chdir(tmp_path)
    report, looked = spy.export("src", out, ["nifti"])
    assert looked == 4 and report.unchanged == {"nifti": 4}  # the fingerprints do not depend on the spelling
    assert spy.export("src", out, ["nifti"])[1] == 0
    other = tmp_path / "other"  # another folder, spelled the same from another place
    other.mkdir()
    shutil.copytree(src, other / "src")
    monkeypatch.chdir(other)
    report, looked = spy.export("src", out, ["nifti"])
    assert looked == 4 and report.written == {"nifti": 4}


def test_a_manifest_changed_by_anything_else_is_not_trusted(tmp_path: Path, spy: Spy) -> None:
    """The seal goes with the first change to a task's record in the manifest, made by any export."""
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    path = out / ".labelport" / "manifest.sqlite"
    from labelport.manifest import Manifest

    manifest = Manifest(str(out))
    assert manifest.seal is not None
    manifest.forget("t-0001")
    manifest.save()
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and report.written == {"nifti": 1}
    manifest = Manifest(str(out))
    assert manifest.seal is not None
    files, entry, folder = manifest._db.execute("SELECT files, entry, folder FROM task WHERE key = 't-0002'").fetchone()
    manifest.record("t-0002", "another fingerprint", json.loads(files), entry, folder)
    manifest.save()
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and report.written == {"nifti": 1}
    with sqlite3.connect(path) as db:
        db.execute("UPDATE seen SET value = x'00' WHERE kind = ?", (lookups.LABEL,))
    db.close()
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and report.unchanged == {"nifti": 4}
    for summary in ('{"records": "4", "categories": []}', "not JSON", None):  # a summary that is not one
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM meta WHERE name = 'seal_summary'")
            if summary is not None:
                db.execute("INSERT INTO meta VALUES ('seal_summary', ?)", (summary,))
        db.close()
        report, looked = spy.export(src, out, ["nifti"])
        assert looked == 4 and report.unchanged == {"nifti": 4}
    assert spy.export(src, out, ["nifti"])[1] == 0


class Splits:
    """Counts the times tasks.json is split (none when an export took the seal); ``before`` runs first."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, before: Callable[[], None] = lambda: None) -> None:
        from labelport.sources.recordfile import RecordFile

        self.count, real = 0, RecordFile.__init__

        def counted(records: RecordFile, path: Path) -> None:
            self.count += 1
            before()
            real(records, path)

        monkeypatch.setattr(RecordFile, "__init__", counted)


def test_a_sealed_export_reads_no_record(tmp_path: Path, spy: Spy, monkeypatch: pytest.MonkeyPatch) -> None:
    """It takes the number of tasks and the categories that complete the taxonomy from the seal: the same
    counts, warnings and review taxonomy as an export that reads every record, with one worker or two."""
    src = tiny_export(tmp_path / "src", NAMES, taxonomy={"name": "partial", "objectTypes": [
        {"category": "Kidney", "classId": 4, "color": "#00ff00"}]})
    out = tmp_path / "out"
    splits = Splits(monkeypatch)
    first, looked = spy.export(src, out, ["nifti", "semantic-nifti"])
    assert first.ok and looked == 4 and splits.count == 1
    assert any("categories missing from the taxonomy" in w for w in first.warnings)
    review = (out / "nifti" / ".labelport" / "taxonomy.json").read_bytes()
    for workers in (1, 2):
        again, looked = spy.export(src, out, ["nifti", "semantic-nifti"], workers=workers)
        assert looked == 0 and splits.count == 1
        assert (again.tasks_seen, again.unchanged, again.warnings) == (4, first.written, first.warnings)
        assert (out / "nifti" / ".labelport" / "taxonomy.json").read_bytes() == review
    (src / "taxonomy.json").write_text(json.dumps(TAXONOMY))  # (the categories now all have their class ids)
    report, looked = spy.export(src, out, ["nifti", "semantic-nifti"])
    assert looked == 4 and splits.count == 2 and not report.warnings
    assert report.written["semantic-nifti"] == 4  # (the class ids changed)
    clean = tmp_path / "clean"
    labelport.export(src, clean, ["nifti", "semantic-nifti"])
    assert _trees(out) == _trees(clean)


def test_a_sealed_export_reads_tasks_json_only_when_it_changed_lately(tmp_path: Path, spy: Spy,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest of tasks.json (and of the taxonomy file) kept with the seal stands for its bytes while the
    file's state is the same, unless the file had changed within RECENT of when the digest was made."""
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    read: list[str] = []
    real = local.file_digest
    monkeypatch.setattr(local, "file_digest", lambda path: read.append(os.path.basename(path)) or real(path))
    assert spy.export(src, out, ["nifti"])[0].ok
    again, looked = spy.export(src, out, ["nifti"])
    assert again.ok and looked == 0
    assert read == ([] if lookups.RECENT == 0 else ["tasks.json", "taxonomy.json"])
    (src / "taxonomy.json").unlink()  # (a taxonomy derived from the records)
    assert spy.export(src, out, ["nifti"])[1] == 4
    del read[:]
    assert spy.export(src, out, ["nifti"])[1] == 0 and read == ([] if lookups.RECENT == 0 else ["tasks.json"])
    _record_in_place(src)
    report, looked = spy.export(src, out, ["nifti"])
    assert looked == 4 and report.written == {"nifti": 1}


def test_a_file_digest_kept_otherwise_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A digest kept for tasks.json that is not what this labelport makes of its bytes (another version's, say)
    makes a key that no seal has: that export looks at every task and keeps the digest it made, and the next one
    (whose key it makes) seals again."""
    monkeypatch.setattr(lookups, "RECENT", 0)
    spy = Spy(monkeypatch)
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert spy.export(src, out, ["nifti"])[0].ok
    with contextlib.closing(sqlite3.connect(out / ".labelport" / "manifest.sqlite")) as db, db:
        kept = json.loads(db.execute("SELECT value FROM meta WHERE name = 'digests'").fetchone()[0])
        assert str(src / "tasks.json") in kept
        for entry in kept.values():
            entry[1] = "sha256:" + entry[1]
        db.execute("INSERT OR REPLACE INTO meta VALUES ('digests', ?)", (json.dumps(kept),))
    for _ in range(2):
        report, looked = spy.export(src, out, ["nifti"])
        assert report.ok and looked == 4 and report.unchanged == {"nifti": 4}
    assert spy.export(src, out, ["nifti"])[1] == 0


def test_tasks_json_changed_while_it_is_read_leaves_no_seal(tmp_path: Path, spy: Spy,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is made from tasks.json's bytes before its records are split: when the split finds other bytes,
    the export does not seal (a later tasks.json with the first bytes again would be taken for the records
    exported)."""
    src = tiny_export(tmp_path / "src", NAMES)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    spelled = [json.dumps(read_records(src)), json.dumps(read_records(src), indent=3)]
    (src / "tasks.json").write_text(spelled[0])  # (the seal does not hold: the key's digest is of these bytes)
    rewrite = [True]
    Splits(monkeypatch, before=lambda: rewrite[0] and (src / "tasks.json").write_text(spelled[1]))
    report, looked = spy.export(src, out, ["nifti"])
    assert report.ok and looked == 4 and report.unchanged == {"nifti": 4}
    from labelport.manifest import Manifest

    assert Manifest(str(out)).seal is None
    rewrite[0] = False
    (src / "tasks.json").write_text(spelled[0])
    assert spy.export(src, out, ["nifti"])[1] == 4
    assert spy.export(src, out, ["nifti"])[1] == 0


def test_paths_that_are_resolved_are_looked_up_every_time(tmp_path: Path, spy: Spy) -> None:
    """An absolute path is resolved (through any symbolic links) to check that it stays inside the export:
    that is not an observation a later export could repeat without resolving it again."""
    src = tiny_export(tmp_path / "src", NAMES)
    records = read_records(src)
    records[0]["series"][0]["segmentations"] = str(src / records[0]["series"][0]["segmentations"])
    write_records(src, records)
    out = tmp_path / "out"
    assert labelport.export(src, out, ["nifti"]).ok
    for _ in range(2):
        report, looked = spy.export(src, out, ["nifti"])
        assert report.ok and looked == 4 and report.unchanged == {"nifti": 4}


def test_output_files_are_present_exactly_when_isfile_says_so(tmp_path: Path) -> None:
    """A folder holding several of a task's files is listed once instead of one stat per file: the answer
    is the same, for files gone, folders, links to files and broken links."""
    import random

    from labelport.manifest import Manifest

    rng = random.Random(5)
    root = tmp_path / "out"
    manifest = Manifest(str(root))
    names = [f"segmentations/t/{n:03d}.png" for n in range(8)] + ["segmentations/u/a.nii.gz", "tasks.json"]
    for trial in range(60):
        case = root / f"case-{trial}"
        for name in names:
            (case / name).parent.mkdir(parents=True, exist_ok=True)
            (case / name).write_bytes(b"x")
        for name in rng.sample(names, rng.randrange(3)):
            path = case / name
            path.unlink()
            how = rng.choice(["gone", "folder", "link", "broken link"])
            if how == "folder":
                path.mkdir()
            elif how == "link":
                path.symlink_to(case / "tasks.json" if name != "tasks.json" else case / "segmentations/u/a.nii.gz")
            elif how == "broken link":
                path.symlink_to(case / "nowhere")
        files = [f"case-{trial}/{name}" for name in rng.sample(names, rng.randrange(1, len(names) + 1))]
        assert manifest.present(files) == all((root / f).is_file() for f in files), (trial, files)
    manifest.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked worker processes are a POSIX thing")
def test_output_file_lists_read_without_a_json_parser_are_the_lists_written() -> None:
    """The manifest's lists of a task's files, as json.dumps writes them, read back the same whatever the paths
    hold (quotes, commas and spaces between them, escapes, other scripts); anything else is an error."""
    import random

    from labelport.manifest import _files

    rng = random.Random(7)
    pieces = ["a", "b/c.nii.gz", '"', ", ", '", "', "\\", "é", "\n", "[", "]", " ", ","]
    for _ in range(3000):
        files = ["".join(rng.choices(pieces, k=rng.randrange(0, 5))) for _ in range(rng.randrange(0, 4))]
        assert _files(json.dumps(files)) == files == _files(json.dumps(files, separators=(",", ":"))), files
    for text in ['["a", 1]', '{"a": "b"}', '"a"', '["a"']:
        with pytest.raises(ValueError):
            _files(text)


def test_worker_processes_forked_from_an_export_keep_no_observations(tmp_path: Path) -> None:
    """Forked workers inherit the source: their own look-ups (for the tasks they run) are not kept, so their
    memory does not grow with the tasks they run."""
    import multiprocessing

    src = LocalExport(tiny_export(tmp_path / "src", NAMES))
    src.start_lookups()
    paths = [r["series"][0]["segmentations"] for r in read_records(src.root)]

    def look(conn: Any) -> None:
        for path in paths:
            src.find(path)
        conn.send(len(src.lookups.made or ()))

    parent, child = multiprocessing.get_context("fork").Pipe()
    worker = multiprocessing.get_context("fork").Process(target=look, args=(child,))
    worker.start()
    assert parent.recv() == 0
    worker.join()
    look(child)
    assert parent.recv() > 0
