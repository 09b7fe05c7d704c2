"""The RedBrick API's task objects (``task_shard``) and their raw label objects (the lower-case keyed list of
``labelsData``) -> tasks.json task records, as a RedBrick export writes them.

Each raw label is one kind, recognised by its geometry key; :data:`KINDS` maps that key to the series field it
lands in and to the function that builds the entry. Shared properties (``id``, ``category``, ``attributes``,
``group``, ``readOnly``), video frame data and intensity statistics are added the same way for every kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["KINDS", "attributes", "label_props", "record_from_shard", "series_fields", "task_classification"]

Raw = Mapping[str, Any]


def attributes(raw: Any) -> dict[str, Any]:
    """RedBrick's ``[{name, value}]`` attribute list as ``{name: value}``; the strings "true" and "false" (any
    case) become booleans."""
    out: dict[str, Any] = {}
    for item in raw or []:
        if isinstance(item, Mapping) and "name" in item:
            value = item.get("value")
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            out[str(item["name"])] = value
    return out


def _category(value: Any) -> Any:
    """Taxonomy v2 gives a name; v1 a trail ``[["Object", "Liver"]]`` -> "Liver" (or the trail below the root)."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return value[0][1] if len(value[0]) == 2 else value[0][1:]
    return value


def label_props(label: Raw) -> dict[str, Any]:
    """``id``, ``category``, ``attributes``, ``group`` and ``readOnly``, each when set."""
    props: dict[str, Any] = {}
    if label.get("labelid") is not None:
        props["id"] = label["labelid"]
    if label.get("category") is not None:
        props["category"] = _category(label["category"])
    attrs = attributes(label.get("attributes"))
    if attrs:
        props["attributes"] = attrs
    if label.get("linkid") is not None:
        props["group"] = label["linkid"]
    if label.get("readonly"):
        props["readOnly"] = True
    return props


