"""The RedBrick API source against the emulator: an export through the API equals the export of the same
project from a local export folder, with faults injected; filters; keys; no presigned URL in the output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redbrick_emulator import Emulator
from redbrick_project import serve_export

import labelport
from labelport import SourceError, TaskFilter
from labelport.sources.redbrick import RedBrickProject
from labelport.sources.transport import RetryPolicy
from labelport.testing import output_files

KEY = "r" * 43
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, timeout=5.0)


@pytest.fixture
def served(demo: Path) -> Iterator[tuple[Emulator, Path]]:
    with Emulator(KEY, slow_seconds=0.5) as emulator:
        serve_export(emulator, demo, page_size=2)
        yield emulator, demo


def _project(emulator: Emulator, tmp_path: Path, **kwargs: Any) -> RedBrickProject:
    return RedBrickProject("org", "project", key=KEY, url=emulator.url, cache=tmp_path / "cache", policy=FAST,
                           **kwargs)


def _same_export(a: Path, b: Path) -> None:
    local = json.loads((a / "tasks.json").read_text())
    remote = json.loads((b / "tasks.json").read_text())
    for task in local:
        task.pop("x-custom", None)  # a field of the local file that RedBrick's task model cannot carry
    assert remote == local
    assert output_files(a) == output_files(b)
    for rel in output_files(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_export_through_the_api_equals_the_local_export(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, demo = served
    labelport.export(demo, tmp_path / "local", ["nifti"])
    report = labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["nifti"])
    assert report.ok, [str(f) for f in report.failures]
    _same_export(tmp_path / "local", tmp_path / "api")
    assert emulator.requests.count(("POST", "tasksPagedSDK")) == 2  # two pages of two
    assert "X-Signature" not in (tmp_path / "api" / "tasks.json").read_text()


def test_faults_are_survived(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, demo = served
    emulator.fail("tasksPagedSDK", "500", times=2)
    emulator.fail("presignItemsSDK", "429")
    emulator.fail("labels/00000000-0000-4000-8000-000000000001", "drop")
    emulator.fail("labels/00000000-0000-4000-8000-000000000002", "truncate")
    emulator.fail("labels/00000000-0000-4000-8000-000000000003", "slow")
    labelport.export(demo, tmp_path / "local", ["nifti"])
    slow = RetryPolicy(attempts=4, base=0.01, cap=0.05, timeout=0.3)
    project = RedBrickProject("org", "project", key=KEY, url=emulator.url, cache=tmp_path / "cache", policy=slow)
    report = labelport.export(project, tmp_path / "api", ["nifti"])
    assert report.ok, [str(f) for f in report.failures]
    _same_export(tmp_path / "local", tmp_path / "api")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".part")]


def test_downloads_are_cached(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, _ = served
    for _ in range(2):
        labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["nifti"], force=True)
    downloads = [r for r in emulator.requests if r[0] == "GET"]
    assert len(downloads) == 5  # five label maps, fetched once


def test_since_and_filters(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, _ = served
    since = [t.name for t in _project(emulator, tmp_path, since="2025-03-02T12:00:00+00:00")]
    assert since == ["Patient 003", "Patient 004"]
    review = [t.name for t in _project(emulator, tmp_path, task_filter=TaskFilter.of(stage="Review_1"))]
    assert review == ["Patient 003"]
    ground_truth = _project(emulator, tmp_path, task_filter=TaskFilter.of(only_ground_truth=True))
    assert [t.name for t in ground_truth] == ["Patient 001", "Patient 002", "Patient 004"]
    one = _project(emulator, tmp_path, task_filter=TaskFilter.of(["00000000-0000-4000-8000-000000000002", "nope"]))
    assert [t.name for t in one] == ["Patient 002"] and one.missing_task_ids() == ["nope"]


def test_bad_key_stops_with_one_clear_line(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, _ = served
    wrong = "w" * 43
    with pytest.raises(SourceError) as info:
        RedBrickProject("org", "project", key=wrong, url=emulator.url, cache=tmp_path, policy=FAST)
    assert "refused the API key" in str(info.value) and wrong not in str(info.value)


def test_missing_project(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labelport.cli import cli

    emulator, _ = served
    emulator.handlers["getTaxonomySDK"] = lambda v: {"project": None}
    result = CliRunner().invoke(cli, ["export", "redbrick:org/nope", "-o", str(tmp_path / "out"), "-w", "nifti",
                                      "--api-url", emulator.url], env={"REDBRICK_API_KEY": KEY})
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "error: RedBrick project nope not found in organization org (or the API key has no access to it)"]
    assert not (tmp_path / "out").exists()


def test_command_line(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labelport.cli import cli

    emulator, demo = served
    env = {"REDBRICK_API_KEY": KEY, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = ["export", "redbrick:org/project", "-o", str(tmp_path / "api"), "--writer", "nifti",
            "--api-url", emulator.url, "-j", "1"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "nifti: 4 written" in result.output
    labelport.export(demo, tmp_path / "local", ["nifti"])
    _same_export(tmp_path / "local", tmp_path / "api")
    wrong = "x" * 43
    bad = CliRunner().invoke(cli, args, env={**env, "REDBRICK_API_KEY": wrong})
    assert bad.exit_code == 1 and wrong not in bad.output
    assert bad.output.strip().splitlines() == [
        "error: the RedBrick API refused the API key (HTTP 401); check REDBRICK_API_KEY"]
    since = CliRunner().invoke(cli, [*args[:-2], "--since", "2025-03-02T12:00:00+00:00", "-o", str(tmp_path / "s")],
                               env=env)
    assert since.exit_code == 0 and "nifti: 2 written" in since.output
    local = CliRunner().invoke(cli, ["export", str(demo), "-o", str(tmp_path / "x"), "-w", "nifti", "--since", "x"])
    assert local.exit_code == 1 and "--since and --api-url are for redbrick:" in local.output


def test_parallel_export_through_the_api(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, demo = served
    labelport.export(demo, tmp_path / "local", ["nifti"])
    report = labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["nifti"], workers=2)
    assert report.ok, [str(f) for f in report.failures]
    _same_export(tmp_path / "local", tmp_path / "api")


def test_images_are_downloaded_when_a_writer_needs_them(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--tasks", "2", "--thin", "--shape", "64", "56", "24")
    with Emulator(KEY) as emulator:
        serve_export(emulator, project)
        labelport.export(_project(emulator, tmp_path), tmp_path / "nifti", ["nifti"])
        assert not [r for r in emulator.requests if r[0] == "GET" and r[1].startswith("images/")]
        report = labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["rtstruct", "images-nifti"])
        assert report.ok, [str(f) for f in report.failures]
        assert len([r for r in emulator.requests if r[0] == "GET" and r[1].startswith("images/")]) == 48
    labelport.export(project, tmp_path / "local", ["rtstruct", "images-nifti"])
    for writer in ("rtstruct", "images-nifti"):
        _same_export(tmp_path / "local" / writer, tmp_path / "api" / writer)


def test_active_time(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labelport.cli import cli

    emulator, _ = served
    entries = [{"taskId": f"t{n}", "user": {"userId": "u1", "email": f"user{n % 2}@example.com", "givenName": "U"},
                "timeSpent": 1000 * n, "cycle": 1, "date": f"2025-03-0{1 + n % 9}T10:00:00Z"} for n in range(7)]

    def handler(v: dict[str, Any]) -> dict[str, Any]:
        chosen = [e for e in entries if v.get("taskId") in (None, e["taskId"])] if v["stageName"] == "Label" else []
        start, size = int(v.get("after") or 0), 3
        return {"taskActiveTime": {"entries": chosen[start:start + size],
                                   "cursor": str(start + size) if start + size < len(chosen) else None}}

    emulator.handlers["taskActiveTimeSDK"] = handler
    records = list(_project(emulator, tmp_path).active_time("Label"))
    assert records[3] == {"orgId": "org", "projectId": "project", "stageName": "Label", "taskId": "t3",
                          "completedBy": "user1@example.com", "timeSpent": 3000,
                          "completedAt": "2025-03-04T10:00:00Z", "cycle": 1}
    assert [r["taskId"] for r in records] == [f"t{n}" for n in range(7)]  # three pages
    result = CliRunner().invoke(cli, ["active-time", "redbrick:org/project", "--stage", "Label", "--task-id", "t5",
                                      "--api-url", emulator.url], env={"REDBRICK_API_KEY": KEY})
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["timeSpent"] for line in result.output.splitlines()] == [5000]
    assert list(_project(emulator, tmp_path).active_time("Review_1")) == []


def test_events(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labelport.cli import cli

    emulator, _ = served
    records = list(_project(emulator, tmp_path).events())
    assert [r["taskName"] for r in records] == ["Patient 001", "Patient 002", "Patient 003", "Patient 004"]
    day, tdid = "2025-03-01T", "10000000-0000-4000-8000-000000000001"
    assert records[0] == {
        "taskId": "00000000-0000-4000-8000-000000000001", "taskName": "Patient 001", "currentStageName": "END",
        "events": [
            {"eventType": "TASK_CREATED", "createdAt": f"{day}09:00:00.000000+00:00", "isGroundTruth": False,
             "priority": 0.5, "createdBy": "API Key - ci-bot"},
            {"eventType": "TASK_ASSIGNED", "createdAt": f"{day}09:05:00.000000+00:00",
             "assignee": "annotator@example.com", "stage": "Label"},
            {"eventType": "COMMENT_ADDED", "createdAt": f"{day}09:20:00.000000+00:00", "commentId": "c-01",
             "commentText": "Check the left kidney", "createdBy": "annotator@example.com", "stage": "Label",
             "isIssue": True, "issueResolved": False, "labelsId": tdid,
             "replies": [{"commentId": "r-01", "commentText": "Done", "createdBy": "System", "stage": "Label",
                          "isIssue": False, "issueResolved": False}]},
            {"eventType": "TASK_SUBMITTED", "createdAt": f"{day}10:00:00.000000+00:00", "stage": "Label",
             "updatedBy": "annotator@example.com", "timeSpentMs": 600000, "labelsId": tdid},
            {"eventType": "TASK_ASSIGNED", "createdAt": f"{day}10:10:00.000000+00:00",
             "assignee": "reviewer@example.com", "stage": "Review_1"},
            {"eventType": "TASK_ACCEPTED", "createdAt": f"{day}10:30:00.000000+00:00", "stage": "Review_1",
             "updatedBy": "reviewer@example.com", "timeSpentMs": 120000, "labelsId": tdid},
        ]}
    # the task still in review: its save was not its last event, so it is not reported
    assert [e["eventType"] for e in records[2]["events"]] == [
        "TASK_CREATED", "TASK_ASSIGNED", "COMMENT_ADDED", "TASK_SUBMITTED", "TASK_ASSIGNED"]
    ground_truth = _project(emulator, tmp_path, task_filter=TaskFilter.of(only_ground_truth=True)).events()
    assert [r["taskName"] for r in ground_truth] == ["Patient 001", "Patient 002", "Patient 004"]
    since = _project(emulator, tmp_path, since="2025-03-02T12:00:00+00:00").events()
    assert [r["taskName"] for r in since] == ["Patient 003", "Patient 004"]
    env = {"REDBRICK_API_KEY": KEY}
    result = CliRunner().invoke(cli, ["events", "redbrick:org/project", "--task-id", records[1]["taskId"],
                                      "--api-url", emulator.url], env=env)
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == [records[1]]
    assert ("POST", "taskEventSDK") in emulator.requests


def test_task_listing(served: tuple[Emulator, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labelport.cli import cli

    emulator, demo = served
    project = _project(emulator, tmp_path)
    listed = list(project.list_tasks())
    assert [t["name"] for t in listed] == ["Patient 001", "Patient 002", "Patient 003", "Patient 004"]
    source = json.loads((demo / "tasks.json").read_text())[2]
    assert listed[2] == {
        "taskId": source["taskId"], "name": "Patient 003", "createdAt": source["createdAt"],
        "currentStageName": "Review_1", "storageId": source["storageId"], "updatedAt": source["updatedAt"],
        "createdBy": "uploader@example.com", "priority": 0.5, "metaData": source["metaData"],
        "series": [{k: s[k] for k in ("name", "metaData", "imageHeaders") if k in s} for s in source["series"]],
        "assignees": [{"user": "reviewer@example.com", "status": "IN_PROGRESS",
                       "assignedAt": source["updatedAt"]}]}
    assert listed[0]["assignees"] == [{"user": "annotator@example.com", "status": "COMPLETED",
                                       "assignedAt": "2025-03-01T10:30:00.000000+00:00",
                                       "completedAt": "2025-03-01T10:30:00.000000+00:00", "timeSpentMs": 600000}]
    assert [t["name"] for t in project.list_tasks("GROUNDTRUTH")] == ["Patient 001", "Patient 002", "Patient 004"]
    assert [t["name"] for t in project.list_tasks("COMPLETED", limit=2)] == ["Patient 001", "Patient 002"]
    assert [t["name"] for t in project.list_tasks(stage="Review_1")] == ["Patient 003"]
    assert [t["name"] for t in project.list_tasks(user_id="u-reviewer")] == ["Patient 003"]
    assert [t["name"] for t in project.list_tasks(name="Patient 00")] == [t["name"] for t in listed]
    assert list(project.list_tasks(name="Patient 00", exact_match=True)) == []
    assert list(project.list_tasks("UNASSIGNED")) == []
    with pytest.raises(SourceError, match="unknown search 'LATER'"):
        list(project.list_tasks("LATER"))
    result = CliRunner().invoke(cli, ["tasks", "redbrick:org/project", "--search", "groundtruth", "--name",
                                      "Patient 004", "--exact", "--api-url", emulator.url],
                                env={"REDBRICK_API_KEY": KEY})
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["name"] for line in result.output.splitlines()] == ["Patient 004"]
    bad = CliRunner().invoke(cli, ["tasks", "redbrick:org/project", "--api-url", emulator.url],
                             env={"REDBRICK_API_KEY": "z" * 43})
    assert bad.exit_code == 1 and bad.output.startswith("error: the RedBrick API refused the API key")
