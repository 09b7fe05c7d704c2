"""A RedBrick project as RedBrick's server holds it, served through the emulator's GraphQL engine.

:class:`Project` keeps the server's state (taxonomy, stages, members, tasks with their datapoint, series, raw
labels, label maps, stage sub-tasks and audit trail) and answers the root fields of ``redbrick_schema.graphql``
with it. Labels are served three ways (``labels=``): ``"path"`` (RedBrick's usual storage: ``labelsDataPath``
points at a gzip JSON file holding ids only, ``classid`` and ``attrid``/``optionid``, to be resolved through the
taxonomy), ``"inline"`` (``labelsData`` with category and attribute names) or ``"mixed"`` (alternating per task).

:func:`from_export` turns a RedBrick export folder (tasks.json, label maps, images where present) into such a
project, so that an export through the API can be compared with the export of the folder itself.
"""

from __future__ import annotations

import copy
import gzip
import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from graphql import GraphQLError
from redbrick_emulator import Emulator

import labelport

ORG = "11111111-1111-4111-8111-111111111111"
PROJECT = "22222222-2222-4222-8222-222222222222"
LABEL_STORAGE = "33333333-3333-4333-8333-333333333333"
STAGES = [
    {"stageName": "Input", "brickName": "labelset-input", "stageConfig": "{}",
     "routing": {"__typename": "NextRouting", "nextStageName": "Label"}},
    {"stageName": "Label", "brickName": "manual-labeling", "stageConfig": "{}",
     "routing": {"__typename": "NextRouting", "nextStageName": "Review_1"}},
    {"stageName": "Review_1", "brickName": "expert-review", "stageConfig": "{}",
     "routing": {"__typename": "BooleanRouting", "passed": "Output", "failed": "Label"}},
    {"stageName": "Output", "brickName": "labelset-output", "stageConfig": "{}",
     "routing": {"__typename": "NoRouting", "placeholder": None}},
]
#: RedBrick's name for the stage holding ground truth, and the stage name its tasks report
OUTPUT_STAGE, END = "Output", "END"
USERS = {
    "u-upload": {"userId": "u-upload", "email": "uploader@example.com", "givenName": "Ula"},
    "u-annotator": {"userId": "u-annotator", "email": "annotator@example.com", "givenName": "Ann"},
    "u-reviewer": {"userId": "u-reviewer", "email": "reviewer@example.com", "givenName": "Rev"},
    "API:k1": {"userId": "API:k1", "email": None, "givenName": "ci-bot"},
    "RB:system": {"userId": "RB:system", "email": None, "givenName": "RedBrick"},
}
BY_EMAIL = {u["email"]: uid for uid, u in USERS.items() if u["email"]}


def user(user_id: str | None) -> dict[str, Any] | None:
    """The User object of a user id (or e-mail) as the server returns it."""
    if not user_id:
        return None
    user_id = BY_EMAIL.get(user_id, user_id)
    known = USERS.get(user_id, {"userId": user_id, "email": None, "givenName": None})
    return {"familyName": None, "mfaSetup": False, "lastSeen": None, "updatedAt": None, "idProvider": None, **known}


def _page(items: list[Any], first: int | None, after: str | None, page_size: int) -> tuple[list[Any], str | None]:
    start = int(after or 0)
    end = start + min(first if first is not None else page_size, page_size)
    return items[start:end], (str(end) if end < len(items) else None)