def _index(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _video(label: Raw, item_indices: Sequence[int]) -> dict[str, Any]:
    """Frame data of a label drawn on one frame or slice (``video``), when it has one."""
    global_index, frame = _index(label.get("globalitemsindex")), _index(label.get("frameindex"))
    if global_index is None and frame is None:
        return {}
    return {"video": {
        "trackId": label.get("trackid") or "", "keyFrame": label.get("keyframe", True),
        "endTrack": label.get("end", True),
        "seriesItemIndex": list(item_indices).index(global_index)
        if global_index is not None and global_index in item_indices else None,
        "seriesFrameIndex": label.get("seriesframeindex"), "frameIndex": label.get("frameindex"),
    }}


def _stats(label: Raw) -> dict[str, Any]:
    stats = label.get("stats")
    if not isinstance(stats, Mapping):
        return {}
    return {"stats": {k: v for k, v in stats.items() if v is not None}}


def _voxel(point: Any) -> dict[str, Any]:
    return {"i": point[0], "j": point[1], "k": point[2]} if isinstance(point, (list, tuple)) else point


def _world(point: Any) -> dict[str, Any]:
    return {"x": point[0], "y": point[1], "z": point[2]} if isinstance(point, (list, tuple)) else point


def _norm(point: Mapping[str, Any]) -> dict[str, Any]:
    return {"xNorm": point["xnorm"], "yNorm": point["ynorm"]}


def _computed(geometry: Raw, names: Mapping[str, str]) -> dict[str, Any]:
    """World points and values the viewer computed, under their output names, when present."""
    out: dict[str, Any] = {}
    for raw_key, out_key in names.items():
        value = geometry.get(raw_key)
        if value is not None and value != []:
            out[out_key] = _world(value) if raw_key.endswith("world") else value
    return out


def _length(g: Raw) -> dict[str, Any]:
    return {"type": "length", "point1": _voxel(g["point1"]), "point2": _voxel(g["point2"]), "normal": g.get("normal")}


def _length_extra(g: Raw) -> dict[str, Any]:
    return _computed(g, {"computedpoint1world": "absolutePoint1", "computedpoint2world": "absolutePoint2",
                         "computedlength": "length"})


def _angle(g: Raw) -> dict[str, Any]:
    return {"type": "angle", "point1": _voxel(g["point1"]), "vertex": _voxel(g["point2"]),
            "point2": _voxel(g["point3"]), "normal": g.get("normal")}


def _angle_extra(g: Raw) -> dict[str, Any]:
    return _computed(g, {"computedpoint1world": "absolutePoint1", "computedpoint2world": "absoluteVertex",
                         "computedpoint3world": "absolutePoint2", "computedangledeg": "angle"})


def _point3d(g: Raw) -> dict[str, Any]:
    return {"point": {"i": g.get("pointx"), "j": g.get("pointy"), "k": g.get("pointz")}}


def _cuboid(g: Raw) -> dict[str, Any]:
    return {"point1": _voxel(g["point1"]), "point2": _voxel(g["point2"])}


def _cuboid_extra(g: Raw) -> dict[str, Any]:
    return _computed(g, {"computedpoint1world": "absolutePoint1", "computedpoint2world": "absolutePoint2"})


def _ellipse(g: Raw) -> dict[str, Any]:
    return {"pointCenter": {"xNorm": g["xcenternorm"], "yNorm": g["ycenternorm"]}, "xRadiusNorm": g["xnorm"],
            "yRadiusNorm": g["ynorm"], "rotationRad": g["rot"]}


def _bbox(g: Raw) -> dict[str, Any]:
    return {"pointTopLeft": _norm(g), "wNorm": g["wnorm"], "hNorm": g["hnorm"]}


def _points(g: Any) -> dict[str, Any]:
    return {"points": [_norm(p) for p in g]}


def _nothing(g: Any) -> dict[str, Any]:
    return {}


class Kind:
    """How one kind of raw label becomes a series entry: ``geometry`` (before the shared properties) and
    ``extra`` (after them), and whether frame data and statistics apply."""

    def __init__(self, field: str, geometry: Callable[[Any], dict[str, Any]],
                 extra: Callable[[Any], dict[str, Any]] = _nothing, video: bool = False, stats: bool = False):
        self.field, self.geometry, self.extra, self.video, self.stats = field, geometry, extra, video, stats

    def entry(self, label: Raw, key: str, item_indices: Sequence[int]) -> dict[str, Any]:
        g = label[key]
        return {**self.geometry(g), **label_props(label), **self.extra(g),
                **(_video(label, item_indices) if self.video else {}), **(_stats(label) if self.stats else {})}


#: raw geometry key -> how it is exported; checked in this order (a label carries one of them)
KINDS: dict[str, Kind] = {
    "length3d": Kind("measurements", _length, _length_extra),
    "angle3d": Kind("measurements", _angle, _angle_extra),
    "point": Kind("landmarks", lambda g: {"point": _norm(g)}, video=True),
    "point3d": Kind("landmarks3d", _point3d),
    "polyline": Kind("polylines", _points, video=True),
    "ellipse": Kind("ellipses", _ellipse, video=True, stats=True),
    "bbox2d": Kind("boundingBoxes", _bbox, video=True, stats=True),
    "cuboid": Kind("cuboids", _cuboid, _cuboid_extra, stats=True),
    "polygon": Kind("polygons", _points, video=True, stats=True),
}


def task_classification(labels: Sequence[Raw]) -> dict[str, Any] | None:
    """The task's (study) classification, if one of the labels is it."""
    for label in labels:
        if label.get("tasklevelclassify") or label.get("studyclassify"):
            return {k: v for k, v in label_props(label).items() if k != "category"}
    return None


def series_fields(labels: Sequence[Raw], index: int, items: Sequence[str],
                  item_indices: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The labels of series ``index``: (segmentMap by instance id, other series fields such as
    ``measurements``, ``classifications`` or ``boundingBoxes``). ``items`` are the series' files and
    ``item_indices`` their positions among the task's items."""
    segment_map: dict[str, Any] = {}
    fields: dict[str, list[Any]] = {}
    for label in labels:
        if label.get("volumeindex", 0) != index or label.get("tasklevelclassify") or label.get("studyclassify"):
            continue
        dicom = label.get("dicom")
        if label.get("multiclassify") or label.get("seriesclassify"):
            entry = {k: v for k, v in label_props(label).items() if k != "category"}
            fields.setdefault("classifications", []).append({**entry, **_video(label, item_indices)})
        elif label.get("instanceclassify"):
            frame = label.get("frameindex")
            fields.setdefault("instanceClassifications", []).append({
                "fileIndex": frame, "fileName": items[frame] if isinstance(frame, int) and
                0 <= frame < len(items) else "", "values": attributes(label.get("attributes"))})
        elif isinstance(dicom, Mapping) and dicom.get("instanceid"):
            entry = label_props(label)
            if dicom.get("groupids"):
                entry["overlappingGroups"] = list(dicom["groupids"])
            segment_map[str(dicom["instanceid"])] = entry
        else:
            key = next((k for k in KINDS if label.get(k)), None)
            if key is not None:
                fields.setdefault(KINDS[key].field, []).append(KINDS[key].entry(label, key, item_indices))
    return segment_map, fields


def _series_record(labels: list[Any], info: Mapping[str, Any], index: int, items: list[Any],
                   segmentation: str | None) -> dict[str, Any]:
    """A series of a tasks.json task: name, items, headers, its label map (``segmentation``, a local path)
    with the segmentMap, then its other labels."""
    indices = list(info.get("itemsIndices") or [])
    series: dict[str, Any] = {"name": info.get("name") or "", "items": [items[i] for i in indices]}
    for key in ("metaData", "imageHeaders"):
        if info.get(key):
            series[key] = _json(info[key])
    segment_map, fields = series_fields(labels, index, series["items"], indices)
    if segmentation is not None:
        series.update(segmentations=segmentation, segmentMap=segment_map, binaryMask=False, semanticMask=False,
                      pngMask=False)
    elif segment_map:
        series["segmentMap"] = segment_map
    series.update(fields)
    return series


def _consensus(sub_task: Mapping[str, Any], series_info: list[Any], items: list[Any]) -> dict[str, Any]:
    """``consensus``, ``consensusScore`` and ``consensusTasks`` (each annotator's labels, without label map
    files) of a task in a consensus stage; empty for other tasks."""
    scored = sub_task.get("consensusInfo") or []
    annotators = scored if len(scored) > 1 else [sub_task, *(sub_task.get("subTasks") or [])]
    if len(annotators) < 2:
        return {}
    out: dict[str, Any] = {"consensus": True}
    score = sub_task.get("overallConsensusScore")
    if len(scored) > 1 and isinstance(score, (int, float)) and score >= 0:
        out["consensusScore"] = score * 100
    tasks = []
    for entry in annotators:
        data = entry.get("taskData") or {}
        labels = json.loads(data.get("labelsData") or "[]")
        user = (entry.get("user") or entry.get("assignedTo") or {}).get("email")
        task: dict[str, Any] = {"series": [
            {k: v for k, v in _series_record(labels, info, i, items, None).items()
             if k not in ("items", "metaData", "imageHeaders")} for i, info in enumerate(series_info)]}
        fields = {"status": entry.get("state"), "updatedBy": user, "updatedAt": data.get("createdAt"),
                  "labelsId": data.get("tdId"), "classification": task_classification(labels)}
        task.update({k: v for k, v in fields.items() if v not in (None, "")})
        if "scores" in entry:
            task["scores"] = [{"secondaryUser": (s.get("user") or {}).get("email"),
                               "score": (s.get("score") or 0) * 100} for s in entry.get("scores") or []]
        tasks.append(task)
    out["consensusTasks"] = tasks
    return out


def record_from_shard(shard: Mapping[str, Any], segmentations: Mapping[int, str]) -> dict[str, Any]:
    """A task record as a RedBrick export's tasks.json holds it, from the API's task object and the local
    paths of its downloaded label maps (by series index). Fields are emitted only when they have a value.

    In a consensus stage the series hold the task's current (final) labels, and ``consensusTasks`` each
    annotator's labels and scores (their segmentMaps, without label map files)."""
    datapoint = shard.get("datapoint") or {}
    latest = shard.get("latestTaskData") or {}
    labels = json.loads(latest.get("labelsData") or "[]")
    items = datapoint.get("items") or []
    info_list = datapoint.get("seriesInfo") or [{"itemsIndices": list(range(len(items)))}]
    record: dict[str, Any] = {"taskId": shard["taskId"], "name": datapoint.get("name") or "", "series": []}
    for index, info in enumerate(info_list):
        series = _series_record(labels, info, index, items, segmentations.get(index))
        for key, convert in _SERIES_EXTRAS.items():
            own = [convert(e) for e in datapoint.get(key) or [] if e.get("seriesIndex") == index]
            if own:
                series[key] = own
        record["series"].append(series)
    sub_task = shard.get("currentStageSubTask") or {}
    consensus = _consensus(sub_task, info_list, items)
    point_attrs = datapoint.get("attributes")
    fields = {
        "labelsId": latest.get("tdId"), "currentStageName": shard.get("currentStageName"),
        "status": None if consensus else sub_task.get("state"), "priority": shard.get("priority"),
        "createdBy": (datapoint.get("createdByEntity") or {}).get("email"), "createdAt": datapoint.get("createdAt"),
        "storageId": (datapoint.get("storageMethod") or {}).get("storageId"),
        "updatedBy": (latest.get("createdByEntity") or {}).get("email"), "updatedAt": latest.get("createdAt"),
        "metaData": _json(datapoint.get("metaData")),
        "classification": task_classification(labels),
        "datapointClassification": {"attributes": attributes(_json(point_attrs))} if point_attrs else None,
    }
    record.update({k: v for k, v in fields.items() if v not in (None, "", {}, [])})
    record.update(consensus)
    return record


def _json(value: Any) -> Any:
    """A field the API may send as JSON text or as a value."""
    return json.loads(value) if isinstance(value, str) else value


def _heat_map(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("name", "item", "preset", "dataRange", "opacityPoints", "opacityPoints3d",
                                  "rgbPoints") if k in ("name", "item") or entry.get(k)}


def _transform(entry: Mapping[str, Any]) -> dict[str, Any]:
    flat = list(entry.get("transform") or [])
    return {"transform": [flat[i:i + 4] for i in range(0, len(flat), 4)]}  # 4x4, row by row


#: datapoint fields listed per series index -> how one entry appears in its series
_SERIES_EXTRAS = {"heatMaps": _heat_map, "transforms": _transform}
