"""The RedBrick API source against the emulator, in each way RedBrick serves labels (a labels file behind
``labelsDataPath``, inline ``labelsData``, or a mix): an export through the API equals the export of the same
project from a local export folder, with faults injected; caching; filters; keys; events, listing and active
time; no presigned URL or key in any output."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from redbrick_emulator import Emulator
from redbrick_project import ORG, PROJECT, Project, serve_export

import labelport
from labelport import SourceError, TaskFilter
from labelport.cli import cli
from labelport.sources.queries import QUERIES
from labelport.sources.redbrick import RedBrickProject
from labelport.sources.transport import RetryPolicy
from labelport.testing import output_files

KEY = "r" * 43
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, timeout=5.0)
LOCATION = f"redbrick:{ORG}/{PROJECT}"
T1, T2, T3, T4 = (f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 5))


@pytest.fixture(params=["path", "inline", "mixed"])
def served(request: pytest.FixtureRequest, demo: Path) -> Iterator[tuple[Emulator, Path, Project]]:
    with Emulator(KEY, slow_seconds=0.5) as emulator:
        project = serve_export(emulator, demo, labels=request.param, page_size=2)
        yield emulator, demo, project
        assert emulator.rejected == [], "a document the schema refuses was sent"


def _project(emulator: Emulator, tmp_path: Path, **kwargs: Any) -> RedBrickProject:
    kwargs.setdefault("policy", FAST)
    return RedBrickProject(ORG, PROJECT, key=KEY, url=emulator.url, cache=tmp_path / "cache", **kwargs)


def _same_export(a: Path, b: Path) -> None:
    local = json.loads((a / "tasks.json").read_text())
    remote = json.loads((b / "tasks.json").read_text())
    for task in local:
        task.pop("x-custom", None)  # a field of the local file that RedBrick's task model cannot carry
    assert remote == local
    assert output_files(a) == output_files(b)
    for rel in output_files(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env={"REDBRICK_API_KEY": KEY, **(env or {})})


def _gets(emulator: Emulator, prefix: str) -> list[str]:
    return [name for method, name in emulator.requests if method == "GET" and name.startswith(prefix)]


@pytest.mark.parametrize("operation", sorted(QUERIES))
def test_every_document_is_valid_on_redbricks_schema(operation: str) -> None:
    from graphql import parse, validate
    from redbrick_emulator import load_schema, operation_name

    document = parse(QUERIES[operation])
    assert [e.message for e in validate(load_schema(), document)] == []
    assert operation_name(document) == operation


def test_export_through_the_api_equals_the_local_export(served: tuple[Emulator, Path, Project],
                                                         tmp_path: Path) -> None:
    emulator, demo, project = served
    labelport.export(demo, tmp_path / "local", ["nifti"])
    report = labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["nifti"])
    assert report.ok, [str(f) for f in report.failures]
    _same_export(tmp_path / "local", tmp_path / "api")
    assert emulator.requests.count(("POST", "tasksPagedSDK")) == 2  # two pages of two
    labels_files = {"path": 4, "inline": 0, "mixed": 2}[project.labels]
    assert len(_gets(emulator, "labels/")) == labels_files  # the labels behind labelsDataPath, fetched once each
    assert emulator.signature not in (tmp_path / "api" / "tasks.json").read_text()


def test_faults_are_survived(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, demo, _ = served
    emulator.fail("tasksPagedSDK", "500", times=3)
    emulator.fail("tasksPagedSDK", "429", times=2)
    emulator.fail("presignItemsSDK", "429")
    emulator.fail(f"labelmaps/{T1}", "drop")
    emulator.fail(f"labelmaps/{T4}", "drop")
    emulator.fail(f"labelmaps/{T2}", "truncate")  # a gzip cut short, with a Content-Length that agrees
    emulator.fail(f"labelmaps/{T3}", "truncate")
    emulator.fail(f"labelmaps/{T3}", "slow")  # then a stall past the timeout (0.5 s against 0.3 s, as 40 s to 30 s)
    emulator.fail(f"labels/{T3}", "truncate")
    labelport.export(demo, tmp_path / "local", ["nifti"])
    slow = RetryPolicy(attempts=6, stalls=2, base=0.01, cap=0.05, timeout=0.3)
    report = labelport.export(_project(emulator, tmp_path, policy=slow), tmp_path / "api", ["nifti"])
    assert report.ok, [str(f) for f in report.failures]
    _same_export(tmp_path / "local", tmp_path / "api")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith((".part", ".decoded"))]


def test_downloads_are_cached_and_checked_when_reused(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, demo, _ = served
    for _ in range(2):
        labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["nifti"], force=True)
    maps = _gets(emulator, "labelmaps/")
    assert len(maps) == 5 and len(set(maps)) == 5  # five label maps, fetched once
    cached = sorted((tmp_path / "cache").rglob("*.nii*"))
    assert len(cached) == 5 and "127.0.0.1" in cached[0].relative_to(tmp_path / "cache").parts[0]
    cached[0].write_bytes(cached[0].read_bytes()[:-12])  # damaged since: fetched again
    for labels in (tmp_path / "cache").rglob("labels.json"):
        labels.write_text("[{")  # half a labels file
    labelport.export(_project(emulator, tmp_path), tmp_path / "again", ["nifti"])
    assert len(_gets(emulator, "labelmaps/")) == 6
    _same_export(tmp_path / "api", tmp_path / "again")
    labelport.export(demo, tmp_path / "local", ["nifti"])
    _same_export(tmp_path / "local", tmp_path / "again")


def test_the_cache_is_kept_apart_per_endpoint(demo: Path, tmp_path: Path) -> None:
    with Emulator(KEY) as one, Emulator(KEY) as two:
        serve_export(one, demo)
        other = serve_export(two, demo)
        for task in other.tasks:  # the same ids, other labels
            for m in task["labelMaps"]:
                two.files[m["path"]] = gzip.compress(b"not a label map", mtime=0)
        labelport.export(_project(one, tmp_path), tmp_path / "one", ["nifti"])
        report = labelport.export(_project(two, tmp_path), tmp_path / "two", ["nifti"])
        assert report.failed_tasks == 4  # fetched from the second server, not served from the first one's cache


def test_since_and_filters(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, _, _ = served
    since = [t.name for t in _project(emulator, tmp_path, since="2025-03-03T10:30:00+00:00")]
    assert since == ["Patient 003", "Patient 004"]  # at or after
    assert [t.name for t in _project(emulator, tmp_path, since="2025-03-04")] == ["Patient 004"]
    review = [t.name for t in _project(emulator, tmp_path, task_filter=TaskFilter.of(stage="Review_1"))]
    assert review == ["Patient 003"]
    ground_truth = _project(emulator, tmp_path, task_filter=TaskFilter.of(only_ground_truth=True))
    assert [t.name for t in ground_truth] == ["Patient 001", "Patient 002", "Patient 004"]
    one = _project(emulator, tmp_path, task_filter=TaskFilter.of([T2, "nope"]))
    assert [t.name for t in one] == ["Patient 002"] and one.missing_task_ids() == ["nope"]


def test_a_filtered_export_keeps_every_other_tasks_record(served: tuple[Emulator, Path, Project],
                                                          tmp_path: Path) -> None:
    emulator, _, project = served
    out = tmp_path / "api"
    labelport.export(_project(emulator, tmp_path), out, ["nifti"])
    before = (out / "tasks.json").read_bytes()
    project.tasks[3]["metaData"] = {"site": "edited"}
    for kwargs in ({"since": "2025-03-04"}, {"task_filter": TaskFilter.of([T4])}):
        report = labelport.export(_project(emulator, tmp_path, **kwargs), out, ["nifti"])
        assert report.ok and report.removed == {"nifti": 0} and report.tasks_seen == 1
        listed = json.loads((out / "tasks.json").read_text())
        assert [t["taskId"] for t in listed] == [T1, T2, T3, T4] and listed[3]["metaData"] == {"site": "edited"}
        assert listed[:3] == json.loads(before)[:3]


@pytest.mark.parametrize("since", ["yesterday", "2025-03-02T12:00:00", "2025-13-01"])
def test_a_malformed_since_stops_before_any_request(demo: Path, tmp_path: Path, since: str) -> None:
    with Emulator(KEY) as emulator:
        serve_export(emulator, demo)
        result = _cli("export", LOCATION, "-o", str(tmp_path / "out"), "-w", "nifti", "--api-url", emulator.url,
                      "--since", since)
        assert result.exit_code == 1 and emulator.requests == []
    line = result.output.strip()
    assert line.startswith(f"error: --since {since!r} ") and "\n" not in line
    assert ("no time zone" in line) == (since == "2025-03-02T12:00:00")


def test_bad_key_stops_with_one_clear_line(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, _, _ = served
    wrong = "w" * 43
    with pytest.raises(SourceError) as info:
        RedBrickProject(ORG, PROJECT, key=wrong, url=emulator.url, cache=tmp_path, policy=FAST)
    assert "refused the API key" in str(info.value) and wrong not in str(info.value)


def test_missing_project(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, _, _ = served
    nope = "99999999-9999-4999-8999-999999999999"
    result = _cli("export", f"redbrick:{ORG}/{nope}", "-o", str(tmp_path / "out"), "-w", "nifti",
                  "--api-url", emulator.url)
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"error: RedBrick project {nope} not found in organization {ORG} (or the API key has no access to it)"]
    assert not (tmp_path / "out").exists()
    bad = _cli("export", f"redbrick:{ORG}/not-a-uuid", "-o", str(tmp_path / "out"), "-w", "nifti",
               "--api-url", emulator.url)
    assert bad.exit_code == 1 and bad.output.strip().splitlines() == [
        "error: 'not-a-uuid' is not a RedBrick project id (those are UUIDs, as in the project's URL)"]
    assert emulator.requests.count(("POST", "getProjectSDK")) == 1


def test_command_line(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, demo, _ = served
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = ["export", LOCATION, "-o", str(tmp_path / "api"), "--writer", "nifti", "--api-url", emulator.base_url,
            "-j", "1"]
    result = _cli(*args, env=env)
    assert result.exit_code == 0, result.output
    assert "nifti: 4 written" in result.output
    labelport.export(demo, tmp_path / "local", ["nifti"])
    _same_export(tmp_path / "local", tmp_path / "api")
    wrong = "x" * 43
    bad = _cli(*args, env={**env, "REDBRICK_API_KEY": wrong})
    assert bad.exit_code == 1 and wrong not in bad.output
    assert bad.output.strip().splitlines() == [
        "error: the RedBrick API refused the API key (HTTP 401); check REDBRICK_API_KEY or your RedBrick CLI profile"]
    since = _cli(*args[:-2], "--since", "2025-03-03T10:30:00Z", "-o", str(tmp_path / "s"), env=env)
    assert since.exit_code == 0 and "nifti: 2 written" in since.output
    local = _cli("export", str(demo), "-o", str(tmp_path / "x"), "-w", "nifti", "--since", "x")
    assert local.exit_code == 2 and "--since, --api-url, --profile and --ca-bundle are for redbrick:" in local.output


def test_parallel_export_through_the_api(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, demo, _ = served
    labelport.export(demo, tmp_path / "local", ["nifti"])
    report = labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["nifti"], workers=2)
    assert report.ok, [str(f) for f in report.failures]
    _same_export(tmp_path / "local", tmp_path / "api")


def test_server_stopped_mid_export_then_a_rerun_completes(demo: Path, tmp_path: Path) -> None:
    labelport.export(demo, tmp_path / "local", ["nifti"])
    with Emulator(KEY) as emulator:
        serve_export(emulator, demo, page_size=2)
        policy = RetryPolicy(attempts=2, base=0.01, cap=0.02, timeout=2.0)
        project = _project(emulator, tmp_path, policy=policy, lookahead=0, download_threads=1)
        refs = project.refs()
        next(refs)
        emulator.stop()  # the first page is in; the second never comes
        with pytest.raises(SourceError, match=r"RedBrick request tasksPagedSDK failed after 2 attempts "
                                              r"\(connection failed\)"):
            list(refs)
        result = _cli("export", LOCATION, "-o", str(tmp_path / "api"), "-w", "nifti", "--api-url", emulator.url)
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1].startswith("error: RedBrick request getProjectSDK failed after")
        emulator.restart()
        again = _cli("export", LOCATION, "-o", str(tmp_path / "api"), "-w", "nifti", "--api-url", emulator.url,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
        assert again.exit_code == 0, again.output
    _same_export(tmp_path / "local", tmp_path / "api")


def test_images_are_downloaded_when_a_writer_needs_them(tmp_path: Path, make_case: Any) -> None:
    project = make_case(tmp_path / "case", "--tasks", "2", "--thin", "--shape", "64", "56", "24")
    with Emulator(KEY) as emulator:
        serve_export(emulator, project)
        labelport.export(_project(emulator, tmp_path), tmp_path / "nifti", ["nifti"])
        assert not _gets(emulator, "images/")
        # reference: the API's items (storage paths) are kept, the download cache is never named
        source_items = [s["items"] for t in json.loads((project / "tasks.json").read_text()) for s in t["series"]]
        assert [s["items"] for t in json.loads((tmp_path / "nifti" / "tasks.json").read_text())
                for s in t["series"]] == source_items
        report = labelport.export(_project(emulator, tmp_path), tmp_path / "api", ["rtstruct", "images-nifti"],
                                  images="copy")
        assert report.ok, [str(f) for f in report.failures]
        assert len(_gets(emulator, "images/")) == 48
        copied = labelport.export(_project(emulator, tmp_path), tmp_path / "api-copy", ["nifti"], images="copy")
        assert copied.ok, [str(f) for f in copied.failures]  # a writer that reads no image: still downloaded
    # the images copied next to the output: the same names and bytes from the API as from the export folder
    labelport.export(project, tmp_path / "local", ["rtstruct", "images-nifti"], images="copy")
    for writer in ("rtstruct", "images-nifti"):
        _same_export(tmp_path / "local" / writer, tmp_path / "api" / writer)
    labelport.export(project, tmp_path / "local-copy", ["nifti"], images="copy")
    _same_export(tmp_path / "local-copy", tmp_path / "api-copy")
    assert len(list((tmp_path / "api-copy" / "images").rglob("*.dcm"))) == 48


def test_active_time(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, _, project = served
    project.active_time = [{"stageName": "Label", "taskId": t["taskId"], "user": "u-annotator" if n % 2 else "API:k1",
                            "timeSpent": 1000.0 * n, "cycle": 1, "date": t["labelsAt"]}
                           for n, t in enumerate(project.tasks)]
    records = list(_project(emulator, tmp_path).active_time("Label"))
    assert records[1] == {"orgId": ORG, "projectId": PROJECT, "stageName": "Label", "taskId": T2,
                          "completedBy": "annotator@example.com", "timeSpent": 1000.0,
                          "completedAt": "2025-03-02T10:30:00.000000+00:00", "cycle": 1}
    assert records[0]["completedBy"] == "API Key - ci-bot"
    assert [r["taskId"] for r in records] == [T1, T2, T3, T4]  # two pages
    result = _cli("active-time", LOCATION, "--stage", "Label", "--task-id", T3, "--api-url", emulator.url)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["timeSpent"] for line in result.output.splitlines()] == [2000.0]
    assert list(_project(emulator, tmp_path).active_time("Review_1")) == []


def test_events(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, demo, _ = served
    records = list(_project(emulator, tmp_path).events())
    assert [r["taskName"] for r in records] == ["Patient 001", "Patient 002", "Patient 003", "Patient 004"]
    day, tdid = "2025-03-01T", "10000000-0000-4000-8000-000000000001"
    assert records[0] == {
        "taskId": T1, "taskName": "Patient 001", "currentStageName": "END",
        "events": [
            {"eventType": "TASK_CREATED", "createdAt": f"{day}09:00:00.000000+00:00", "isGroundTruth": False,
             "priority": 0.5, "createdBy": "API Key - API:k1", "labelsId": tdid},
            {"eventType": "TASK_ASSIGNED", "createdAt": f"{day}09:05:00.000000+00:00",
             "assignee": "annotator@example.com", "stage": "Label"},
            {"eventType": "COMMENT_ADDED", "createdAt": f"{day}09:20:00.000000+00:00",
             "commentId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{T1}/comment")),
             "commentText": "Check the left kidney", "createdBy": "annotator@example.com", "stage": "Label",
             "isIssue": True, "issueResolved": False, "labelsId": tdid,
             "replies": [{"commentId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{T1}/reply")), "commentText": "Done",
                          "createdBy": "System", "stage": "Label", "isIssue": False, "issueResolved": False}]},
            {"eventType": "TASK_SUBMITTED", "createdAt": f"{day}10:00:00.000000+00:00", "stage": "Label",
             "updatedBy": "annotator@example.com", "timeSpentMs": 600000.0, "labelsId": tdid},
            {"eventType": "TASK_ASSIGNED", "createdAt": f"{day}10:10:00.000000+00:00",
             "assignee": "reviewer@example.com", "stage": "Review_1"},
            {"eventType": "TASK_ACCEPTED", "createdAt": f"{day}10:30:00.000000+00:00", "stage": "Review_1",
             "updatedBy": "reviewer@example.com", "timeSpentMs": 120000.0, "labelsId": tdid},
        ]}
    # the task still in review: its save was not its last event, so it is not reported
    assert [e["eventType"] for e in records[2]["events"]] == [
        "TASK_CREATED", "TASK_ASSIGNED", "COMMENT_ADDED", "TASK_SUBMITTED", "TASK_ASSIGNED"]
    ground_truth = list(_project(emulator, tmp_path, task_filter=TaskFilter.of(only_ground_truth=True)).events())
    assert [r["taskName"] for r in ground_truth] == ["Patient 001", "Patient 002", "Patient 004"]
    since = list(_project(emulator, tmp_path, since="2025-03-03T10:30:00+00:00").events())
    assert [r["taskName"] for r in since] == ["Patient 003", "Patient 004"]
    result = _cli("events", LOCATION, "--task-id", records[1]["taskId"], "--api-url", emulator.url)
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == [records[1]]
    assert ("POST", "taskEventSDK") in emulator.requests

    # the same trail saved in the export folder, as RedBrick's `redbrick report` writes it, gives the same answers
    (demo / "report-1700000000.json").write_text(json.dumps(records[:1]))  # an older report
    (demo / "report-1741000000.json").write_text(json.dumps(records, indent=2))
    for args, expected in [((), records), (("--only-ground-truth",), list(ground_truth)),
                           (("--since", "2025-03-03T10:30:00+00:00"), list(since)),
                           (("--task-id", records[1]["taskId"]), [records[1]])]:
        result = _cli("events", str(demo), *args)
        assert result.exit_code == 0, result.output
        assert [json.loads(line) for line in result.output.splitlines()] == expected, args


def test_task_listing(served: tuple[Emulator, Path, Project], tmp_path: Path) -> None:
    emulator, demo, _ = served
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
    assert [t["name"] for t in project.list_tasks("GROUNDTRUTH")] == ["Patient 001", "Patient 002", "Patient 004"]
    # one stage at a time, the project's first by default (Label: every task completed it but the one in review)
    completed = [t["name"] for t in project.list_tasks("COMPLETED", limit=2)]
    assert completed == ["Patient 001", "Patient 002"]
    assert [t["name"] for t in project.list_tasks(stage="Review_1")] == ["Patient 003"]  # QUEUED in Review_1
    assert [t["name"] for t in project.list_tasks("QUEUED", stage="Review_1", user_id="u-reviewer")] == ["Patient 003"]
    assert [t["name"] for t in project.list_tasks("ALL", user_id="u-reviewer")] == [t["name"] for t in listed]
    assert [t["name"] for t in project.list_tasks(name="Patient 00")] == [t["name"] for t in listed]
    assert list(project.list_tasks(name="Patient 00", exact_match=True)) == []
    assert list(project.list_tasks("UNASSIGNED")) == []
    with pytest.raises(SourceError, match="unknown search 'LATER'"):
        list(project.list_tasks("LATER"))
    result = _cli("tasks", LOCATION, "--search", "groundtruth", "--name", "Patient 004", "--exact",
                  "--api-url", emulator.url)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["name"] for line in result.output.splitlines()] == ["Patient 004"]
    bad = _cli("tasks", LOCATION, "--api-url", emulator.url, env={"REDBRICK_API_KEY": "z" * 43})
    assert bad.exit_code == 1 and bad.output.startswith("error: the RedBrick API refused the API key")
