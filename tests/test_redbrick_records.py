"""RedBrick's raw task objects -> tasks.json records: every label kind, frame data, statistics, heat maps,
transforms, datapoint classification and consensus, compared with the shapes RedBrick's export writes."""

from __future__ import annotations

import json
from typing import Any

from labelport.sources.redbrick import record_from_shard

ITEMS = ["a/0.dcm", "a/1.dcm", "a/2.dcm", "b/0.dcm"]


def _shard(labels: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "taskId": "t1", "currentStageName": "Label", "priority": None,
        "currentStageSubTask": extra.pop("sub_task", {"state": "IN_PROGRESS"}),
        "datapoint": {"name": "case", "items": ITEMS, "createdAt": "2025-01-01", "metaData": '{"site": "x"}',
                      "createdByEntity": {"email": "up@example.com"}, "storageMethod": {"storageId": "s1"},
                      "seriesInfo": [{"name": "A", "itemsIndices": [0, 1, 2]}, {"name": "B", "itemsIndices": [3]}],
                      **extra},
        "latestTaskData": {"tdId": "td1", "createdAt": "2025-01-02", "createdByEntity": {"email": "an@example.com"},
                           "labelsData": json.dumps(labels)},
    }


def test_every_label_kind() -> None:
    labels = [
        {"labelid": "c", "studyclassify": True, "attributes": [{"name": "Quality", "value": "TRUE"}]},
        {"labelid": "s", "seriesclassify": True, "volumeindex": 1, "attributes": [{"name": "Phase", "value": "art"}]},
        {"labelid": "ic", "instanceclassify": True, "frameindex": 2, "attributes": [{"name": "Blur", "value": True}]},
        {"labelid": "seg", "category": [["Object", "Liver"]], "dicom": {"instanceid": 1, "groupids": [3]},
         "linkid": "g1", "readonly": True},
        {"labelid": "len", "category": "D", "length3d": {
            "point1": [1, 2, 3], "point2": [4, 5, 6], "normal": [0, 0, 1], "computedpoint1world": [1.5, 2.5, 3.5],
            "computedpoint2world": [4.5, 5.5, 6.5], "computedlength": 5.2}},
        {"labelid": "ang", "category": "A", "angle3d": {
            "point1": [0, 0, 0], "point2": [1, 0, 0], "point3": [1, 1, 0], "normal": [0, 0, 1],
            "computedangledeg": 90.0}},
        {"labelid": "p2", "category": "P", "point": {"xnorm": 0.1, "ynorm": 0.2}, "frameindex": 1,
         "globalitemsindex": 1, "trackid": "tr", "keyframe": False},
        {"labelid": "p3", "category": "L", "point3d": {"pointx": 7, "pointy": 8, "pointz": 9}},
        {"labelid": "pl", "category": "Line", "polyline": [{"xnorm": 0, "ynorm": 0}, {"xnorm": 1, "ynorm": 1}]},
        {"labelid": "el", "category": "E", "ellipse": {"xcenternorm": 0.5, "ycenternorm": 0.4, "xnorm": 0.1,
                                                       "ynorm": 0.2, "rot": 0.3},
         "stats": {"average": 10.0, "minimum": None, "area": 3.0}},
        {"labelid": "bb", "category": "Box", "bbox2d": {"xnorm": 0.1, "ynorm": 0.2, "wnorm": 0.3, "hnorm": 0.4},
         "frameindex": 0, "globalitemsindex": 3, "volumeindex": 1},
        {"labelid": "cu", "category": "Cube", "cuboid": {"point1": [1, 1, 1], "point2": [2, 2, 2],
                                                         "computedpoint1world": [0.5, 0.5, 0.5]}},
        {"labelid": "pg", "category": "Poly", "polygon": [{"xnorm": 0.1, "ynorm": 0.1}, {"xnorm": 0.2, "ynorm": 0.1},
                                                          {"xnorm": 0.2, "ynorm": 0.3}]},
    ]
    shard = _shard(labels, attributes='[{"name": "Reviewed", "value": "false"}]',
                   heatMaps=[{"seriesIndex": 0, "name": "h", "item": "h.nii.gz", "preset": None}],
                   transforms=[{"seriesIndex": 1, "transform": list(range(16))}])
    record = record_from_shard(shard, {0: "/cache/0.nii.gz"})
    a, b = record["series"]
    assert record["classification"] == {"id": "c", "attributes": {"Quality": True}}
    assert record["datapointClassification"] == {"attributes": {"Reviewed": False}}
    assert record["metaData"] == {"site": "x"} and record["status"] == "IN_PROGRESS"
    assert a["segmentations"] == "/cache/0.nii.gz" and a["items"] == ITEMS[:3] and b["items"] == ITEMS[3:]
    assert a["segmentMap"] == {"1": {"id": "seg", "category": "Liver", "group": "g1", "readOnly": True,
                                     "overlappingGroups": [3]}}
    assert a["instanceClassifications"] == [{"fileIndex": 2, "fileName": "a/2.dcm", "values": {"Blur": True}}]
    assert a["measurements"] == [
        {"type": "length", "point1": {"i": 1, "j": 2, "k": 3}, "point2": {"i": 4, "j": 5, "k": 6},
         "normal": [0, 0, 1], "id": "len", "category": "D", "absolutePoint1": {"x": 1.5, "y": 2.5, "z": 3.5},
         "absolutePoint2": {"x": 4.5, "y": 5.5, "z": 6.5}, "length": 5.2},
        {"type": "angle", "point1": {"i": 0, "j": 0, "k": 0}, "vertex": {"i": 1, "j": 0, "k": 0},
         "point2": {"i": 1, "j": 1, "k": 0}, "normal": [0, 0, 1], "id": "ang", "category": "A", "angle": 90.0}]
    assert a["landmarks"] == [{"point": {"xNorm": 0.1, "yNorm": 0.2}, "id": "p2", "category": "P", "video": {
        "trackId": "tr", "keyFrame": False, "endTrack": True, "seriesItemIndex": 1, "seriesFrameIndex": None,
        "frameIndex": 1}}]
    assert a["landmarks3d"] == [{"point": {"i": 7, "j": 8, "k": 9}, "id": "p3", "category": "L"}]
    assert a["polylines"] == [{"points": [{"xNorm": 0, "yNorm": 0}, {"xNorm": 1, "yNorm": 1}], "id": "pl",
                               "category": "Line"}]
    assert a["ellipses"] == [{"pointCenter": {"xNorm": 0.5, "yNorm": 0.4}, "xRadiusNorm": 0.1, "yRadiusNorm": 0.2,
                              "rotationRad": 0.3, "id": "el", "category": "E",
                              "stats": {"average": 10.0, "area": 3.0}}]
    assert a["cuboids"] == [{"point1": {"i": 1, "j": 1, "k": 1}, "point2": {"i": 2, "j": 2, "k": 2}, "id": "cu",
                             "category": "Cube", "absolutePoint1": {"x": 0.5, "y": 0.5, "z": 0.5}}]
    assert a["polygons"][0]["points"][2] == {"xNorm": 0.2, "yNorm": 0.3}
    assert a["heatMaps"] == [{"name": "h", "item": "h.nii.gz"}]
    assert b["classifications"] == [{"id": "s", "attributes": {"Phase": "art"}}]
    assert b["boundingBoxes"] == [{"pointTopLeft": {"xNorm": 0.1, "yNorm": 0.2}, "wNorm": 0.3, "hNorm": 0.4,
                                   "id": "bb", "category": "Box", "video": {
                                       "trackId": "", "keyFrame": True, "endTrack": True, "seriesItemIndex": 0,
                                       "seriesFrameIndex": None, "frameIndex": 0}}]
    assert b["transforms"] == [{"transform": [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]}]
    assert "segmentations" not in b and "segmentMap" not in b


