"""RedBrick audit trails -> the SDK's event records, for every event kind (the emulator covers the common path)."""

from __future__ import annotations

from typing import Any

from labelport.sources.audit import search_filters, task_events, user_name

USERS = {"u1": "one@example.com", "u2": "two@example.com", "API:k": "bot"}


def _change(at: str, **values: Any) -> dict[str, Any]:
    keys = ("statusBefore", "statusAfter", "assignedToBefore", "assignedToAfter", "stageNameAfter",
            "reviewResultBefore", "reviewResultAfter", "consensusAssigneesBefore", "consensusAssigneesAfter",
            "consensusStatusesBefore", "consensusStatusesAfter")
    return {"__typename": "TaskStateChanges", "createdAt": at, **dict.fromkeys(keys), **values}


def _event(at: str, by: str | None = None, **values: Any) -> dict[str, Any]:
    return {"__typename": "TaskEvent", "createdAt": at, "taskData": {"tdId": "td", "createdBy": by}, **values}


def test_every_event_kind() -> None:
    trail = [
        _event("01", "RB:x", createEvent={"currentStageName": "Label", "isGroundTruth": False, "priority": None}),
        _change("02", consensusAssigneesBefore=["u1"], consensusAssigneesAfter=["u1", "u2"],
                consensusStatusesBefore=["ASSIGNED"], consensusStatusesAfter=["ASSIGNED", "ASSIGNED"]),
        _event("03", inputEvent={"currentStageName": "Review_1", "overallConsensusScore": 0.9, "priority": 0.2,
                                 "consensusInfo": [{"user": {"userId": "u1"}, "taskData": {"tdId": "a"},
                                                    "scores": [{"user": {"userId": "u2"}, "score": 0.9}]}]}),
        _change("04", assignedToAfter="u2", stageNameAfter="Review_1"),
        _change("05", assignedToBefore="u2", assignedToAfter="u1"),
        _event("06", "u1", outputEvent={"currentStageName": "Review_1", "outputBool": False, "timeSpentMs": 5}),
        _change("07", reviewResultBefore=True, reviewResultAfter=False),
        _event("08", "u1", outputEvent={"currentStageName": "Failed_Review", "outputBool": None}),
        _change("09", assignedToBefore="u1", assignedToAfter=None, stageNameAfter="Label"),
        _change("10", assignedToBefore="u2", assignedToAfter="u2", statusBefore="ASSIGNED", statusAfter="SKIPPED"),
        _event("11", "u2", outputEvent={"currentStageName": "Review_1", "outputBool": True}),
        _event("12", "API:k", outputEvent={"currentStageName": "Review_1", "outputBool": True,
                                           "nextStageName": "END"}),
        _event("13", "u1", outputEvent={"currentStageName": "END", "outputBool": None, "timeSpentMs": 7}),
        _change("14", assignedToBefore="u1", assignedToAfter="u1", statusBefore="ASSIGNED", statusAfter="IN_PROGRESS"),
    ]
    record = task_events({"taskId": "t", "currentStageName": "END", "datapoint": {"name": "n"},
                          "genericEvents": trail}, USERS)
    events = record.pop("events")
    assert record == {"taskId": "t", "taskName": "n", "currentStageName": "END"}
    assert [(e["eventType"], e["createdAt"]) for e in events] == [
        ("TASK_CREATED", "01"), ("CONSENSUS_TASK_EDITED", "02"), ("CONSENSUS_COMPUTED", "03"),
        ("TASK_ASSIGNED", "04"), ("TASK_REASSIGNED", "05"), ("TASK_REJECTED", "06"), ("TASK_UNASSIGNED", "09"),
        ("TASK_SKIPPED", "10"), ("TASK_CORRECTED", "11"), ("TASK_MOVED", "12"), ("GROUNDTRUTH_TASK_EDITED", "13"),
        ("TASK_SAVED", "14")]
    by_time = {e["createdAt"]: e for e in events}
    assert by_time["01"]["createdBy"] == "System" and by_time["01"]["isGroundTruth"] is False
    assert by_time["02"]["consensusUsers"] == [{"assignee": "one@example.com", "status": "ASSIGNED"},
                                               {"assignee": "two@example.com", "status": "ASSIGNED"}]
    assert by_time["02"]["prevConsensusUsers"] == [{"assignee": "one@example.com", "status": "ASSIGNED"}]
    assert by_time["03"] == {"eventType": "CONSENSUS_COMPUTED", "createdAt": "03", "stage": "Label", "score": 0.9,
                             "priority": 0.2, "consensusInfo": [{"user": "one@example.com", "labelsId": "a",
                                                                 "scores": [{"user": "two@example.com",
                                                                             "score": 0.9}]}]}
    assert by_time["05"]["assignee"] == "one@example.com" and by_time["05"]["prevAssignee"] == "two@example.com"
    assert by_time["06"] == {"eventType": "TASK_REJECTED", "createdAt": "06", "stage": "Review_1",
                             "updatedBy": "one@example.com", "timeSpentMs": 5, "labelsId": "td"}
    assert by_time["09"] == {"eventType": "TASK_UNASSIGNED", "createdAt": "09", "prevAssignee": "one@example.com",
                             "stage": "Label"}
    assert by_time["12"]["nextStageName"] == "END" and by_time["12"]["updatedBy"] == "two@example.com"
    assert by_time["13"] == {"eventType": "GROUNDTRUTH_TASK_EDITED", "createdAt": "13",
                             "updatedBy": "one@example.com", "timeSpentMs": 7, "labelsId": "td"}
    # a save that is followed by another event is not reported
    later = task_events({"taskId": "t", "genericEvents": [*trail, _change("15", assignedToBefore="u1")]}, USERS)
    assert "TASK_SAVED" not in [e["eventType"] for e in later["events"]]


def test_users_and_searches() -> None:
    assert [user_name(u, USERS) for u in ("u1", "API:k", "API:other", "RB:sys", "u9", None)] == [
        "one@example.com", "API Key - bot", "API Key", "System", "u9", None]
    assert search_filters("GROUNDTRUTH") == ("END", {})
    assert search_filters("UNASSIGNED", "u1") == (None, {"userId": None})
    assert search_filters("QUEUED", "u1") == (None, {"status": "ASSIGNED", "userId": "u1"})
    assert search_filters("COMPLETED", None, "2025-01-01") == (None, {"recentlyCompleted": True,
                                                                      "completedAtFrom": "2025-01-01"})