class Project:
    """A RedBrick project on the server (see the module docstring). ``tasks`` hold the server's state of each
    task; the GraphQL objects are built from it on every request."""

    def __init__(self, taxonomy: Mapping[str, Any], *, labels: str = "path", page_size: int = 2,
                 org_id: str = ORG, project_id: str = PROJECT) -> None:
        if labels not in ("path", "inline", "mixed"):
            raise ValueError(labels)
        self.taxonomy = {"orgId": org_id, "taxId": "44444444-4444-4444-8444-444444444444", "version": 2,
                         "isNew": True, "archived": False, **copy.deepcopy(dict(taxonomy))}
        self.labels = labels
        self.page_size = page_size
        self.org_id, self.project_id = org_id, project_id
        self.tasks: list[dict[str, Any]] = []
        self.active_time: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.emulator: Emulator | None = None

    # -- building ---------------------------------------------------------------------------------------------

    def attribute(self, scope: str, name: str, category_class: int | None = None) -> dict[str, Any] | None:
        """The taxonomy's definition of attribute ``name`` (``scope``: objectTypes, studyClassify, ...)."""
        if scope == "objectTypes":
            owner = next((o for o in self.taxonomy.get("objectTypes") or [] if o.get("classId") == category_class), {})
            defs = owner.get("attributes") or []
        else:
            defs = self.taxonomy.get(scope) or []
        return next((a for a in defs if a.get("name") == name), None)

    def class_id(self, category: str) -> int:
        for obj in self.taxonomy.get("objectTypes") or []:
            if obj["category"] == category:
                return int(obj["classId"])
        raise KeyError(f"category {category!r} is not in the taxonomy")

    def raw_attributes(self, values: Mapping[str, Any] | None, scope: str,
                       class_id: int | None = None) -> list[dict[str, Any]]:
        """``{name: value}`` as a raw label's attribute list, with the taxonomy's ids where it defines them."""
        out = []
        for name, value in (values or {}).items():
            item: dict[str, Any] = {"name": name, "value": value}
            definition = self.attribute(scope, name, class_id)
            if definition is not None:
                item["attrid"] = definition["attrId"]
                options = {o["name"]: o["optionId"] for o in definition.get("options") or []}
                if definition["attrType"] == "SELECT":
                    item["optionid"] = options[value]
                elif definition["attrType"] == "MULTISELECT":
                    item["optionid"] = [options[v] for v in value]
            out.append(item)
        return out

    def add_task(self, task: dict[str, Any]) -> dict[str, Any]:
        """Add a task in server form (see :func:`task_state`)."""
        self.tasks.append(task)
        return task

    # -- what the server stores and serves --------------------------------------------------------------------

    def _labels_mode(self, task: Mapping[str, Any]) -> str:
        if self.labels != "mixed":
            return self.labels
        return ("path", "inline")[self.tasks.index(task) % 2]  # type: ignore[arg-type]

    def stored_labels(self, task: Mapping[str, Any], mode: str) -> list[dict[str, Any]]:
        """The raw labels as the server stores them: ids only in the labels file, names inline."""
        out = []
        for label in task["labels"]:
            label = copy.deepcopy(label)
            attrs = label.get("attributes") or []
            if mode == "path":
                label.pop("category", None)
                scope = _scope(label)
                for item in attrs:
                    if "attrid" not in item:
                        continue
                    definition = self.attribute(scope, item["name"], label.get("classid"))
                    item.pop("name", None)
                    if definition and definition["attrType"] in ("SELECT", "MULTISELECT"):
                        item.pop("value", None)
            else:
                for item in attrs:
                    item.pop("attrid", None)
                    item.pop("optionid", None)
            out.append(label)
        return out

    def _task_data(self, task: Mapping[str, Any]) -> dict[str, Any]:
        mode = self._labels_mode(task)
        labels_path = f"labels/{task['taskId']}/{task['tdId']}.json"
        if mode == "path":
            self.files[labels_path] = gzip.compress(json.dumps(self.stored_labels(task, mode)).encode(), mtime=0)
        serve = self.emulator

        def labels_data(info: Any, interpolate: bool | None = None) -> str | None:
            return None if mode == "path" else json.dumps(self.stored_labels(task, mode))

        def labels_data_path(info: Any, presigned: bool | None = None) -> str | None:
            if mode != "path":
                return None
            return serve.file_url(labels_path) if presigned and serve else labels_path

        def labels_map(info: Any, presigned: bool | None = None) -> list[dict[str, Any]]:
            return [{"seriesIndex": m.get("seriesIndex"), "imageIndex": m.get("imageIndex"),
                     "labelName": serve.file_url(m["path"]) if presigned and serve else m["path"]}
                    for m in task["labelMaps"]]

        return {"tdId": task["tdId"], "stageName": task["currentStageName"], "createdAt": task["labelsAt"],
                "createdBy": task["labelsBy"], "createdByEntity": user(task["labelsBy"]),
                "labelsData": labels_data, "labelsDataPath": labels_data_path,
                "labelsStorage": {"storageId": LABEL_STORAGE}, "labelsMap": labels_map}

    def _sub_task(self, task: Mapping[str, Any], stage: str | None = None) -> dict[str, Any] | None:
        state = task["stages"].get(stage or task["currentStageName"])
        if state is None:
            return None
        return {"__typename": "LabelingTask", "state": state.get("state"), "assignedTo": user(state.get("assignedTo")),
                "assignedAt": state.get("assignedAt"), "progressSavedAt": state.get("progressSavedAt"),
                "completedAt": state.get("completedAt"), "completionTimeMs": state.get("completionTimeMs"),
                "taskData": None, "subTasks": [], "overallConsensusScore": None, "consensusInfo": []}

    def task_object(self, task: Mapping[str, Any]) -> dict[str, Any]:
        """The GraphQL ``Task`` object of a task (fields with arguments are callables)."""
        serve = self.emulator
        items = list(task["items"])
        info = []
        for s in task["seriesInfo"]:
            info.append({"name": s.get("name"), "itemsIndices": s.get("itemsIndices"), "dataType": s.get("dataType"),
                         "metaData": _text(s.get("metaData")), "imageHeaders": _text(s.get("imageHeaders")),
                         "localToWorldTransform": None})

        def items_field(_info: Any, presigned: bool | None = None) -> list[str]:
            return [serve.file_url(i) for i in items] if presigned and serve else items

        datapoint = {
            "dpId": task["dpId"], "name": task["name"], "items": items_field, "createdAt": task["createdAt"],
            "createdByEntity": user(task["createdBy"]), "metaData": _text(task.get("metaData")), "seriesInfo": info,
            "heatMaps": task.get("heatMaps"), "transforms": task.get("transforms"),
            "centerline": [{**c, "centerline": _text(c["centerline"])} for c in task.get("centerline") or []] or None,
            "storageMethod": {"storageId": task["storageId"]}, "attributes": _text(task.get("attributes")),
            "archived": False, "cohorts": [],
        }
        return {
            "taskId": task["taskId"], "dpId": task["dpId"], "currentStageName": task["currentStageName"],
            "priority": task.get("priority"), "createdAt": task["createdAt"], "updatedAt": task["updatedAt"],
            "currentStageSubTask": lambda _info, consensus=None: self._sub_task(task),
            "datapoint": datapoint, "latestTaskData": self._task_data(task),
            "genericEvents": copy.deepcopy(task.get("events") or []),
        }

    # -- the root fields --------------------------------------------------------------------------------------

    def _check(self, org_id: str, project_id: str | None = None) -> None:
        if org_id != self.org_id or (project_id is not None and project_id != self.project_id):
            raise GraphQLError("Not found or not authorized")

    def _in_stage(self, task: Mapping[str, Any], stage: str | None) -> bool:
        return not stage or task["currentStageName"] == (END if stage == OUTPUT_STAGE else stage)

    def tasks_paged(self, _info: Any, orgId: str, projectId: str, stageName: str | None = None,
                    cacheTime: str | None = None, first: int | None = None, after: str | None = None) -> Any:
        self._check(orgId, projectId)
        chosen = [t for t in self.tasks if self._in_stage(t, stageName)
                  and (not cacheTime or _time(t["updatedAt"]) >= _time(cacheTime))]
        entries, cursor = _page(chosen, first, after, self.page_size)
        return {"entries": [self.task_object(t) for t in entries], "cursor": cursor, "count": len(chosen),
                "cacheTime": max((t["updatedAt"] for t in chosen), default=None)}

    def task(self, _info: Any, orgId: str, projectId: str, taskId: str) -> Any:
        self._check(orgId, projectId)
        found = next((t for t in self.tasks if t["taskId"] == taskId), None)
        return self.task_object(found) if found else None

    def _listed(self, task: Mapping[str, Any], stage: str | None, search: str | None,
                filters: Mapping[str, Any]) -> bool:
        """RedBrick's task search, as its SDK documents it: a stage and the ``TasksFilter`` fields."""
        if filters.get("taskId") and task["taskId"] != filters["taskId"]:
            return False
        if search and not filters.get("taskId"):
            name = task["name"]
            if not (name == search[1:-1] if search.startswith('"') and search.endswith('"') else
                    name.startswith(search)):
                return False
        stage_name = (END if stage == OUTPUT_STAGE else stage) or task["currentStageName"]
        state = task["stages"].get(stage_name) or {}
        if filters.get("recentlyCompleted"):
            done = state.get("completedAt")
            after, before = filters.get("completedAtFrom"), filters.get("completedAtTo")
            return bool(done) and (not after or _time(done) >= _time(after)) \
                and (not before or _time(done) <= _time(before))
        if not self._in_stage(task, stage):
            return False
        if filters.get("status") and state.get("state") != filters["status"]:
            return False
        if filters.get("reviewState") == "FAILED" and state.get("reviewResult") is not False:
            return False
        if "userId" in filters:
            assignee = state.get("assignedTo")
            wanted = filters["userId"]
            return not assignee if wanted is None else BY_EMAIL.get(wanted, wanted) == assignee
        return True

    def generic_tasks(self, _info: Any, orgId: str, projectId: str, stageName: str | None = None,
                      taskSearch: str | None = None, manualLabelingFilters: Mapping[str, Any] | None = None,
                      first: int | None = None, after: str | None = None) -> Any:
        self._check(orgId, projectId)
        chosen = [t for t in self.tasks if self._listed(t, stageName, taskSearch, manualLabelingFilters or {})]
        entries, cursor = _page(chosen, first, after, self.page_size)
        return {"entries": [self.task_object(t) for t in entries], "cursor": cursor}

    def task_active_time(self, _info: Any, orgId: str, projectId: str, stageName: str, taskId: str | None = None,
                         first: int | None = None, after: str | None = None) -> Any:
        self._check(orgId, projectId)
        chosen = [{**e, "user": user(e["user"])} for e in self.active_time
                  if e["stageName"] == stageName and taskId in (None, e["taskId"])]
        entries, cursor = _page(chosen, first, after, self.page_size)
        return {"entries": entries, "cursor": cursor}

    def presign_items(self, _info: Any, orgId: str, storageId: str, items: list[str | None]) -> list[str | None]:
        self._check(orgId)
        known = {LABEL_STORAGE} | {t["storageId"] for t in self.tasks}
        if storageId not in known:
            raise GraphQLError(f"Storage method {storageId} not found")
        assert self.emulator is not None
        return [self.emulator.file_url(i) if i else None for i in items]

    def project(self, _info: Any, orgId: str, projectId: str) -> Any:
        if orgId != self.org_id or projectId != self.project_id:
            return None
        return {"orgId": self.org_id, "projectId": self.project_id, "name": "emulated project", "desc": "",
                "status": "CREATION_SUCCESS", "tdType": "DICOM_SEGMENTATION", "taxonomy": self.taxonomy,
                "projectUrl": f"https://app.example.com/{orgId}/projects/{projectId}",
                "createdAt": "2025-01-01T00:00:00+00:00", "updatedAt": "2025-01-01T00:00:00+00:00",
                "consensusSettings": {"enabled": False}, "workspace": None, "stages": STAGES}

    def serve(self, emulator: Emulator) -> Project:
        """Answer the emulator's requests from this project."""
        self.emulator = emulator
        for task in self.tasks:
            self._task_data(task)  # writes the labels files
        emulator.files.update(self.files)
        self.files = emulator.files
        for name in emulator.files:
            if name.startswith("labels/") and name.endswith(".json"):
                emulator.encodings[name] = "gzip"
        emulator.root.update({
            "project": self.project,
            "stages": lambda _i, orgId, projectId: (self._check(orgId, projectId), STAGES)[1],
            "taxonomy": lambda _i, orgId, taxId=None, name=None: (self._check(orgId), self.taxonomy)[1],
            "tasksPaged": self.tasks_paged,
            "task": self.task,
            "genericTasks": self.generic_tasks,
            "taskActiveTime": self.task_active_time,
            "members": lambda _i, orgId, onlyActive=None: [
                {"user": user(uid), "role": "MEMBER", "tags": [], "active": True, "lastSeen": None}
                for uid in USERS if not uid.startswith("RB:")],
            "presignItems": self.presign_items,
            "getLabelStorage": lambda _i, orgId, projectId: {"storageId": LABEL_STORAGE, "path": "labels"},
        })
        return self


