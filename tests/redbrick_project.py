"""A RedBrick project for the emulator, made from an export folder: each task becomes the API's task object
(datapoint, series info, raw labels, labels map), each label map a stored file, as REDBRICK_API.md describes.
Each task also gets an audit trail (``genericEvents``) and an assignment, for the events and listing queries."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from redbrick_emulator import Emulator

import labelport


def _attrs(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in (values or {}).items()]


def _shard(task: dict[str, Any], source: labelport.LocalExport, emulator: Emulator) -> dict[str, Any]:
    items: list[str] = []
    series_info, labels, labels_map = [], [], []
    for index, s in enumerate(task["series"]):
        own = s.get("items") or []
        series_info.append({"name": s["name"], "itemsIndices": list(range(len(items), len(items) + len(own))),
                            "metaData": s.get("metaData"), "imageHeaders": s.get("imageHeaders")})
        items += own
        for item in own:  # the image files, where the export has them
            path = source.find(item)
            if path is not None:
                emulator.files[item] = Path(path).read_bytes()
        if "segmentations" in s:
            seg = s["segmentations"][0] if isinstance(s["segmentations"], list) else s["segmentations"]
            data = Path(source.resolve(seg)).read_bytes()
            stored = f"labels/{task['taskId']}/{index}.nii.gz"
            emulator.files[stored] = data if data[:2] == b"\x1f\x8b" else gzip.compress(data, mtime=0)
            labels_map.append({"seriesIndex": index, "imageIndex": None, "labelName": stored})
            for key, entry in s.get("segmentMap", {}).items():
                labels.append({"labelid": entry.get("id"), "category": entry["category"], "volumeindex": index,
                               "attributes": _attrs(entry.get("attributes")),
                               "dicom": {"instanceid": int(key), "groupids": entry.get("overlappingGroups")}})
        for c in s.get("classifications", []):
            labels.append({"labelid": c.get("id"), "attributes": _attrs(c.get("attributes")), "volumeindex": index,
                           "seriesclassify": True})
        for m in s.get("measurements", []):
            labels.append({"labelid": m.get("id"), "category": m.get("category"), "volumeindex": index,
                           "length3d": {"point1": m["point1"], "point2": m["point2"], "normal": m.get("normal"),
                                        "computedlength": m.get("length")}})
        for p in s.get("landmarks3d", []):
            point = p["point"]
            labels.append({"labelid": p.get("id"), "category": p.get("category"), "volumeindex": index,
                           "point3d": {"pointx": point["i"], "pointy": point["j"], "pointz": point["k"]}})
        for c in s.get("cuboids", []):
            labels.append({"labelid": c.get("id"), "category": c.get("category"), "volumeindex": index,
                           "cuboid": {"point1": c["point1"], "point2": c["point2"]}})
    if task.get("classification"):
        labels.append({"labelid": task["classification"].get("id"), "studyclassify": True,
                       "attributes": _attrs(task["classification"].get("attributes"))})
    return {
        "taskId": task["taskId"], "currentStageName": task.get("currentStageName"), "priority": task.get("priority"),
        "currentStageSubTask": {"state": task.get("status")},
        "datapoint": {"name": task["name"], "items": items, "createdAt": task.get("createdAt"),
                      "createdByEntity": {"email": task.get("createdBy")}, "metaData": task.get("metaData"),
                      "seriesInfo": series_info, "storageMethod": {"storageId": task.get("storageId")}},
        "latestTaskData": {"tdId": task.get("labelsId"), "createdAt": task.get("updatedAt"),
                           "createdByEntity": {"email": task.get("updatedBy")}, "labelsData": json.dumps(labels),
                           "labelsStorage": {"storageId": "label-storage"}, "labelsMap": labels_map},
    }


MEMBERS = {"u-upload": "uploader@example.com", "u-annotator": "annotator@example.com",
           "u-reviewer": "reviewer@example.com", "API:k1": "ci-bot"}


def _at(day: str, time: str) -> str:
    return f"{day}T{time}.000000+00:00"


def trail(shard: dict[str, Any]) -> list[dict[str, Any]]:
    """A plausible audit trail for a task, in the raw union shape: created, assigned, saved twice, commented,
    submitted; tasks past labelling are then reviewed and accepted into END."""
    day = shard["datapoint"]["createdAt"][:10]
    tdid = shard["latestTaskData"]["tdId"]

    def change(time: str, **values: Any) -> dict[str, Any]:
        base = {"statusBefore": None, "statusAfter": None, "assignedToBefore": None, "assignedToAfter": None,
                "stageNameAfter": None, "reviewResultBefore": None, "reviewResultAfter": None,
                "consensusAssigneesBefore": None, "consensusAssigneesAfter": None,
                "consensusStatusesBefore": None, "consensusStatusesAfter": None}
        return {"__typename": "TaskStateChanges", "createdAt": _at(day, time), **base, **values}

    def event(time: str, by: str | None = None, **values: Any) -> dict[str, Any]:
        return {"__typename": "TaskEvent", "createdAt": _at(day, time),
                "taskData": {"tdId": tdid, "createdBy": by} if by else None, **values}

    events = [
        event("09:00:00", "API:k1", createEvent={"currentStageName": "Label", "isGroundTruth": False,
                                                 "priority": shard["priority"]}),
        change("09:05:00", assignedToAfter="u-annotator", statusBefore="UNASSIGNED", statusAfter="ASSIGNED",
               stageNameAfter="Label"),
        change("09:10:00", assignedToBefore="u-annotator", assignedToAfter="u-annotator", statusBefore="ASSIGNED",
               statusAfter="IN_PROGRESS"),
        {"__typename": "Comment", "createdAt": _at(day, "09:20:00"), "commentId": f"c-{tdid[-2:]}",
         "textVal": "Check the left kidney", "createdBy": {"userId": "u-annotator"}, "stageName": "Label",
         "issueComment": True, "issueResolved": False, "labelEntityLabelId": None, "taskData": {"tdId": tdid},
         "pin": None, "replies": [{"createdAt": _at(day, "09:25:00"), "commentId": f"r-{tdid[-2:]}",
                                   "textVal": "Done", "createdBy": {"userId": "RB:system"}, "stageName": "Label",
                                   "issueComment": False, "issueResolved": False}]},
        event("10:00:00", "u-annotator", outputEvent={"currentStageName": "Label", "outputBool": None,
                                                      "nextStageName": None, "timeSpentMs": 600000}),
        event("10:00:01", inputEvent={"currentStageName": "Review_1", "overallConsensusScore": None,
                                      "priority": None}),
    ]
    if shard["currentStageName"] == "END":
        events += [
            change("10:10:00", assignedToAfter="u-reviewer", statusBefore="UNASSIGNED", statusAfter="ASSIGNED",
                   stageNameAfter="Review_1"),
            event("10:30:00", "u-reviewer", outputEvent={"currentStageName": "Review_1", "outputBool": True,
                                                         "nextStageName": None, "timeSpentMs": 120000}),
            event("10:30:01", inputEvent={"currentStageName": "END", "overallConsensusScore": None,
                                          "priority": None}),
        ]
    else:
        events.append(change("10:20:00", assignedToAfter="u-reviewer", statusBefore="UNASSIGNED",
                             statusAfter="ASSIGNED", stageNameAfter="Review_1"))
    return events


def _listing(shard: dict[str, Any]) -> dict[str, Any]:
    datapoint = shard["datapoint"]
    reviewer = shard["currentStageName"] != "END"
    state = shard["currentStageSubTask"]["state"]
    return {"taskId": shard["taskId"], "currentStageName": shard["currentStageName"], "priority": shard["priority"],
            "updatedAt": shard["latestTaskData"]["createdAt"],
            "datapoint": {"name": datapoint["name"], "createdAt": datapoint["createdAt"],
                          "createdByEntity": {"userId": "u-upload", "email": datapoint["createdByEntity"]["email"]},
                          "metaData": datapoint["metaData"],
                          "seriesInfo": [{"name": s["name"], "metaData": s["metaData"],
                                          "imageHeaders": s["imageHeaders"]} for s in datapoint["seriesInfo"]],
                          "storageMethod": datapoint["storageMethod"]},
            "currentStageSubTask": {"state": state,
                                    "assignedTo": {"userId": "u-reviewer" if reviewer else "u-annotator"},
                                    "assignedAt": shard["latestTaskData"]["createdAt"], "progressSavedAt": None,
                                    "completedAt": None if reviewer else shard["latestTaskData"]["createdAt"],
                                    "completionTimeMs": None if reviewer else 600000}}


def _list_handler(shards: list[dict[str, Any]], page_size: int) -> Any:
    def accepts(entry: dict[str, Any], v: dict[str, Any]) -> bool:
        sub = entry["currentStageSubTask"]
        filters = v.get("manualLabelingFilters") or {}
        search = v.get("taskSearch")
        name = entry["datapoint"]["name"]
        return ((not v.get("stageName") or entry["currentStageName"] == v["stageName"])
                and (not search or (name == search[1:-1] if search.startswith('"') else search in name))
                and ("status" not in filters or sub["state"] == filters["status"])
                and ("userId" not in filters or (sub["assignedTo"] or {}).get("userId") == filters["userId"])
                and (not filters.get("recentlyCompleted") or sub["state"] == "COMPLETED"))

    def handler(v: dict[str, Any]) -> dict[str, Any]:
        chosen = [e for e in map(_listing, shards) if accepts(e, v)]
        start = int(v.get("after") or 0)
        end = start + min(int(v.get("first") or page_size), page_size)
        return {"genericTasks": {"entries": chosen[start:end], "cursor": str(end) if end < len(chosen) else None}}

    return handler


def serve_export(emulator: Emulator, root: Path, page_size: int = 2) -> list[dict[str, Any]]:
    """Serve the export folder ``root`` as a RedBrick project; returns the task objects."""
    source = labelport.LocalExport(root)
    shards = [_shard(t, source, emulator) for t in json.loads((root / "tasks.json").read_text())]
    taxonomy = json.loads((root / "taxonomy.json").read_text())

    def paged(v: dict[str, Any]) -> dict[str, Any]:
        chosen = [s for s in shards if (not v.get("stageName") or s["currentStageName"] == v["stageName"])
                  and (not v.get("cacheTime") or s["latestTaskData"]["createdAt"] > v["cacheTime"])]
        start = int(v.get("after") or 0)
        size = int(v.get("first") or page_size)
        size = min(size, page_size)
        end = start + size
        return {"tasksPaged": {"entries": chosen[start:end], "cursor": str(end) if end < len(chosen) else None,
                               "count": len(chosen)}}

    for shard in shards:
        shard["genericEvents"] = trail(shard)

    emulator.handlers.update({
        "getTaxonomySDK": lambda v: {"project": {"taxonomy": taxonomy}},
        "membersSDK": lambda v: {"members": [{"user": {"userId": k, "email": None if k.startswith("API:") else e,
                                                        "givenName": e if k.startswith("API:") else "Member"}}
                                             for k, e in MEMBERS.items()]},
        "taskEventsSDK": lambda v: {"tasksPaged": paged(v)["tasksPaged"]},
        "taskEventSDK": lambda v: {"task": next((s for s in shards if s["taskId"] == v["taskId"]), None)},
        "tasksListSDK": _list_handler(shards, page_size),
        "tasksPagedSDK": paged,
        "taskSDK": lambda v: {"task": next((s for s in shards if s["taskId"] == v["taskId"]), None)},
        "presignItemsSDK": lambda v: {"presignItems": [emulator.file_url(i) + "?X-Signature=secret"
                                                       for i in v["items"]]},
    })
    return shards
