"""A RedBrick task's audit trail and its listing entry, in the RedBrick SDK's record shapes.

:func:`task_events` turns the API's ``genericEvents`` (a union of ``TaskEvent``, ``Comment`` and
``TaskStateChanges``) into ``{taskId, taskName, currentStageName, events: [...]}``; :func:`task_entry` turns a
``genericTasks`` entry into the listing record. Users are shown by e-mail, ``API Key - <name>`` or ``System``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SEARCHES", "search_filters", "task_entry", "task_events", "user_name"]

Raw = Mapping[str, Any]

#: review stages whose output events are bookkeeping, not a person's action
_SILENT_STAGES = ("Failed_Review", "Output")


def user_name(user: Any, users: Mapping[str, str]) -> str | None:
    """A user id as the SDK shows it: the member's e-mail, ``API Key - <name>`` or ``System``."""
    if isinstance(user, Mapping):
        user = user.get("userId") or user.get("email")
    if not user:
        return None
    user = str(user)
    if user.startswith("RB:"):
        return "System"
    if user.startswith("API:"):
        return f"API Key - {users[user]}" if user in users else "API Key"
    return str(users.get(user, user))


def _set(event: dict[str, Any], **values: Any) -> None:
    event.update({k: v for k, v in values.items() if v is not None})


def _comment(raw: Raw, users: Mapping[str, str]) -> dict[str, Any]:
    out = {"commentId": raw.get("commentId"), "commentText": raw.get("textVal"),
           "createdBy": user_name(raw.get("createdBy"), users), "stage": raw.get("stageName"),
           "isIssue": bool(raw.get("issueComment")), "issueResolved": bool(raw.get("issueResolved"))}
    _set(out, labelsId=(raw.get("taskData") or {}).get("tdId"), labelId=raw.get("labelEntityLabelId"))
    pin = raw.get("pin")
    if isinstance(pin, Mapping):
        out["pin"] = {k: pin.get(k) for k in ("pinId", "pointX", "pointY", "pointZ", "frameIndex", "volumeIndex")}
    return out


def _consensus_info(raw: Any, users: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"user": user_name(c.get("user"), users), "labelsId": (c.get("taskData") or {}).get("tdId"),
             **({"scores": [{"user": user_name(s.get("user"), users), "score": s.get("score")}
                            for s in c.get("scores") or []]} if c.get("scores") is not None else {})}
            for c in raw or []]


class _Trail:
    """The state carried from one raw event to the next while a task's trail is read in order."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self.stage: str | None = None
        self.assignee: Any = None
        self.review_passed = True
        self.events: list[dict[str, Any]] = []

    def task_event(self, raw: Raw) -> tuple[str | None, dict[str, Any]]:
        event: dict[str, Any] = {}
        data = raw.get("taskData") or {}
        labels_id = data.get("tdId")
        if raw.get("createEvent"):
            create = raw["createEvent"]
            _set(event, isGroundTruth=bool(create.get("isGroundTruth")), priority=create.get("priority"),
                 createdBy=user_name(data.get("createdBy"), self.users) if data else None)
            self.stage = create.get("currentStageName")
            return "TASK_CREATED", event
        if raw.get("inputEvent"):
            entered = raw["inputEvent"]
            kind = None
            if entered.get("overallConsensusScore") is not None:
                kind = "CONSENSUS_COMPUTED"
                _set(event, stage=self.stage, score=entered["overallConsensusScore"], priority=entered.get("priority"),
                     consensusInfo=_consensus_info(entered.get("consensusInfo"), self.users) or None)
            self.stage = entered.get("currentStageName")
            return kind, event
        if raw.get("outputEvent"):
            left = raw["outputEvent"]
            stage = left.get("currentStageName")
            self.stage = stage
            if stage in _SILENT_STAGES:
                return None, event
            by = user_name(data.get("createdBy"), self.users) if stage == "END" else \
                user_name(self.assignee or data.get("createdBy"), self.users)
            if stage == "END":
                kind = "GROUNDTRUTH_TASK_EDITED"
                _set(event, updatedBy=by)
            else:
                if left.get("nextStageName"):
                    kind = "TASK_MOVED"
                elif left.get("outputBool") is None:
                    kind = "TASK_SUBMITTED"
                elif left["outputBool"]:
                    kind = "TASK_ACCEPTED" if self.review_passed else "TASK_CORRECTED"
                else:
                    kind = "TASK_REJECTED"
                _set(event, stage=stage, updatedBy=by, nextStageName=left.get("nextStageName"))
            _set(event, timeSpentMs=left.get("timeSpentMs"))
            if left.get("consensusInfo"):
                event["consensusInfo"] = _consensus_info(left["consensusInfo"], self.users)
            else:
                _set(event, labelsId=labels_id)
            return kind, event
        return None, event

    def state_change(self, raw: Raw) -> tuple[str | None, dict[str, Any]]:
        event: dict[str, Any] = {}
        kind = None
        name = self.users

        def people(assignees: Any, statuses: Any) -> list[dict[str, Any]]:
            return [{"assignee": user_name(a, name), "status": s} for a, s in zip(assignees or [], statuses or [])]

        if raw.get("reviewResultBefore") != raw.get("reviewResultAfter"):
            self.review_passed = bool(raw.get("reviewResultAfter"))
        before, after = raw.get("assignedToBefore"), raw.get("assignedToAfter")
        if (raw.get("consensusAssigneesBefore") != raw.get("consensusAssigneesAfter")
                or raw.get("consensusStatusesBefore") != raw.get("consensusStatusesAfter")):
            kind = "CONSENSUS_TASK_EDITED"
            event["consensusUsers"] = people(raw.get("consensusAssigneesAfter"), raw.get("consensusStatusesAfter"))
            event["prevConsensusUsers"] = people(raw.get("consensusAssigneesBefore"),
                                                 raw.get("consensusStatusesBefore"))
        elif before != after:
            if not after:
                kind, event["prevAssignee"] = "TASK_UNASSIGNED", user_name(before, name)
            elif before:
                kind = "TASK_REASSIGNED"
                event.update(assignee=user_name(after, name), prevAssignee=user_name(before, name))
            else:
                kind, event["assignee"] = "TASK_ASSIGNED", user_name(after, name)
        elif raw.get("statusBefore") != raw.get("statusAfter"):
            if raw.get("statusAfter") == "SKIPPED":
                kind, event["assignee"] = "TASK_SKIPPED", user_name(after, name)
            elif raw.get("statusAfter") == "IN_PROGRESS" and raw.get("statusBefore") in ("SKIPPED", "ASSIGNED"):
                kind, event["assignee"] = "TASK_SAVED", user_name(after, name)
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
            self.events = [e for e in self.events if e["eventType"] != "TASK_SAVED"]
        self.events.append({"eventType": kind, "createdAt": raw.get("createdAt"), **event})


def task_events(task: Raw, users: Mapping[str, str]) -> dict[str, Any]:
    """``{taskId, taskName, currentStageName, events}`` with the events sorted by ``createdAt``. A save is
    reported only when it is the task's last event."""
    trail = _Trail(users)
    for raw in task.get("genericEvents") or []:
        trail.add(raw)
    events = trail.events
    if events and any(e["eventType"] == "TASK_SAVED" for e in events[:-1]):
        events = [e for e in events if e["eventType"] != "TASK_SAVED"]
    return {"taskId": task.get("taskId"), "taskName": (task.get("datapoint") or {}).get("name"),
            "currentStageName": task.get("currentStageName"),
            "events": sorted(events, key=lambda e: e.get("createdAt") or "")}