def _scope(label: Mapping[str, Any]) -> str:
    if label.get("studyclassify") or label.get("tasklevelclassify"):
        return "studyClassify"
    if label.get("seriesclassify") or label.get("multiclassify"):
        return "seriesClassify"
    if label.get("instanceclassify"):
        return "instanceClassify"
    return "objectTypes"


def _text(value: Any) -> str | None:
    """A value the server sends as JSON text."""
    return None if value is None else json.dumps(value)


def _time(value: str) -> Any:
    import datetime

    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- a project from an export folder ------------------------------------------------------------------------


def _server_headers(headers: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """imageHeaders as the server stores them: a flat direction, no affine."""
    if not headers:
        return None
    out = {k: v for k, v in headers.items() if k != "affine"}
    if isinstance(out.get("direction"), list) and out["direction"] and isinstance(out["direction"][0], list):
        out["direction"] = [v for row in out["direction"] for v in row]
    return out


def _voxel(point: Mapping[str, Any]) -> list[Any]:
    return [point["i"], point["j"], point["k"]]


def _stage_states(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Plausible stage sub-tasks: labelled by the annotator; reviewed (or in review) by the reviewer."""
    done, status = record.get("updatedAt"), record.get("status") or "COMPLETED"
    label = {"state": "COMPLETED", "assignedTo": "u-annotator", "assignedAt": record.get("createdAt"),
             "progressSavedAt": None, "completedAt": done, "completionTimeMs": 600000}
    stage = record.get("currentStageName") or END
    if stage == "Label":
        return {"Label": {**label, "state": status, "completedAt": None, "completionTimeMs": None,
                          "assignedTo": None if status == "UNASSIGNED" else "u-annotator"}}
    review = {"state": "COMPLETED", "assignedTo": "u-reviewer", "assignedAt": done, "progressSavedAt": None,
              "completedAt": done, "completionTimeMs": 120000, "reviewResult": True}
    if stage == "Review_1":
        return {"Label": label, "Review_1": {**review, "state": status, "completedAt": None,
                                             "completionTimeMs": None, "reviewResult": None}}
    return {"Label": label, "Review_1": review, END: {"state": status, "assignedTo": None}}


def trail(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A plausible audit trail in the server's union shape: created by an API key, assigned, saved, commented,
    submitted; tasks past labelling are then reviewed and accepted into END."""
    day = task["createdAt"][:10]
    tdid = task["tdId"]

    def at(time: str) -> str:
        return f"{day}T{time}.000000+00:00"

    def change(time: str, **values: Any) -> dict[str, Any]:
        base = {"stageName": None, "assignedAtAfter": None, "updatedBy": None, "statusBefore": None,
                "statusAfter": None, "assignedToBeforeEntity": None, "assignedToAfterEntity": None,
                "consensusAssigneesBefore": None, "consensusAssigneesAfter": None,
                "consensusStatusesBefore": None, "consensusStatusesAfter": None,
                "reviewResultBefore": None, "reviewResultAfter": None}
        for key in ("assignedToBeforeEntity", "assignedToAfterEntity"):
            if key in values:
                values[key] = user(values[key])
        return {"__typename": "TaskStateChanges", "createdAt": at(time), **base, **values}

    def event(time: str, by: str | None = None, updated_by: str | None = None, **values: Any) -> dict[str, Any]:
        base = {"eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task['taskId']}/{time}")), "updatedBy": updated_by,
                "createEvent": None, "inputEvent": None, "outputEvent": None}
        data = {"tdId": tdid, "stageName": None, "createdBy": by} if by else None
        return {"__typename": "TaskEvent", "createdAt": at(time), **base, "taskData": data, **values}

    def output(stage: str, passed: bool | None, spent: int) -> dict[str, Any]:
        return {"currentStageName": stage, "cycleCount": 1, "outputBool": passed, "nextStageName": None,
                "timeSpentMs": spent, "extraData": None, "multiLabels": None}

    def entered(stage: str) -> dict[str, Any]:
        return {"currentStageName": stage, "overallConsensusScore": None, "priority": None, "consensusInfo": None}

    comment_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task['taskId']}/comment"))
    reply_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task['taskId']}/reply"))
    events = [
        event("09:00:00", "API:k1", "API:k1", createEvent={"currentStageName": "Label", "isGroundTruth": False,
                                                           "priority": task.get("priority")}),
        change("09:05:00", assignedToAfterEntity="u-annotator", statusBefore="UNASSIGNED", statusAfter="ASSIGNED",
               stageName="Label"),
        change("09:10:00", assignedToBeforeEntity="u-annotator", assignedToAfterEntity="u-annotator",
               statusBefore="ASSIGNED", statusAfter="IN_PROGRESS"),
        {"__typename": "Comment", "createdAt": at("09:20:00"), "commentId": comment_id,
         "textVal": "Check the left kidney", "createdBy": user("u-annotator"), "stageName": "Label",
         "issueComment": True, "issueResolved": False, "labelEntityLabelId": None, "taskData": {"tdId": tdid},
         "pin": None, "replies": [{"createdAt": at("09:25:00"), "commentId": reply_id, "textVal": "Done",
                                   "createdBy": user("RB:system"), "stageName": "Label", "issueComment": False,
                                   "issueResolved": False, "labelEntityLabelId": None, "taskData": None,
                                   "pin": None, "replies": None}]},
    ]
    if task["currentStageName"] == "Label":
        return events
    events += [
        event("10:00:00", "u-annotator", outputEvent=output("Label", None, 600000)),
        event("10:00:01", inputEvent=entered("Review_1")),
        change("10:10:00", assignedToAfterEntity="u-reviewer", statusBefore="UNASSIGNED", statusAfter="ASSIGNED",
               stageName="Review_1"),
    ]
    if task["currentStageName"] == END:
        events += [event("10:30:00", "u-reviewer", outputEvent=output("Review_1", True, 120000)),
                   event("10:30:01", inputEvent=entered(END))]
    return events


