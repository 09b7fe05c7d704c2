"""RedBrick audit trails -> the SDK's event records, for every event kind, and listing searches -> the stage
and filters the SDK sends (test_redbrick_sdk.py compares both with the SDK itself)."""

from __future__ import annotations

from typing import Any

import pytest

from labelport.sources.audit import Stages, search_filters, task_events

USERS = {"u1": "one@example.com", "u2": "two@example.com"}
STAGES = Stages(label=("Label",), review=("Review_1", "Review_2"), output="Output")


def _user(user_id: str | None) -> dict[str, Any] | None:
    return {"userId": user_id, "email": USERS.get(user_id or ""), "givenName": "bot"} if user_id else None


def _change(at: str, **values: Any) -> dict[str, Any]:
    keys = ("statusBefore", "statusAfter", "stageNameAfter", "updatedBy", "reviewResultBefore", "reviewResultAfter",
            "consensusAssigneesBefore", "consensusAssigneesAfter", "consensusStatusesBefore",
            "consensusStatusesAfter")
    for key in ("assignedToBeforeEntity", "assignedToAfterEntity"):
        values[key] = _user(values.get(key))
    return {"__typename": "TaskStateChanges", "createdAt": at, **dict.fromkeys(keys), **values}


def _event(at: str, by: str | None = None, **values: Any) -> dict[str, Any]:
    return {"__typename": "TaskEvent", "createdAt": at, "updatedBy": by,
            "taskData": {"tdId": "td", "createdBy": by}, **values}


def test_every_event_kind() -> None:
    trail = [
        _event("01", "RB:x", createEvent={"currentStageName": "Label", "isGroundTruth": False, "priority": None}),
        _change("02", consensusAssigneesBefore=["u1"], consensusAssigneesAfter=["u1", "u2"],
                consensusStatusesBefore=["ASSIGNED"], consensusStatusesAfter=["ASSIGNED", "ASSIGNED"]),
        _event("03", inputEvent={"currentStageName": "Review_1", "overallConsensusScore": 0.9, "priority": 0.2,
                                 "consensusInfo": [{"user": _user("u1"), "taskData": {"tdId": "a"},
                                                    "scores": [{"user": _user("u2"), "score": 0.9}]}]}),
        _change("04", assignedToAfterEntity="u2", stageNameAfter="Review_1"),
        _change("05", assignedToBeforeEntity="u2", assignedToAfterEntity="u1"),
        _event("06", "u1", outputEvent={"currentStageName": "Review_1", "outputBool": False, "timeSpentMs": 5}),
        _change("07", reviewResultBefore=True, reviewResultAfter=False),
        _event("08", "u1", outputEvent={"currentStageName": "Failed_Review", "outputBool": None}),
        _change("09", assignedToBeforeEntity="u1", stageNameAfter="Label"),
        _change("10", assignedToBeforeEntity="u2", assignedToAfterEntity="u2", statusBefore="ASSIGNED",
                statusAfter="SKIPPED"),
        _event("11", "u2", outputEvent={"currentStageName": "Review_1", "outputBool": True,
                                        "multiLabels": [{"user": _user("u1"), "taskData": {"tdId": "m"}}]}),
        _event("12", "API:k", outputEvent={"currentStageName": "Review_1", "outputBool": True,
                                           "nextStageName": "END"}),
        _event("13", "u1", outputEvent={"currentStageName": "END", "outputBool": None, "timeSpentMs": 7}),
        {"__typename": "Comment", "createdAt": "13b", "commentId": "c", "textVal": "hi", "createdBy": _user("u2"),
         "stageName": "END", "issueComment": None, "issueResolved": False, "labelEntityLabelId": "lab",
         "taskData": {"tdId": "td"}, "pin": {"pinId": 1, "pointX": 1.0, "pointY": 2.0, "pointZ": 3.0,
                                             "frameIndex": 0, "volumeIndex": 0},
         "replies": [{"commentId": "r", "textVal": "ok", "createdBy": _user("u1"), "stageName": "END",
                      "issueComment": False, "issueResolved": False}]},
        _change("14", assignedToBeforeEntity="u1", assignedToAfterEntity="u1", statusBefore="ASSIGNED",
                statusAfter="IN_PROGRESS"),
    ]
    record = task_events({"taskId": "t", "currentStageName": "END", "datapoint": {"name": "n"},
                          "genericEvents": trail}, USERS)
    events = record.pop("events")
    assert record == {"taskId": "t", "taskName": "n", "currentStageName": "END"}
    assert [(e["eventType"], e["createdAt"]) for e in events] == [
        ("TASK_CREATED", "01"), ("CONSENSUS_TASK_EDITED", "02"), ("CONSENSUS_COMPUTED", "03"),
        ("TASK_ASSIGNED", "04"), ("TASK_REASSIGNED", "05"), ("TASK_REJECTED", "06"), ("TASK_UNASSIGNED", "09"),
        ("TASK_SKIPPED", "10"), ("TASK_CORRECTED", "11"), ("TASK_MOVED", "12"), ("GROUNDTRUTH_TASK_EDITED", "13"),
        ("COMMENT_ADDED", "13b"), ("TASK_SAVED", "14")]
    by_time = {e["createdAt"]: e for e in events}
    assert by_time["01"] == {"eventType": "TASK_CREATED", "createdAt": "01", "isGroundTruth": False,
                             "createdBy": "System", "labelsId": "td"}
    assert by_time["02"]["consensusUsers"] == [{"assignee": "one@example.com", "status": "ASSIGNED"},
                                               {"assignee": "two@example.com", "status": "ASSIGNED"}]
    assert by_time["02"]["prevConsensusUsers"] == [{"assignee": "one@example.com", "status": "ASSIGNED"}]
    assert by_time["03"] == {"eventType": "CONSENSUS_COMPUTED", "createdAt": "03", "stage": "Label", "score": 0.9,
                             "priority": 0.2, "consensusInfo": [{"user": "one@example.com", "labelsId": "a",
                                                                 "scores": [{"user": "two@example.com",
                                                                             "score": 0.9}]}]}
    assert by_time["05"]["assignee"] == "one@example.com" and by_time["05"]["prevAssignee"] == "two@example.com"
    # the reviewer is the assignee at the time, not the version's author
    assert by_time["06"] == {"eventType": "TASK_REJECTED", "createdAt": "06", "stage": "Review_1",
                             "updatedBy": "one@example.com", "timeSpentMs": 5, "labelsId": "td"}
    assert by_time["09"] == {"eventType": "TASK_UNASSIGNED", "createdAt": "09", "prevAssignee": "one@example.com",
                             "stage": "Label"}
    assert by_time["11"]["consensusInfo"] == [{"user": "one@example.com", "labelsId": "m"}]
    assert by_time["12"]["updatedBy"] == "API Key - API:k" and "nextStageName" not in by_time["12"]
    assert by_time["13"] == {"eventType": "GROUNDTRUTH_TASK_EDITED", "createdAt": "13",
                             "updatedBy": "one@example.com", "timeSpentMs": 7, "labelsId": "td"}
    assert by_time["13b"] == {"eventType": "COMMENT_ADDED", "createdAt": "13b", "commentId": "c",
                              "commentText": "hi", "createdBy": "two@example.com", "stage": "END", "isIssue": None,
                              "issueResolved": False, "labelsId": "td", "labelId": "lab",
                              "pin": {"pinId": 1, "pointX": 1.0, "pointY": 2.0, "pointZ": 3.0, "frameIndex": 0,
                                      "volumeIndex": 0},
                              "replies": [{"commentId": "r", "commentText": "ok", "createdBy": "one@example.com",
                                           "stage": "END", "isIssue": False, "issueResolved": False}]}
    # a save that is followed by another event is not reported
    later = task_events({"taskId": "t", "genericEvents": [*trail, _change("15", assignedToBeforeEntity="u1")]}, USERS)
    assert "TASK_SAVED" not in [e["eventType"] for e in later["events"]]


