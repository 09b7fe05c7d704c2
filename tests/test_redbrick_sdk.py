"""labelport against RedBrick's own SDK (redbrick-sdk 2.35.4, run in its own virtual environment) on the same
emulated project, in each of the three ways RedBrick serves labels: the exported tasks, the audit trail (all
tasks and ground truth only), every task-list search and the active time must be equal, field by field. Label
maps and images are compared by content (the two tools lay out their files differently).

The only differences allowed are those listed in the README ("Where labelport and RedBrick's SDK differ"):
:data:`DIFFERENCES` holds them, and a difference that is not there fails the test.

The SDK's environment is ``.sdk-venv`` in the checkout (``.ci/run`` makes it), or ``LABELPORT_SDK_PYTHON``.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from conftest import ROOT
from redbrick_emulator import Emulator
from redbrick_project import ORG, PROJECT, Project
from redbrick_rich import rich_project

import labelport
from labelport.sources.redbrick import RedBrickProject

pytestmark = pytest.mark.slow
KEY = "s" * 43
SDK_PYTHON = Path(os.environ.get("LABELPORT_SDK_PYTHON") or ROOT / ".sdk-venv" / "bin" / "python")
USER = "u-annotator"
APRIL = (datetime.datetime(2025, 4, 1, tzinfo=datetime.timezone.utc),
         datetime.datetime(2025, 4, 4, tzinfo=datetime.timezone.utc))

#: task-list searches, as the SDK's list_tasks takes them
SEARCHES: list[dict[str, Any]] = [
    {}, {"user_id": USER}, {"search": "ALL", "user_id": USER}, {"search": "GROUNDTRUTH"},
    {"search": "UNASSIGNED"}, {"search": "UNASSIGNED", "stage_name": "Review_1"},
    {"search": "QUEUED"}, {"search": "QUEUED", "stage_name": "Review_1"}, {"search": "QUEUED", "user_id": USER},
    {"search": "QUEUED", "stage_name": "Label", "user_id": "u-reviewer"}, {"stage_name": "Label"},
    {"search": "DRAFT"}, {"search": "SKIPPED"}, {"search": "COMPLETED"},
    {"search": "COMPLETED", "stage_name": "Review_1"}, {"search": "COMPLETED", "user_id": USER},
    {"search": "COMPLETED", "completed_at": [APRIL[0].timestamp(), APRIL[1].timestamp()]},
    {"stage_name": "Label", "completed_at": [APRIL[0].timestamp(), None]},
    {"search": "FAILED"}, {"search": "ISSUES"}, {"task_name": "Case"}, {"task_name": "clip", "exact_match": True},
    {"task_name": "cli", "exact_match": True}, {"task_id": "90000000-0000-4000-8000-000000000002"},
]
EVENTS: list[dict[str, Any]] = [{"only_ground_truth": False}, {"only_ground_truth": True},
                                {"task_id": "90000000-0000-4000-8000-000000000001"}]
ACTIVE: list[dict[str, Any]] = [{"stage_name": "Label"}, {"stage_name": "Review_1"},
                                {"stage_name": "Label", "task_id": "90000000-0000-4000-8000-000000000003"}]

#: (path in the exported task list, SDK value, labelport value, as JSON): the differences the README explains
DIFFERENCES = {
    # a TEXT attribute keeps the text "true"; the SDK turns every "true"/"false" string into a boolean
    ("[0]/series[0]/segmentMap/1/attributes/Note", "true", '"true"'),
    ("[0]/classification/attributes/Remark", "false", '"false"'),
}


def _sdk(emulator: Emulator, tmp: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    if not SDK_PYTHON.is_file():
        message = f"redbrick-sdk's environment not found ({SDK_PYTHON}); .ci/run creates it"
        if os.environ.get("LABELPORT_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    request = {"url": emulator.base_url, "key": KEY, "org": ORG, "project": PROJECT, "dest": str(tmp / "sdk"),
               "out": str(tmp / "sdk.json"), "calls": calls}
    (tmp / "request.json").write_text(json.dumps(request))
    (tmp / "home").mkdir()
    env = {**os.environ, "HOME": str(tmp / "home"), "REDBRICK_DISABLE_VERSION_CHECK": "1", "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    run = subprocess.run([str(SDK_PYTHON), str(ROOT / "tests" / "sdk_oracle.py"), str(tmp / "request.json")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert emulator.rejected == [], "the SDK sent a document the schema refuses"
    return list(json.loads((tmp / "sdk.json").read_text()))


def _our_search(search: dict[str, Any]) -> dict[str, Any]:
    """An SDK list_tasks search as labelport's list_tasks arguments."""
    done = search.get("completed_at") or [None, None]
    iso = [datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc).isoformat() if t else None for t in done]
    return {"search": search.get("search"), "stage": search.get("stage_name"), "user_id": search.get("user_id"),
            "task_id": search.get("task_id"), "name": search.get("task_name"),
            "exact_match": search.get("exact_match", False), "completed_at": tuple(iso)}