def task_state(record: Mapping[str, Any], labels: list[dict[str, Any]], label_maps: list[dict[str, Any]],
               items: list[str], series_info: list[dict[str, Any]]) -> dict[str, Any]:
    """A task's server state from an export record and what was derived from its series."""
    task = {
        "taskId": record["taskId"], "dpId": str(uuid.uuid5(uuid.NAMESPACE_URL, record["taskId"])),
        "name": record.get("name") or "", "items": items, "createdAt": record.get("createdAt"),
        "createdBy": BY_EMAIL.get(record.get("createdBy") or "", record.get("createdBy")),
        "updatedAt": record.get("updatedAt"), "currentStageName": record.get("currentStageName") or END,
        "priority": record.get("priority"), "metaData": record.get("metaData"), "seriesInfo": series_info,
        "storageId": record.get("storageId") or "55555555-5555-4555-8555-555555555555",
        "labels": labels, "tdId": record.get("labelsId") or str(uuid.uuid5(uuid.NAMESPACE_DNS, record["taskId"])),
        "labelsBy": BY_EMAIL.get(record.get("updatedBy") or "", record.get("updatedBy")),
        "labelsAt": record.get("updatedAt"), "labelMaps": label_maps, "stages": _stage_states(record),
    }
    task["events"] = trail(task)
    return task