def test_searches_send_what_the_sdk_sends() -> None:
    assert search_filters("ALL", STAGES, user_id="u1") == (None, {})
    assert search_filters("GROUNDTRUTH", STAGES) == ("Output", {})
    assert search_filters("UNASSIGNED", STAGES, user_id="u1") == ("Label", {"userId": None})
    assert search_filters("QUEUED", STAGES, "Review_1", "u1") == ("Review_1", {"userId": "u1"})
    assert search_filters("DRAFT", STAGES) == ("Label", {"status": "STAGED"})
    assert search_filters("COMPLETED", STAGES, None, None, None, "2025-01-01T00:00:00+00:00") == (
        "Label", {"recentlyCompleted": True, "completedAtFrom": "2025-01-01T00:00:00+00:00"})
    assert search_filters("FAILED", STAGES, "Review_2", "u1") == ("Review_2", {"reviewState": "FAILED"})
    assert search_filters("FAILED", STAGES, "Label") == ("Review_1", {"reviewState": "FAILED"})
    assert search_filters("ISSUES", STAGES, "Review_1") == ("Label", {"status": "PROBLEM"})
    assert search_filters("QUEUED", STAGES, task_id="t") == ("Label", {"taskId": "t"})
    with pytest.raises(ValueError, match="needs a review stage"):
        search_filters("FAILED", Stages(label=("Label",), review=()))
    assert Stages.of([{"stageName": "Input", "brickName": "labelset-input"},
                      {"stageName": "L", "brickName": "manual-labeling"},
                      {"stageName": "R", "brickName": "expert-review"},
                      {"stageName": "Done", "brickName": "labelset-output"}]) == Stages(("L",), ("R",), "Done")