def test_consensus() -> None:
    final = [{"labelid": "f", "category": "Liver", "dicom": {"instanceid": 1}}]
    first = [{"labelid": "x", "category": "Liver", "dicom": {"instanceid": 1}},
             {"labelid": "k", "category": "Kidney", "dicom": {"instanceid": 2}}]
    second = [{"labelid": "y", "category": "Liver", "dicom": {"instanceid": 1}}]
    sub_task = {"state": "COMPLETED", "overallConsensusScore": 0.87, "consensusInfo": [
        {"user": {"email": "one@example.com"}, "taskData": {"tdId": "td-1", "labelsData": json.dumps(first)},
         "scores": [{"user": {"email": "two@example.com"}, "score": 0.87}]},
        {"user": {"email": "two@example.com"}, "taskData": {"tdId": "td-2", "labelsData": json.dumps(second),
                                                            "createdAt": "2025-01-03"},
         "scores": [{"user": {"email": "one@example.com"}, "score": 0.87}]}]}
    record = record_from_shard(_shard(final, sub_task=sub_task), {0: "/cache/0.nii.gz"})
    assert record["consensus"] is True and record["consensusScore"] == 87.0 and "status" not in record
    assert record["series"][0]["segmentMap"] == {"1": {"id": "f", "category": "Liver"}}
    one, two = record["consensusTasks"]
    assert one == {"series": [{"name": "A", "segmentMap": {"1": {"id": "x", "category": "Liver"},
                                                           "2": {"id": "k", "category": "Kidney"}}},
                              {"name": "B"}],
                   "updatedBy": "one@example.com", "labelsId": "td-1",
                   "scores": [{"secondaryUser": "two@example.com", "score": 87.0}]}
    assert two["updatedAt"] == "2025-01-03" and two["series"][0]["segmentMap"]["1"]["id"] == "y"
    plain = record_from_shard(_shard(final), {})
    assert "consensus" not in plain and plain["status"] == "IN_PROGRESS"