def from_export(root: Path, *, labels: str = "path", page_size: int = 2,
                taxonomy: Mapping[str, Any] | None = None) -> Project:
    """The project behind the export folder ``root`` (its tasks.json and taxonomy.json)."""
    source = labelport.LocalExport(root)
    records = json.loads((root / "tasks.json").read_text(encoding="utf-8"))
    if taxonomy is None:
        path = root / "taxonomy.json"
        taxonomy = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else _taxonomy_of(records)
    project = Project(taxonomy, labels=labels, page_size=page_size)
    for record in records:
        items: list[str] = []
        series_info, raw, label_maps = [], [], []
        for index, s in enumerate(record["series"]):
            own = list(s.get("items") or [])
            series_info.append({"name": s.get("name"), "itemsIndices": list(range(len(items), len(items) + len(own))),
                                "metaData": s.get("metaData"), "imageHeaders": _server_headers(s.get("imageHeaders"))})
            items += own
            for item in own:  # the image files, where the export has them
                path = source.find(item)
                if path is not None:
                    project.files[item] = Path(path).read_bytes()
            if "segmentations" in s:
                seg = s["segmentations"][0] if isinstance(s["segmentations"], list) else s["segmentations"]
                data = Path(source.resolve(seg)).read_bytes()
                stored = f"labelmaps/{record['taskId']}/{index}.nii.gz"
                project.files[stored] = data if data[:2] == b"\x1f\x8b" else gzip.compress(data, mtime=0)
                label_maps.append({"seriesIndex": index, "path": stored})
            raw += _series_labels(project, s, index)
        if record.get("classification"):
            c = record["classification"]
            raw.append({"labelid": c.get("id"), "studyclassify": True,
                        "attributes": project.raw_attributes(c.get("attributes"), "studyClassify")})
        project.add_task(task_state(record, raw, label_maps, items, series_info))
    return project


