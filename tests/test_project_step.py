"""A writer's project step: once per export, from every task of its root, incremental by construction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cases import read_records, tiny_export, write_records

import labelport
from labelport import WriterSpec
from labelport.testing import check_writer, project_files

CALLS: list[int] = []


def _write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    entry = task.to_record()
    entry["case"] = ctx.task_folder
    return entry


def _index(entries: labelport.TaskEntries, ctx: labelport.ProjectContext) -> None:
    CALLS.append(len(entries))
    ctx.write_json("dataset.json", {"cases": [e["case"] for e in entries],
                                    "classes": [c.name for c in ctx.taxonomy.categories]})


def _per_task_index(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    """What a writer without a project step is tempted to do: the project file from each task."""
    entry = _write(task, ctx)
    entry["dataset"] = ctx.write_json("dataset.json", {"cases": [entry["case"]]})
    return entry


def _stateful(entries: labelport.TaskEntries, ctx: labelport.ProjectContext) -> None:
    """A step that appends to what it wrote before instead of deriving everything from the entries."""
    seen = Path(ctx.root, "seen.json")
    old = json.loads(seen.read_text()) if seen.exists() else []
    ctx.write_json("seen.json", sorted(set(old) | {e["taskId"] for e in entries}))


def _fails(entries: labelport.TaskEntries, ctx: labelport.ProjectContext) -> None:
    ctx.write_json("partial.json", {})
    raise RuntimeError("no dataset for you")


class _Writers:
    @labelport.hookimpl
    def register_writers(self) -> list[WriterSpec]:
        return [WriterSpec("indexed", "d", _write, project=_index),
                WriterSpec("per-task-index", "d", _per_task_index),
                WriterSpec("stateful", "d", _write, project=_stateful),
                WriterSpec("fails", "d", _write, project=_fails)]


@pytest.fixture
def registry() -> labelport.Registry:
    return labelport.Registry(entry_point_plugins=False, extra=[("project-test", _Writers())])


def test_a_writer_with_a_project_step_passes_the_contract(tmp_path: Path, registry: labelport.Registry) -> None:
    check_writer("indexed", tmp_path, registry=registry)
    assert sorted(project_files(tmp_path / "out1")) == ["dataset.json", "tasks.json"]


@pytest.mark.parametrize(("name", "match"), [("per-task-index", "more than one task"),
                                             ("stateful", "after a task left")])
def test_the_contract_catches_project_files_that_are_not_from_the_whole_project(
        tmp_path: Path, registry: labelport.Registry, name: str, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        check_writer(name, tmp_path, registry=registry)


def test_the_step_sees_every_task_and_runs_only_when_something_changed(tmp_path: Path,
                                                                        registry: labelport.Registry) -> None:
    source = tiny_export(tmp_path / "src", ["a", "b", "c", "d"])
    out = tmp_path / "out"

    def dataset() -> list[str]:
        return json.loads((out / "dataset.json").read_text())["cases"]  # type: ignore[no-any-return]

    CALLS.clear()
    assert labelport.export(source, out, "indexed", registry=registry).ok
    assert dataset() == ["a", "b", "c", "d"] and CALLS == [4]
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert labelport.export(source, out, "indexed", registry=registry).written == {"indexed": 0}
    assert CALLS == [4], "an unchanged re-run ran the step again"
    # a filtered run that writes one task still gives the step the whole project
    report = labelport.export(source, out, "indexed", registry=registry, task_ids=["t-0001"], force=True)
    assert report.written == {"indexed": 1} and CALLS == [4, 4] and dataset() == ["a", "b", "c", "d"]
    assert (out / "dataset.json").stat().st_mtime_ns == stamp, "the same bytes were written again"
    # a task leaves the source
    write_records(source, [r for r in read_records(source) if r["taskId"] != "t-0002"])
    report = labelport.export(source, out, "indexed", registry=registry)
    assert report.removed == {"indexed": 1} and dataset() == ["a", "b", "d"]
    assert [e["taskId"] for e in json.loads((out / "tasks.json").read_text())] == ["t-0000", "t-0001", "t-0003"]
    # a file the step wrote goes missing: the step runs again
    (out / "dataset.json").unlink()
    labelport.export(source, out, "indexed", registry=registry)
    assert dataset() == ["a", "b", "d"]


def test_a_failing_step_fails_its_writer_by_name_and_leaves_no_file(tmp_path: Path,
                                                                    registry: labelport.Registry) -> None:
    source = tiny_export(tmp_path / "src", ["a", "b"])
    out = tmp_path / "out"
    report = labelport.export(source, out, ["fails", "indexed"], registry=registry)
    assert [(f.task, f.writer) for f in report.failures] == [("(project)", "fails")]
    assert (report.failed_tasks, report.failed_steps) == (0, 1)
    assert "no dataset for you" in report.failures[0].message
    assert report.written == {"fails": 2, "indexed": 2}, "the tasks are still exported"
    assert not (out / "fails" / "partial.json").exists()
    assert len(json.loads((out / "fails" / "tasks.json").read_text())) == 2
    assert (out / "indexed" / "dataset.json").exists(), "another writer's step is not affected"
    # the failure is not remembered as done: the next export runs the step again
    again = labelport.export(source, out, ["fails", "indexed"], registry=registry)
    assert [f.writer for f in again.failures] == ["fails"]


def test_files_the_step_no_longer_writes_are_removed(tmp_path: Path) -> None:
    names: list[str] = ["one.json", "two.json"]

    def step(entries: labelport.TaskEntries, ctx: labelport.ProjectContext) -> None:
        for name in names:
            ctx.write_json(name, len(entries))

    class Plugin:
        @labelport.hookimpl
        def register_writers(self) -> list[WriterSpec]:
            return [WriterSpec("steps", "d", _write, project=step)]

    registry = labelport.Registry(entry_point_plugins=False, extra=[("steps", Plugin())])
    source = tiny_export(tmp_path / "src", ["a"])
    out = tmp_path / "out"
    labelport.export(source, out, "steps", registry=registry)
    assert (out / "two.json").exists()
    names.pop()
    labelport.export(source, out, "steps", registry=registry, force=True)
    assert (out / "one.json").exists() and not (out / "two.json").exists()
