"""RedBrick API task objects and their raw labels -> tasks.json task records, as RedBrick's export writes them.

Each raw label is one kind, recognised by its geometry key; :data:`KINDS` maps that key to the series field it
lands in and to the function that builds the entry. Shared properties (``id``, ``category``, ``attributes``,
``group``, ``readOnly``), video frame data and intensity statistics are added the same way for every kind.
Where the API leaves a value out, the record leaves the field out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

from .rawlabels import Vocabulary

__all__ = ["KINDS", "image_headers", "record_from_shard", "series_infos", "series_of_map", "task_labels", "user_label"]

Raw = Mapping[str, Any]


def user_label(user: Any, users: Mapping[str, str] | None = None) -> str | None:
    """A user as RedBrick's SDK shows one: the e-mail, ``API Key - <name>`` for an API key, ``System`` for
    RedBrick itself. ``user`` is a user object or a user id; ``users`` maps ids to e-mails."""
    users = users or {}
    if isinstance(user, Mapping):
        user_id = user.get("userId")
        if not user_id:
            return None
        own = user.get("givenName") if str(user_id).startswith("API:") else user.get("email")
        return user_label(user_id, {str(user_id): own, **users} if own else users)
    if not user:
        return None
    user = str(user)
    if user.startswith("RB:"):
        return "System"
    if user.startswith("API:"):
        return f"API Key - {users.get(user) or user}"
    return users.get(user) or user


def _json(value: Any) -> Any:
    """A field the API sends as JSON text (or already as a value)."""
    return json.loads(value) if isinstance(value, str) else value


def image_headers(info: Raw) -> dict[str, Any] | None:
    """A series' ``imageHeaders`` as an export writes them: the 3x3 direction, and the affine (direction times
    spacing, then the origin); no geometry for web images and reports."""
    headers = _json(info.get("imageHeaders"))
    if not isinstance(headers, Mapping) or not headers:
        return None
    out: dict[str, Any] = {"dimensions": headers.get("dimensions")}
    if info.get("dataType") not in ("web", "report"):
        out["spacing"], out["origin"] = headers.get("spacing"), headers.get("origin")
        direction = headers.get("direction")
        if isinstance(direction, list):
            flat = [v for row in direction for v in (row if isinstance(row, list) else [row])]
            if len(flat) == 9:
                out["direction"] = [flat[0:3], flat[3:6], flat[6:9]]
    frames = headers.get("totalFrames")
    if isinstance(frames, int) and not isinstance(frames, bool) and frames > 1:
        out["totalFrames"] = frames
    try:
        import numpy as np

        if out.get("spacing") and out.get("origin") and out.get("direction"):
            affine = np.eye(4)
            affine[:3, :3] = np.array(out["direction"]) * np.array(out["spacing"])
            affine[:3, 3] = np.array(out["origin"])
            out["affine"] = affine.tolist()
    except (TypeError, ValueError):
        pass  # a malformed header gets no affine, as in RedBrick's export
    return out


# -- one raw label ------------------------------------------------------------------------------------------


def _category(value: Any) -> Any:
    """Taxonomy v2 gives a name; v1 a trail ``[["Object", "Liver"]]`` -> "Liver" (or the trail below the root)."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return value[0][1] if len(value[0]) == 2 else value[0][1:] if len(value[0]) > 2 else value
    return value


def _props(label: Raw, vocabulary: Vocabulary) -> dict[str, Any]:
    """``id``, ``category``, ``attributes``, ``group`` and ``readOnly``, each when set."""
    props: dict[str, Any] = {}
    if label.get("labelid"):
        props["id"] = label["labelid"]
    if label.get("category") is not None:
        props["category"] = _category(label["category"])
    attrs = vocabulary.values(label, label.get("attributes"))
    if attrs:
        props["attributes"] = attrs
    if label.get("linkid") is not None:
        props["group"] = label["linkid"]
    if label.get("readonly"):
        props["readOnly"] = label["readonly"]
    return props