def _series_labels(project: Project, s: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    """The raw labels behind one exported series (the label kinds an export folder's series may hold)."""
    raw: list[dict[str, Any]] = []

    def common(entry: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"labelid": entry.get("id"), "volumeindex": index}
        if entry.get("category") is not None:
            cid = project.class_id(entry["category"])
            out.update(category=entry["category"], classid=cid,
                       attributes=project.raw_attributes(entry.get("attributes"), "objectTypes", cid))
        return out

    for key, entry in (s.get("segmentMap") or {}).items():
        raw.append({**common(entry), "dicom": {"instanceid": int(key), "groupids": entry.get("overlappingGroups")}})
    for c in s.get("classifications") or []:
        raw.append({"labelid": c.get("id"), "volumeindex": index, "seriesclassify": True,
                    "attributes": project.raw_attributes(c.get("attributes"), "seriesClassify")})
    for m in s.get("measurements") or []:
        raw.append({**common(m), "length3d": {"point1": _voxel(m["point1"]), "point2": _voxel(m["point2"]),
                                              "normal": m.get("normal"), "computedlength": m.get("length")}})
    for p in s.get("landmarks3d") or []:
        point = p["point"]
        raw.append({**common(p), "point3d": {"pointx": point["i"], "pointy": point["j"], "pointz": point["k"]}})
    for c in s.get("cuboids") or []:
        raw.append({**common(c), "cuboid": {"point1": _voxel(c["point1"]), "point2": _voxel(c["point2"])}})
    return raw


def _taxonomy_of(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A taxonomy naming the categories of the records (for export folders without taxonomy.json)."""
    names = list(dict.fromkeys(e["category"] for r in records for s in r["series"]
                               for e in (s.get("segmentMap") or {}).values()))
    return {"name": "derived", "objectTypes": [{"category": n, "classId": i, "labelType": "SEGMENTATION",
                                                "color": None, "attributes": []} for i, n in enumerate(names)]}


def serve_export(emulator: Emulator, root: Path, *, labels: str = "path", page_size: int = 2) -> Project:
    """Serve the export folder ``root`` as a RedBrick project through ``emulator``."""
    return from_export(root, labels=labels, page_size=page_size).serve(emulator)
