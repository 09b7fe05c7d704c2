"""A RedBrick task's audit trail and its listing entry, in the RedBrick SDK's record shapes.

:func:`task_events` turns the API's ``genericEvents`` (a union of ``TaskEvent``, ``Comment`` and
``TaskStateChanges``, in the order they happened) into ``{taskId, taskName, currentStageName, events: [...]}``;
:func:`task_entry` turns a ``genericTasks`` entry into the listing record; :func:`search_filters` maps a listing
search to the stage and ``TasksFilter`` the SDK sends for it. Users are shown as :func:`~.shards.user_label`
shows them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .shards import image_headers, user_label

__all__ = ["SEARCHES", "Stages", "search_filters", "task_entry", "task_events"]

Raw = Mapping[str, Any]

#: stages whose output events are bookkeeping, not a person's action
_SILENT_STAGES = ("Failed_Review", "Output")


def _score(value: Any) -> Any:
    return None if value is None or value < 0 else value


def _comment(raw: Raw, users: Mapping[str, str]) -> dict[str, Any]:
    out = {"commentId": raw.get("commentId"), "commentText": raw.get("textVal"),
           "createdBy": user_label(raw.get("createdBy"), users), "stage": raw.get("stageName"),
           "isIssue": raw.get("issueComment"), "issueResolved": raw.get("issueResolved")}
    if (raw.get("taskData") or {}).get("tdId"):
        out["labelsId"] = raw["taskData"]["tdId"]
    if raw.get("labelEntityLabelId"):
        out["labelId"] = raw["labelEntityLabelId"]
    pin = raw.get("pin")
    if pin:
        out["pin"] = {k: pin.get(k) for k in ("pinId", "pointX", "pointY", "pointZ", "frameIndex", "volumeIndex")}
    return out


class _Trail:
    """The state carried from one raw event to the next while a task's trail is read in order: the stage the
    task is in, its assignee, whether its last review passed, and where its latest save is."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self.stage: Any = None
        self.assignee: Any = None
        self.review_passed: Any = True
        self.events: list[dict[str, Any]] = []
        self.saved_at: int | None = None  # position of the kept TASK_SAVED event

    def _user(self, value: Any) -> str | None:
        return user_label(value, self.users)

    def task_event(self, raw: Raw) -> tuple[str | None, dict[str, Any]]:
        kind: str | None = None
        event: dict[str, Any] = {}
        data = raw.get("taskData")
        if raw.get("createEvent"):
            created = raw["createEvent"]
            kind = "TASK_CREATED"
            event["isGroundTruth"] = created.get("isGroundTruth")
            if created.get("priority") is not None:
                event["priority"] = created["priority"]
            if data:
                event["createdBy"] = self._user(data.get("createdBy"))
            self.stage = created.get("currentStageName")
        elif raw.get("inputEvent"):
            entered = raw["inputEvent"]
            if entered.get("priority") is not None:
                event["priority"] = entered["priority"]
            if entered.get("overallConsensusScore") is not None:
                kind = "CONSENSUS_COMPUTED"
                event.update(stage=self.stage, score=_score(entered["overallConsensusScore"]))
            self.stage = entered.get("currentStageName")
        elif raw.get("outputEvent"):
            left = raw["outputEvent"]
            if left.get("timeSpentMs") is not None:
                event["timeSpentMs"] = left["timeSpentMs"]
            stage = left.get("currentStageName")
            if stage == "END":
                kind = "GROUNDTRUTH_TASK_EDITED"
                event["updatedBy"] = self._user((data or {}).get("createdBy"))
            elif stage not in _SILENT_STAGES:
                if left.get("nextStageName"):
                    kind = "TASK_MOVED"
                elif left.get("outputBool") is None:
                    kind = "TASK_SUBMITTED"
                elif left["outputBool"]:
                    kind = "TASK_ACCEPTED" if self.review_passed else "TASK_CORRECTED"
                else:
                    kind = "TASK_REJECTED"
                actor = raw.get("updatedBy")
                by = actor if actor and str(actor).startswith(("RB:", "API:")) else \
                    self.assignee or (data or {}).get("createdBy")
                event.update(stage=stage, updatedBy=self._user(by))
            self.stage = stage
        entered_info = (raw.get("inputEvent") or {}).get("consensusInfo")
        multi = (raw.get("outputEvent") or {}).get("multiLabels")
        if entered_info:
            event["consensusInfo"] = [
                {"user": self._user(c.get("user")), "labelsId": (c.get("taskData") or {}).get("tdId"),
                 "scores": [{"user": self._user(s.get("user")), "score": _score(s.get("score"))}
                            for s in c.get("scores") or []]} for c in entered_info]
        elif multi:
            event["consensusInfo"] = [{"user": self._user(c.get("user")),
                                       "labelsId": (c.get("taskData") or {}).get("tdId")} for c in multi]
        elif data:
            event["labelsId"] = data.get("tdId")
        return kind, event

    def state_change(self, raw: Raw) -> tuple[str | None, dict[str, Any]]:
        kind: str | None = None
        event: dict[str, Any] = {}
        if raw.get("reviewResultBefore") != raw.get("reviewResultAfter"):
            self.review_passed = raw.get("reviewResultAfter")
        before, after = raw.get("assignedToBeforeEntity"), raw.get("assignedToAfterEntity")

        def people(assignees: Any, statuses: Any) -> list[dict[str, Any]]:
            return [{"assignee": self._user(a), "status": s} for a, s in zip(assignees or [], statuses or [])]

        if (raw.get("consensusAssigneesBefore") != raw.get("consensusAssigneesAfter")
                or raw.get("consensusStatusesBefore") != raw.get("consensusStatusesAfter")):
            kind = "CONSENSUS_TASK_EDITED"
            event["consensusUsers"] = people(raw.get("consensusAssigneesAfter"), raw.get("consensusStatusesAfter"))
            event["prevConsensusUsers"] = people(raw.get("consensusAssigneesBefore"),
                                                 raw.get("consensusStatusesBefore"))
        elif (before or {}).get("userId") != (after or {}).get("userId"):
            if not after:
                kind, event["prevAssignee"] = "TASK_UNASSIGNED", self._user(before)
            elif before:
                kind = "TASK_REASSIGNED"
                event.update(assignee=self._user(after), prevAssignee=self._user(before))
            else:
                kind, event["assignee"] = "TASK_ASSIGNED", self._user(after)
        elif raw.get("statusBefore") != raw.get("statusAfter"):
            if raw.get("statusAfter") == "SKIPPED":
                kind, event["assignee"] = "TASK_SKIPPED", self._user(after)
            elif raw.get("statusAfter") == "IN_PROGRESS" and raw.get("statusBefore") in ("SKIPPED", "ASSIGNED"):
                kind, event["assignee"] = "TASK_SAVED", self._user(after)
        event["stage"] = raw.get("stageNameAfter") or self.stage
        if raw.get("stageNameAfter"):
            self.stage = raw["stageNameAfter"]
        self.assignee = after
        return kind, event

    def add(self, raw: Raw) -> None:
        typename = raw.get("__typename")
        if typename == "TaskEvent":
            kind, event = self.task_event(raw)
        elif typename == "Comment":
            kind, event = "COMMENT_ADDED", _comment(raw, self.users)
            event["replies"] = [_comment(r, self.users) for r in raw.get("replies") or []]
            self.stage = event["stage"]
        elif typename == "TaskStateChanges":
            kind, event = self.state_change(raw)
        else:
            return
        if kind is None:
            return
        if kind == "TASK_SAVED":  # only the latest save is kept
            if self.saved_at is not None:
                del self.events[self.saved_at]
            self.saved_at = len(self.events)
        self.events.append({"eventType": kind, "createdAt": raw.get("createdAt"), **event})

    def finished(self) -> list[dict[str, Any]]:
        """The events by time; a save is kept only when it was the task's last event."""
        events = list(self.events)
        if self.saved_at is not None and self.saved_at != len(events) - 1:
            del events[self.saved_at]
        return sorted(events, key=lambda e: e.get("createdAt") or "")