def _is_index(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _video(label: Raw, sorted_indices: Sequence[int]) -> dict[str, Any]:
    """Frame data of a label drawn on one frame or slice (``video``), when it has one."""
    global_index = label.get("globalitemsindex")
    if not (_is_index(global_index) or _is_index(label.get("frameindex"))):
        return {}
    video: dict[str, Any] = {"trackId": label.get("trackid", ""), "keyFrame": label.get("keyframe", True),
             "endTrack": label.get("end", True)}
    if _is_index(global_index) and global_index in sorted_indices:
        video["seriesItemIndex"] = list(sorted_indices).index(global_index)
    for raw_key, key in (("seriesframeindex", "seriesFrameIndex"), ("frameindex", "frameIndex")):
        if label.get(raw_key) is not None:
            video[key] = label[raw_key]
    return {"video": video}


def _stats(label: Raw) -> dict[str, Any]:
    stats = label.get("stats")
    return {"stats": {k: v for k, v in stats.items() if v is not None}} if isinstance(stats, Mapping) else {}


def _voxel(point: Any) -> dict[str, Any]:
    return {"i": point[0], "j": point[1], "k": point[2]}


def _world(point: Any) -> dict[str, Any]:
    return {"x": point[0], "y": point[1], "z": point[2]}


def _norm(point: Raw) -> dict[str, Any]:
    return {"xNorm": point["xnorm"], "yNorm": point["ynorm"]}


def _computed(geometry: Raw, names: Mapping[str, str]) -> dict[str, Any]:
    """World points and values the viewer computed, under their output names, when set."""
    return {out: _world(geometry[raw]) if raw.endswith("world") else geometry[raw]
            for raw, out in names.items() if geometry.get(raw)}


Entry = Callable[[Raw, dict[str, Any]], dict[str, Any]]


def _length(g: Raw, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "length", "point1": _voxel(g["point1"]), "point2": _voxel(g["point2"]), "normal": g["normal"],
            **props, **_computed(g, {"computedpoint1world": "absolutePoint1", "computedpoint2world": "absolutePoint2",
                                     "computedlength": "length"})}


def _angle(g: Raw, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "angle", "point1": _voxel(g["point1"]), "vertex": _voxel(g["point2"]),
            "point2": _voxel(g["point3"]), "normal": g["normal"], **props,
            **_computed(g, {"computedpoint1world": "absolutePoint1", "computedpoint2world": "absoluteVertex",
                            "computedpoint3world": "absolutePoint2", "computedangledeg": "angle"})}


def _point3d(g: Raw, props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if all(g.get(k) is not None for k in ("pointx", "pointy", "pointz")):
        out["point"] = {"i": g["pointx"], "j": g["pointy"], "k": g["pointz"]}
    if g.get("computedpointworld") is not None:
        out["absolutePoint"] = _world(g["computedpointworld"])
    return {**out, **props}


def _cuboid(g: Raw, props: dict[str, Any]) -> dict[str, Any]:
    out = {key: _voxel(g[key]) for key in ("point1", "point2") if g.get(key)}
    return {**out, **_computed(g, {"computedpoint1world": "absolutePoint1", "computedpoint2world": "absolutePoint2"}),
            **props}


def _ellipse(g: Raw, props: dict[str, Any]) -> dict[str, Any]:
    return {"pointCenter": {"xNorm": g["xcenternorm"], "yNorm": g["ycenternorm"]}, "xRadiusNorm": g["xnorm"],
            "yRadiusNorm": g["ynorm"], "rotationRad": g["rot"], **props}


def _bbox(g: Raw, props: dict[str, Any]) -> dict[str, Any]:
    return {"pointTopLeft": _norm(g), "wNorm": g["wnorm"], "hNorm": g["hnorm"], **props}


def _points(g: Any, props: dict[str, Any]) -> dict[str, Any]:
    return {"points": [_norm(p) for p in g], **props}


class Kind:
    """How one kind of raw label becomes a series entry: its field, its geometry (with the shared properties),
    then frame data and statistics where the kind has them."""

    def __init__(self, field: str, entry: Entry, video: bool = False, stats: bool = False) -> None:
        self.field, self.build, self.video, self.stats = field, entry, video, stats

    def entry(self, label: Raw, key: str, props: dict[str, Any], sorted_indices: Sequence[int]) -> dict[str, Any]:
        return {**self.build(label[key], props), **(_video(label, sorted_indices) if self.video else {}),
                **(_stats(label) if self.stats else {})}


#: raw geometry key -> how it is exported; checked in this order (a label carries one of them)
KINDS: dict[str, Kind] = {
    "length3d": Kind("measurements", _length),
    "angle3d": Kind("measurements", _angle),
    "point": Kind("landmarks", lambda g, props: {"point": _norm(g), **props}, video=True),
    "point3d": Kind("landmarks3d", _point3d),
    "polyline": Kind("polylines", _points, video=True),
    "ellipse": Kind("ellipses", _ellipse, video=True, stats=True),
    "bbox2d": Kind("boundingBoxes", _bbox, video=True, stats=True),
    "cuboid": Kind("cuboids", _cuboid, stats=True),
    "polygon": Kind("polygons", _points, video=True, stats=True),
}


# -- a task's labels into its series ------------------------------------------------------------------------


class _Series:
    """The series of one task version while its labels are sorted into them."""

    def __init__(self, series: list[dict[str, Any]], infos: Sequence[Raw], vocabulary: Vocabulary) -> None:
        self.series, self.vocabulary = series, vocabulary
        self.sorted = [sorted(i.get("itemsIndices") or []) for i in infos]
        self.view = [s.pop("_view", []) for s in series]  # items in viewing order, for per-slice labels
        self.classification: dict[str, Any] | None = None

    def add(self, label: Raw) -> None:
        index = label.get("volumeindex", 0)
        if not _is_index(index) or index >= len(self.series):
            index = 0
        volume = self.series[index]
        props = _props(label, self.vocabulary)
        video = _video(label, self.sorted[index])
        dicom = label.get("dicom")
        if label.get("tasklevelclassify") or label.get("studyclassify"):
            if "id" not in props or len(props) > 1:
                self.classification = props
        elif label.get("multiclassify") or label.get("seriesclassify"):
            if "id" not in props or len(props) > 1 or video:
                volume.setdefault("classifications", []).append({**props, **video})
        elif label.get("instanceclassify"):
            frame, view = label.get("frameindex"), self.view[index]
            volume.setdefault("instanceClassifications", []).append({
                "fileIndex": frame, "fileName": view[frame] if isinstance(frame, int) and 0 <= frame < len(view)
                else "", "values": props.get("attributes", {})})
        elif isinstance(dicom, Mapping) and dicom.get("instanceid"):
            own = label.get("volumeindex")
            targets = [own] if _is_index(own) and own < len(self.series) else range(len(self.series))
            for target in targets:
                self._segment(self.series[target], dicom, props)
        else:
            key = next((k for k in KINDS if label.get(k)), None)
            if key is not None:
                volume.setdefault(KINDS[key].field, []).append(
                    KINDS[key].entry(label, key, props, self.sorted[index]))

    @staticmethod
    def _segment(volume: dict[str, Any], dicom: Raw, props: dict[str, Any]) -> None:
        volume.setdefault("segmentMap", {})
        for flag in ("binaryMask", "semanticMask", "pngMask"):
            volume[flag] = volume.get(flag, False) or False
        entry = dict(props)
        if "segmentations" in volume:
            entry["mask"] = volume["segmentations"]
        if dicom.get("groupids"):
            entry["overlappingGroups"] = dicom["groupids"]
        volume["segmentMap"][str(dicom["instanceid"])] = entry


def _clean(labels: Sequence[Any]) -> list[Any]:
    """Inline labels as RedBrick's export reads them: keys whose value is null are dropped."""
    return [{k: v for k, v in label.items() if v is not None} if isinstance(label, Mapping) else label
            for label in labels]


def _heat_map(entry: Raw) -> dict[str, Any]:
    return {k: entry[k] for k in ("name", "item", "preset", "dataRange", "opacityPoints", "opacityPoints3d",
                                  "rgbPoints") if k in ("name", "item") or entry.get(k)}


def _transform(entry: Raw) -> dict[str, Any]:
    flat = list(entry.get("transform") or [])
    return {"transform": [flat[i:i + 4] for i in range(0, len(flat), 4)]}  # 4x4, row by row


def _centerline(entry: Raw) -> dict[str, Any]:
    return {"name": entry.get("name"), "centerline": _json(entry.get("centerline"))}


#: datapoint fields listed per series index -> how one entry appears in its series
_SERIES_EXTRAS = {"heatMaps": _heat_map, "transforms": _transform, "centerline": _centerline}


def _series(datapoint: Raw, infos: Sequence[Raw]) -> list[dict[str, Any]]:
    """The series of a task before labels: name, metadata, headers, items (in item order) and the datapoint's
    per-series heat maps, transforms and centerlines."""
    items = datapoint.get("items") or []
    out = []
    for index, info in enumerate(infos):
        series: dict[str, Any] = {}
        if info.get("name"):
            series["name"] = info["name"]
        if isinstance(info.get("metaData"), str):
            series["metaData"] = json.loads(info["metaData"])
        headers = image_headers(info)
        if headers:
            series["imageHeaders"] = headers
        if "itemsIndices" in info:
            indices = info.get("itemsIndices") or []
            series["items"] = [items[i] for i in sorted(indices)]
            series["_view"] = [items[i] for i in indices]
        for key, convert in _SERIES_EXTRAS.items():
            own = [convert(e) for e in datapoint.get(key) or [] if e.get("seriesIndex") == index]
            if own:
                series[key] = own
        out.append(series)
    return out


def series_infos(datapoint: Raw) -> list[dict[str, Any]]:
    """``seriesInfo``, with every item in the first series when the split of items into series is unknown."""
    items = datapoint.get("items") or []
    infos = [dict(i) for i in datapoint.get("seriesInfo") or [{}]]
    if items and any(not i.get("itemsIndices") for i in infos):
        infos[0]["itemsIndices"] = list(range(len(items)))
        for info in infos[1:]:
            info["itemsIndices"] = []
    return infos


def _label_series(labels: Sequence[Any], datapoint: Raw, infos: Sequence[Raw], maps: Mapping[int, str],
                  vocabulary: Vocabulary) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(series, task classification) of one task version: its label map files (local paths by series index)
    and its labels."""
    series = _series(datapoint, infos)
    for index, path in sorted(maps.items()):
        if 0 <= index < len(series):
            series[index].update(segmentations=path, segmentMap={}, binaryMask=False, semanticMask=False,
                                 pngMask=False)
    sorter = _Series(series, infos, vocabulary)
    for label in labels:
        if isinstance(label, Mapping):
            sorter.add(label)
    return series, sorter.classification


def series_of_map(entry: Raw, infos: Sequence[Raw], position: int) -> int:
    """The series a ``labelsMap`` entry belongs to: its ``seriesIndex``, else the series holding its
    ``imageIndex``, else its position in the list."""
    if entry.get("seriesIndex") is not None:
        return int(entry["seriesIndex"])
    if entry.get("imageIndex") is not None:
        for index, info in enumerate(infos):
            if entry["imageIndex"] in (info.get("itemsIndices") or []):
                return index
    return position


def task_labels(data: Raw, fetched: Mapping[str, list[Any]], vocabulary: Vocabulary) -> list[Any]:
    """The raw labels of a task version: the file behind ``labelsDataPath`` (``fetched`` by that path),
    named through the taxonomy, else ``labelsData``."""
    path = data.get("labelsDataPath")
    if path:
        return vocabulary.resolve(fetched[path])
    return _clean(json.loads(data.get("labelsData") or "[]"))


def _consensus(sub_task: Raw, datapoint: Raw, infos: Sequence[Raw], fetched: Mapping[str, list[Any]],
               vocabulary: Vocabulary) -> dict[str, Any]:
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
        series, classification = _label_series(task_labels(data, fetched, vocabulary), datapoint, infos, {},
                                               vocabulary)
        task: dict[str, Any] = {"series": [{k: v for k, v in s.items() if k not in ("items", "metaData",
                                                                                     "imageHeaders")}
                                           for s in series]}
        fields = {"status": entry.get("state"),
                  "updatedBy": (entry.get("user") or entry.get("assignedTo") or {}).get("email"),
                  "updatedAt": data.get("createdAt"), "labelsId": data.get("tdId"), "classification": classification}
        task.update({k: v for k, v in fields.items() if v not in (None, "")})
        if "scores" in entry:
            task["scores"] = [{"secondaryUser": (s.get("user") or {}).get("email"),
                               "score": (s.get("score") or 0) * 100} for s in entry.get("scores") or []]
        tasks.append(task)
    out["consensusTasks"] = tasks
    return out


def record_from_shard(shard: Raw, segmentations: Mapping[int, str], fetched: Mapping[str, list[Any]],
                      vocabulary: Vocabulary) -> dict[str, Any]:
    """A task record as a RedBrick export's tasks.json holds it, from the API's task object, the local paths of
    its downloaded label maps (by series index) and the downloaded labels files (by ``labelsDataPath``).

    In a consensus stage the series hold the task's current (final) labels, and ``consensusTasks`` each
    annotator's labels and scores (their segmentMaps, without label map files)."""
    datapoint = shard.get("datapoint") or {}
    latest = shard.get("latestTaskData") or {}
    infos = series_infos(datapoint)
    series, classification = _label_series(task_labels(latest, fetched, vocabulary), datapoint, infos,
                                           segmentations, vocabulary)
    items = datapoint.get("items") or []
    record: dict[str, Any] = {"taskId": shard["taskId"], "name": datapoint.get("name") or (items[0] if items else ""),
                              "series": series}
    sub_task = shard.get("currentStageSubTask") or {}
    consensus = _consensus(sub_task, datapoint, infos, fetched, vocabulary)
    point_attrs = _json(datapoint.get("attributes"))
    fields = {
        "labelsId": latest.get("tdId"), "currentStageName": shard.get("currentStageName"),
        "status": None if consensus else sub_task.get("state"), "priority": shard.get("priority"),
        "createdBy": (datapoint.get("createdByEntity") or {}).get("email"), "createdAt": datapoint.get("createdAt"),
        "storageId": (datapoint.get("storageMethod") or {}).get("storageId"),
        "updatedBy": user_label(latest.get("createdByEntity")), "updatedAt": latest.get("createdAt"),
        "metaData": _json(datapoint.get("metaData")),
        "datapointClassification": {"attributes": vocabulary.values({}, point_attrs)}
        if point_attrs else None,
        "classification": classification,
    }
    record.update({k: v for k, v in fields.items() if v is not None and (k == "priority" or v not in ("", {}, []))})
    record.update(consensus)
    return record