def _assignee(sub_task: Any, users: Mapping[str, str]) -> dict[str, Any] | None:
    if not isinstance(sub_task, Mapping):
        return None
    user = user_name(sub_task.get("assignedTo"), users)
    if not user:
        return None
    out = {"user": user, "status": sub_task.get("state")}
    for raw_key, key in (("assignedAt", "assignedAt"), ("progressSavedAt", "lastSavedAt"),
                         ("completedAt", "completedAt"), ("completionTimeMs", "timeSpentMs")):
        if sub_task.get(raw_key) is not None:
            out[key] = sub_task[raw_key]
    return out


def task_entry(task: Raw, users: Mapping[str, str]) -> dict[str, Any]:
    """A listing record: ``{taskId, name, createdAt, currentStageName, storageId?, updatedAt?, createdBy?,
    priority?, metaData?, series?, assignees?}``."""
    datapoint = task.get("datapoint") or {}
    out: dict[str, Any] = {"taskId": task.get("taskId"), "name": datapoint.get("name"),
                           "createdAt": datapoint.get("createdAt"), "currentStageName": task.get("currentStageName")}
    series = [{k: v for k, v in (("name", s.get("name")), ("metaData", s.get("metaData")),
                                 ("imageHeaders", s.get("imageHeaders"))) if v}
              for s in datapoint.get("seriesInfo") or []]
    sub_task = task.get("currentStageSubTask")
    assignees = [a for a in [_assignee(sub_task, users), *(_assignee(s, users) for s in
                                                           (sub_task or {}).get("subTasks") or [])] if a]
    optional = {"storageId": (datapoint.get("storageMethod") or {}).get("storageId"),
                "updatedAt": task.get("updatedAt"),
                "createdBy": user_name((datapoint.get("createdByEntity") or {}), users),
                "priority": task.get("priority"), "metaData": datapoint.get("metaData"),
                "series": series if any(series) else None, "assignees": assignees or None}
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


#: ``labelport tasks --search`` values, as RedBrick's SDK names them
SEARCHES = ("ALL", "GROUNDTRUTH", "UNASSIGNED", "QUEUED", "DRAFT", "SKIPPED", "COMPLETED", "FAILED", "ISSUES")


def search_filters(search: str, user_id: str | None = None, completed_from: str | None = None,
                   completed_to: str | None = None) -> tuple[str | None, dict[str, Any]]:
    """(stage override, ``TasksFilter``) for a listing search; ``GROUNDTRUTH`` lists the ``END`` stage."""
    user = {"userId": user_id} if user_id else {}
    if search == "ALL":
        return None, {**user}
    if search == "GROUNDTRUTH":
        return "END", {**user}
    if search == "UNASSIGNED":
        return None, {"userId": None}
    if search == "COMPLETED":
        dates = {k: v for k, v in (("completedAtFrom", completed_from), ("completedAtTo", completed_to)) if v}
        return None, {"recentlyCompleted": True, **dates, **user}
    if search == "FAILED":
        return None, {"reviewState": "FAILED", **user}
    states = {"QUEUED": "ASSIGNED", "DRAFT": "STAGED", "SKIPPED": "SKIPPED", "ISSUES": "PROBLEM"}
    if search in states:
        return None, {"status": states[search], **user}
    raise ValueError(f"unknown search {search!r}; expected one of {', '.join(SEARCHES)}")
