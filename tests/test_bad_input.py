"""Bad input: each problem is reported with the task, series and file, nothing half-written stays, and every
other task is still exported."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import labelport
from labelport.cli import cli
from labelport.testing import output_files


def _tasks(root: Path) -> list[dict[str, Any]]:
    return json.loads((root / "tasks.json").read_text())


def _save_tasks(root: Path, tasks: list[dict[str, Any]]) -> None:
    (root / "tasks.json").write_text(json.dumps(tasks, indent=2))


def _files(root: Path) -> list[str]:
    return output_files(root)


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_missing_tasks_json(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _run("export", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "--writer", "nifti")
    assert result.exit_code == 1
    assert "tasks.json: file not found" in result.output


def test_missing_folder(tmp_path: Path) -> None:
    result = _run("export", str(tmp_path / "nope"), "-o", str(tmp_path / "o"), "--writer", "nifti")
    assert result.exit_code == 2 and "export folder not found" in result.output  # a wrong command line


def test_malformed_tasks_json(demo: Path, tmp_path: Path) -> None:
    text = (demo / "tasks.json").read_text()
    (demo / "tasks.json").write_text(text[: len(text) // 2])
    result = _run("export", str(demo), "-o", str(tmp_path / "o"), "--writer", "nifti")
    assert result.exit_code == 1
    assert "malformed JSON at line" in result.output and "tasks.json" in result.output


def test_tasks_json_not_a_list(demo: Path, tmp_path: Path) -> None:
    (demo / "tasks.json").write_text('{"taskId": "x"}')
    result = _run("export", str(demo), "-o", str(tmp_path / "o"), "--writer", "nifti")
    assert result.exit_code == 1 and "expected a JSON array" in result.output


def test_truncated_label_map(demo: Path, tmp_path: Path) -> None:
    path = demo / "segmentations/Patient 003/CT.nii.gz"
    path.write_bytes(path.read_bytes()[:-40])
    out = tmp_path / "o"
    result = _run("export", str(demo), "-o", str(out), "--writer", "nifti")
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if line.startswith("failed:"))
    assert "task 'Patient 003'" in line and "series 'CT'" in line and "CT.nii.gz" in line
    assert "truncated" in line or "corrupt" in line
    assert [t["name"] for t in _tasks(out)] == ["Patient 001", "Patient 002", "Patient 004"]
    assert not any("Patient 003" in f for f in _files(out))
    assert not any(f.endswith(".tmp") for f in _files(out))


def test_truncated_uncompressed_map(demo: Path, tmp_path: Path) -> None:
    path = demo / "segmentations/Patient 002/T2 axial.nii"
    path.write_bytes(path.read_bytes()[:1000])
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert [f.task for f in report.failures] == ["Patient 002"]
    assert "truncated" in report.failures[0].message and "T2 axial" in report.failures[0].message
    assert report.written == {"nifti": 3}


def test_not_a_nifti(demo: Path, tmp_path: Path) -> None:
    (demo / "segmentations/Patient 001/CT.nii.gz").write_bytes(b"PK\x03\x04 not nifti at all" * 20)
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert len(report.failures) == 1 and "not a NIfTI file" in report.failures[0].message


def test_label_value_missing_from_segment_map(demo: Path, tmp_path: Path) -> None:
    tasks = _tasks(demo)
    del tasks[0]["series"][0]["segmentMap"]["3"]  # voxels with value 3 remain
    _save_tasks(demo, tasks)
    result = _run("export", str(demo), "-o", str(tmp_path / "o"), "--writer", "nifti")
    assert result.exit_code == 1
    assert "task 'Patient 001'" in result.output and "series 'CT'" in result.output
    assert "value(s) 3" in result.output
    assert len(_tasks(tmp_path / "o")) == 3
    # on request the task is exported as stored, with a warning
    result = _run("export", str(demo), "-o", str(tmp_path / "w"), "--writer", "nifti", "--unknown-labels", "warn")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "[3]" in result.output
    assert len(_tasks(tmp_path / "w")) == 4


def test_segmentation_path_missing(demo: Path, tmp_path: Path) -> None:
    tasks = _tasks(demo)
    tasks[2]["series"][0]["segmentations"] = "segmentations/Patient 003/gone.nii.gz"
    _save_tasks(demo, tasks)
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert len(report.failures) == 1
    message = report.failures[0].message
    assert "task 'Patient 003'" in message and "gone.nii.gz" in message and "not found" in message
    assert report.written == {"nifti": 3}


def test_grid_disagrees_with_images(demo: Path, tmp_path: Path) -> None:
    tasks = _tasks(demo)
    tasks[0]["series"][0]["imageHeaders"]["dimensions"] = [32, 28, 11]
    _save_tasks(demo, tasks)
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert len(report.failures) == 1
    assert "label map is 32x28x12 but the image series is 32x28x11" in report.failures[0].message


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda t: t.pop("taskId"), "no 'taskId'"),
        (lambda t: t.update(series="CT"), "malformed task record: series: expected `array`, got `str`"),
        (lambda t: t["series"][0]["segmentMap"].update({"one": {"category": "Liver"}}), "'one' is not an instance id"),
        (lambda t: t["series"][0]["segmentMap"]["1"].update(overlappingGroups=[2]), "also instance ids"),
        (lambda t: t["series"][0]["segmentMap"]["1"].update(category=7),
         "series[0].segmentMap[<key>].category: expected `str | array | null`, got `int`"),
        (lambda t: t["series"][0].update(binaryMask=True), "binaryMask=true"),
    ],
)
def test_malformed_task_record(demo: Path, tmp_path: Path, damage: Any, expected: str) -> None:
    tasks = _tasks(demo)
    damage(tasks[0])
    _save_tasks(demo, tasks)
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert len(report.failures) == 1 and expected in report.failures[0].message
    assert report.written == {"nifti": 3}


def test_record_that_is_not_an_object(demo: Path, tmp_path: Path) -> None:
    tasks = _tasks(demo)
    tasks.insert(1, ["not", "a", "task"])
    _save_tasks(demo, tasks)
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert len(report.failures) == 1 and "not an object" in report.failures[0].message
    assert report.written == {"nifti": 4}


def test_hostile_names_stay_inside(demo: Path, tmp_path: Path) -> None:
    tasks = _tasks(demo)
    hostile = ["../../x", "/etc/x\x00y", "n" * 300, "CON"]
    for task, name in zip(tasks, hostile):
        task["name"] = name
        task["series"][0]["name"] = name
    tasks.append(json.loads(json.dumps(tasks[0])) | {"taskId": "dupe"})  # same name as task 1
    _save_tasks(demo, tasks)
    out = tmp_path / "sub" / "o"
    report = labelport.export(demo, out, ["nifti"])
    assert report.ok, report.failures
    everything = [p for p in tmp_path.rglob("*")]
    assert all(p.resolve().is_relative_to(out.resolve()) or p == out.parent for p in everything
               if not p.resolve().is_relative_to(demo.resolve()))
    folders = sorted(p.name for p in (out / "segmentations").iterdir())
    assert len(folders) == 5 and all(len(f.encode()) <= 120 for f in folders)
    assert "_CON" in folders and "_..-..-x" in folders and "_..-..-x-2" in folders
    for entry in _tasks(out):
        for series in entry["series"]:
            if "segmentations" in series:
                assert (out / series["segmentations"]).is_file()


@dataclass(frozen=True)
class _Options:
    fail_on: str = "Patient 002"


def _crashing_write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    for series in task.series:
        if series.label_map is not None:
            ctx.write_nifti(ctx.series_path(series, ".nii.gz"), series.label_map.array, like=series.label_map)
            if task.name == ctx.options.fail_on:
                raise RuntimeError("disk on fire")
    return task.to_record()


class _CrashingPlugin:
    @labelport.hookimpl
    def register_writers(self) -> list[labelport.WriterSpec]:
        return [labelport.WriterSpec("crashy", "fails on one task", _crashing_write, options=_Options)]


def test_writer_failure_removes_its_files(demo: Path, tmp_path: Path) -> None:
    registry = labelport.Registry(entry_point_plugins=False, extra=[("crashy", _CrashingPlugin())])
    out = tmp_path / "o"
    report = labelport.export(demo, out, ["crashy", "nifti"], registry=registry)
    assert [(f.task, f.writer) for f in report.failures] == [("Patient 002", "crashy")]
    assert "RuntimeError: disk on fire" in report.failures[0].message
    assert report.written == {"crashy": 3, "nifti": 4}
    assert not any("Patient 002" in f for f in _files(out / "crashy"))
    assert any("Patient 002" in f for f in _files(out / "nifti"))
    assert [t["name"] for t in _tasks(out / "crashy")] == ["Patient 001", "Patient 003", "Patient 004"]


def test_unknown_task_id_is_reported(demo: Path, tmp_path: Path) -> None:
    report = labelport.export(demo, tmp_path / "o", ["nifti"], task_ids=["no-such-task"])
    assert not report.ok and "no-such-task" in report.failures[0].message
    assert _tasks(tmp_path / "o") == []


def test_interrupted_export_keeps_previous_tasks_json(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    labelport.export(demo, out, ["nifti"])
    before = (out / "tasks.json").read_bytes()

    def interrupt(done: int, total: int | None, failed: bool) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        labelport.export(demo, out, ["nifti"], progress=interrupt)
    assert (out / "tasks.json").read_bytes() == before
    assert not any(f.endswith(".tmp") for f in _files(out))
    assert np.array_equal(
        labelport.read_label_nifti(str(out / "segmentations/Patient 001/CT.nii.gz")).array,
        labelport.read_label_nifti(str(demo / "segmentations/Patient 001/CT.nii.gz")).array)


def test_gzip_checksum_is_verified(demo: Path, tmp_path: Path) -> None:
    path = demo / "segmentations/Patient 001/CT.nii.gz"
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    path.write_bytes(bytes(raw))
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert [f.task for f in report.failures] == ["Patient 001"]
    assert "corrupt" in report.failures[0].message and "CT.nii.gz" in report.failures[0].message


def test_label_map_with_a_damaged_deflate_stream(demo: Path, tmp_path: Path) -> None:
    """Bytes overwritten inside the compressed data: the inflater finds an invalid block (ISA-L raises its own
    error type, not zlib's), so the task fails naming the file, and the others export."""
    path = demo / "segmentations/Patient 001/CT.nii.gz"
    raw = path.read_bytes()
    assert len(raw) > 400
    path.write_bytes(raw[:40] + b"\xff" * 300 + raw[340:])
    report = labelport.export(demo, tmp_path / "o", ["nifti"])
    assert [f.task for f in report.failures] == ["Patient 001"]
    assert "corrupt or truncated" in report.failures[0].message and "CT.nii.gz" in report.failures[0].message
    assert report.written == {"nifti": 3}
