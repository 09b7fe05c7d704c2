"""A RedBrick project for the emulator, made from an export folder: each task becomes the API's task object
(datapoint, series info, raw labels, labels map), each label map a stored file, as REDBRICK_API.md describes."""

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

    emulator.handlers.update({
        "getTaxonomySDK": lambda v: {"project": {"taxonomy": taxonomy}},
        "tasksPagedSDK": paged,
        "taskSDK": lambda v: {"task": next((s for s in shards if s["taskId"] == v["taskId"]), None)},
        "presignItemsSDK": lambda v: {"presignItems": [emulator.file_url(i) + "?X-Signature=secret"
                                                       for i in v["items"]]},
    })
    return shards