def task_events(task: Raw, users: Mapping[str, str]) -> dict[str, Any]:
    """``{taskId, taskName, currentStageName, events}``; ``users`` maps user ids to e-mails."""
    trail = _Trail(users)
    for raw in task.get("genericEvents") or []:
        if isinstance(raw, Mapping):
            trail.add(raw)
    return {"taskId": task.get("taskId"), "taskName": (task.get("datapoint") or {}).get("name"),
            "currentStageName": task.get("currentStageName"), "events": trail.finished()}


def _assignee(sub_task: Any, users: Mapping[str, str]) -> dict[str, Any] | None:
    if not isinstance(sub_task, Mapping):
        return None
    user = user_label(sub_task.get("assignedTo") or {}, users)
    if not user:
        return None
    out = {"user": user, "status": sub_task.get("state")}
    for raw_key, key in (("assignedAt", "assignedAt"), ("progressSavedAt", "lastSavedAt"),
                         ("completedAt", "completedAt")):
        if sub_task.get(raw_key):
            out[key] = sub_task[raw_key]
    if sub_task.get("completionTimeMs") is not None:
        out["timeSpentMs"] = sub_task["completionTimeMs"]
    return out


def task_entry(task: Raw, users: Mapping[str, str]) -> dict[str, Any]:
    """A listing record: ``{taskId, name, createdAt, currentStageName, storageId?, updatedAt?, createdBy?,
    priority?, metaData?, series?, assignees?}``."""
    datapoint = task.get("datapoint") or {}
    out: dict[str, Any] = {"taskId": task.get("taskId"), "name": datapoint.get("name"),
                           "createdAt": task.get("createdAt"), "currentStageName": task.get("currentStageName")}
    if datapoint.get("storageMethod"):
        out["storageId"] = datapoint["storageMethod"].get("storageId")
    if task.get("updatedAt"):
        out["updatedAt"] = task["updatedAt"]
    if datapoint.get("createdByEntity"):
        out["createdBy"] = user_label(datapoint["createdByEntity"], users)
    if task.get("priority"):
        out["priority"] = task["priority"]
    if datapoint.get("metaData"):
        out["metaData"] = json.loads(datapoint["metaData"]) if isinstance(datapoint["metaData"], str) \
            else datapoint["metaData"]
    if isinstance(datapoint.get("seriesInfo"), list):
        series = []
        for info in datapoint["seriesInfo"]:
            entry: dict[str, Any] = {}
            if info.get("name"):
                entry["name"] = info["name"]
            if info.get("metaData"):
                entry["metaData"] = json.loads(info["metaData"]) if isinstance(info["metaData"], str) \
                    else info["metaData"]
            headers = image_headers(info)
            if headers:
                entry["imageHeaders"] = headers
            series.append(entry)
        if any(series):
            out["series"] = series
    sub_task = task.get("currentStageSubTask") or {}
    assignees = [a for a in [_assignee(sub_task, users), *(_assignee(s, users) for s in
                                                           sub_task.get("subTasks") or [])] if a]
    if assignees:
        out["assignees"] = assignees
    return out