class _Compare:
    """Field-by-field comparison of an SDK result with labelport's; files by content."""

    def __init__(self, project: Project, sdk_root: Path, our_root: Path) -> None:
        self.project, self.sdk_root, self.our_root = project, sdk_root, our_root
        self.differences: set[tuple[str, Any, Any]] = set()

    def files(self, path: str, sdk: Any, ours: Any) -> bool:
        """Compare two file references (True when ``path`` names one)."""
        leaf = path.rsplit("/", 1)[-1].split("[")[0]
        if leaf == "items":
            sdk_bytes = (self.sdk_root / sdk).read_bytes()
            if sdk_bytes != self.project.files[ours]:
                self.differences.add((path, sdk, ours))
            return True
        if leaf in ("segmentations", "mask"):
            a, b = nib.load(self.sdk_root / sdk), nib.load(self.our_root / ours)
            if not (np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
                    and np.allclose(a.affine, b.affine)):
                self.differences.add((path, sdk, ours))
            return True
        return False

    def __call__(self, sdk: Any, ours: Any, path: str = "") -> None:
        if isinstance(sdk, dict) and isinstance(ours, dict):
            for key in sorted(set(sdk) | set(ours)):
                self(sdk.get(key, "<absent>"), ours.get(key, "<absent>"), f"{path}/{key}")
        elif isinstance(sdk, list) and isinstance(ours, list) and len(sdk) == len(ours):
            for n, (a, b) in enumerate(zip(sdk, ours)):
                self(a, b, f"{path}[{n}]")
        elif isinstance(sdk, str) and isinstance(ours, str) and sdk != ours and self.files(path, sdk, ours):
            return
        elif sdk != ours or type(sdk) is not type(ours):
            self.differences.add((path, json.dumps(sdk), json.dumps(ours)))


@pytest.mark.parametrize("labels", ["path", "inline", "mixed"])
def test_labelport_equals_the_sdk(labels: str, tmp_path: Path) -> None:
    project = rich_project(labels)
    calls = [("export", {}), *(("events", e) for e in EVENTS), *(("list", s) for s in SEARCHES),
             *(("active_time", a) for a in ACTIVE)]
    with Emulator(KEY) as emulator:
        project.serve(emulator)
        sdk = _sdk(emulator, tmp_path, calls)

        def ours(**kwargs: Any) -> RedBrickProject:
            return RedBrickProject(ORG, PROJECT, key=KEY, url=emulator.base_url, cache=tmp_path / "cache", **kwargs)

        report = labelport.export(ours(), tmp_path / "labelport", ["nifti"])
        assert report.ok, [str(f) for f in report.failures]
        exported = json.loads((tmp_path / "labelport" / "tasks.json").read_text())
        events = [list(ours(task_filter=labelport.TaskFilter.of(
            [e["task_id"]] if "task_id" in e else (), only_ground_truth=e.get("only_ground_truth", False))).events())
            for e in EVENTS]
        listed = [list(ours().list_tasks(**_our_search(s))) for s in SEARCHES]
        active = [list(ours().active_time(a["stage_name"], a.get("task_id"))) for a in ACTIVE]
        assert emulator.rejected == []

    compare = _Compare(project, tmp_path / "sdk", tmp_path / "labelport")
    compare(sdk[0], exported)
    assert compare.differences == DIFFERENCES
    results = sdk[1:]
    for name, expected, got in [*(("events", e, g) for e, g in zip(results, events)),
                                *(("list", e, g) for e, g in zip(results[len(EVENTS):], listed)),
                                *(("active_time", e, g) for e, g in zip(results[len(EVENTS) + len(SEARCHES):],
                                                                        active))]:
        assert got == expected, name
    # the searches found something to compare: not every list is empty or the whole project
    sizes = [len(r) for r in listed]
    assert 0 in sizes and len(project.tasks) in sizes and len(set(sizes)) >= 4, sizes
    kinds = {e["eventType"] for r in events[0] for e in r["events"]}
    assert kinds == {"TASK_CREATED", "TASK_ASSIGNED", "TASK_REASSIGNED", "TASK_UNASSIGNED", "TASK_SKIPPED",
                     "TASK_SAVED", "COMMENT_ADDED", "TASK_SUBMITTED", "TASK_ACCEPTED", "TASK_REJECTED",
                     "TASK_CORRECTED", "TASK_MOVED", "GROUNDTRUTH_TASK_EDITED", "CONSENSUS_COMPUTED",
                     "CONSENSUS_TASK_EDITED"}, kinds