#: ``labelport tasks --search`` values, as RedBrick's SDK names the task lists
SEARCHES = ("ALL", "GROUNDTRUTH", "UNASSIGNED", "QUEUED", "DRAFT", "SKIPPED", "COMPLETED", "FAILED", "ISSUES")


@dataclass(frozen=True)
class Stages:
    """A project's workflow: its labelling and review stages in order, and the stage holding ground truth."""

    label: Sequence[str]
    review: Sequence[str]
    output: str = "Output"

    @classmethod
    def of(cls, stages: Sequence[Raw]) -> Stages:
        """From the API's ``stages`` (``stageName``, ``brickName``)."""
        kinds: dict[str, list[str]] = {}
        for stage in stages:
            kinds.setdefault(str(stage.get("brickName")), []).append(str(stage.get("stageName")))
        return cls(tuple(kinds.get("manual-labeling", [])), tuple(kinds.get("expert-review", [])),
                   (kinds.get("labelset-output") or ["Output"])[-1])


def search_filters(search: str, stages: Stages, stage: str | None = None, user_id: str | None = None,
                   task_id: str | None = None, completed_from: str | None = None,
                   completed_to: str | None = None) -> tuple[str | None, dict[str, Any]]:
    """(stage, ``TasksFilter``) that RedBrick's SDK sends for a listing search. Searches of one stage default
    to the project's first stage; ``FAILED`` looks at a review stage and ``ISSUES`` at the first labelling
    stage; ``ALL``, ``GROUNDTRUTH``, ``FAILED`` and ``ISSUES`` ignore the user."""
    first = [*stages.label, *stages.review, stages.output][0]
    filters: dict[str, Any] = {}
    if user_id:
        filters["userId"] = user_id
    if task_id:
        filters["taskId"] = task_id
    if search == "ALL":
        filters.pop("userId", None)
        return None, filters
    if search == "GROUNDTRUTH":
        filters.pop("userId", None)
        return stages.output, filters
    if search == "UNASSIGNED":
        return stage or first, {**filters, "userId": None}
    if search == "QUEUED":
        return stage or first, filters
    if search in ("DRAFT", "SKIPPED"):
        return stage or first, {**filters, "status": "STAGED" if search == "DRAFT" else "SKIPPED"}
    if search == "COMPLETED":
        dates = {k: v for k, v in (("completedAtFrom", completed_from), ("completedAtTo", completed_to)) if v}
        return stage or first, {**filters, "recentlyCompleted": True, **dates}
    if search == "FAILED":
        filters.pop("userId", None)
        if not stages.review:
            raise ValueError("search FAILED needs a review stage, and this project has none")
        return (stage if stage in stages.review else stages.review[0]), {**filters, "reviewState": "FAILED"}
    if search == "ISSUES":
        filters.pop("userId", None)
        if not stages.label:
            raise ValueError("search ISSUES needs a labelling stage, and this project has none")
        return stages.label[0], {**filters, "status": "PROBLEM"}
    raise ValueError(f"unknown search {search!r}; expected one of {', '.join(SEARCHES)}")
