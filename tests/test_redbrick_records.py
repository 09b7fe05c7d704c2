"""RedBrick's raw task objects -> tasks.json records: every label kind, labels stored by id and named through
the taxonomy, frame data, statistics, image headers, heat maps, transforms, centerlines, datapoint
classification and consensus, compared with the shapes RedBrick's export writes (REDBRICK_API.md 4.2-4.5).
test_redbrick_sdk.py compares the same conversion with RedBrick's SDK itself."""

from __future__ import annotations

import json
from typing import Any

from labelport.sources.rawlabels import Vocabulary
from labelport.sources.shards import image_headers, record_from_shard, user_label

ITEMS = ["a/0.dcm", "a/1.dcm", "a/2.dcm", "b/0.dcm"]
TAXONOMY = {
    "isNew": True,
    "objectTypes": [{"category": "Liver", "classId": 0, "attributes": [
        {"name": "Side", "attrType": "SELECT", "attrId": 1, "options": [{"name": "L", "optionId": 0},
                                                                        {"name": "R", "optionId": 1}]},
        {"name": "Findings", "attrType": "MULTISELECT", "attrId": 2,
         "options": [{"name": "cyst", "optionId": 0}, {"name": "scar", "optionId": 1}]},
        {"name": "Note", "attrType": "TEXT", "attrId": 3},
        {"name": "Sure", "attrType": "BOOL", "attrId": 4}]}],
    "studyClassify": [{"name": "Quality", "attrType": "SELECT", "attrId": 9,
                       "options": [{"name": "Good", "optionId": 5}]}],
}
VOCABULARY = Vocabulary(TAXONOMY)


def _shard(labels: list[dict[str, Any]] | None = None, path: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "taskId": "t1", "currentStageName": "Label", "priority": None,
        "currentStageSubTask": extra.pop("sub_task", {"state": "IN_PROGRESS"}),
        "datapoint": {"name": "case", "items": ITEMS, "createdAt": "2025-01-01", "metaData": '{"site": "x"}',
                      "createdByEntity": {"userId": "u1", "email": "up@example.com"},
                      "storageMethod": {"storageId": "s1"},
                      "seriesInfo": [{"name": "A", "itemsIndices": [2, 0, 1], "metaData": '{"m": 1}',
                                      "imageHeaders": '{"dimensions": [4, 4, 3], "spacing": [1, 2, 3], '
                                                      '"origin": [5, 6, 7], "direction": [0, 1, 0, 1, 0, 0, 0, 0, 1]}'},
                                     {"name": "B", "itemsIndices": [3], "dataType": "web",
                                      "imageHeaders": {"dimensions": [4, 4, 1], "spacing": [1, 1, 1],
                                                       "origin": [0, 0, 0], "totalFrames": 2}}],
                      **extra},
        "latestTaskData": {"tdId": "td1", "createdAt": "2025-01-02",
                           "createdByEntity": {"userId": "API:k", "givenName": "bot"},
                           "labelsData": None if path else json.dumps(labels), "labelsDataPath": path},
    }


def test_every_label_kind() -> None:
    labels = [
        {"labelid": "c", "studyclassify": True, "attributes": [{"name": "Quality", "value": "TRUE"}]},
        {"labelid": "s", "seriesclassify": True, "volumeindex": 1, "attributes": [{"name": "Phase", "value": "art"}]},
        {"labelid": "empty", "seriesclassify": True, "volumeindex": 1, "attributes": []},
        {"labelid": "ic", "instanceclassify": True, "frameindex": 0, "attributes": [{"name": "Blur", "value": True}]},
        {"labelid": "seg", "category": [["Object", "Liver"]], "dicom": {"instanceid": 1, "groupids": [3]},
         "linkid": "g1", "readonly": True, "volumeindex": 0, "trackid": None},
        {"labelid": "len", "category": "D", "length3d": {
            "point1": [1, 2, 3], "point2": [4, 5, 6], "normal": [0, 0, 1], "computedpoint1world": [1.5, 2.5, 3.5],
            "computedpoint2world": [4.5, 5.5, 6.5], "computedlength": 5.2}},
        {"labelid": "ang", "category": "A", "angle3d": {
            "point1": [0, 0, 0], "point2": [1, 0, 0], "point3": [1, 1, 0], "normal": [0, 0, 1],
            "computedangledeg": 90.0}},
        {"labelid": "p2", "category": "P", "point": {"xnorm": 0.1, "ynorm": 0.2}, "frameindex": 1,
         "globalitemsindex": 1, "trackid": "tr", "keyframe": False},
        {"labelid": "p3", "category": "L", "point3d": {"pointx": 7, "pointy": 8, "pointz": 9,
                                                       "computedpointworld": [1.0, 2.0, 3.0]}},
        {"labelid": "pl", "category": "Line", "polyline": [{"xnorm": 0, "ynorm": 0}, {"xnorm": 1, "ynorm": 1}]},
        {"labelid": "el", "category": "E", "ellipse": {"xcenternorm": 0.5, "ycenternorm": 0.4, "xnorm": 0.1,
                                                       "ynorm": 0.2, "rot": 0.3},
         "stats": {"average": 10.0, "minimum": None, "area": 3.0}},
        {"labelid": "bb", "category": "Box", "bbox2d": {"xnorm": 0.1, "ynorm": 0.2, "wnorm": 0.3, "hnorm": 0.4},
         "frameindex": 0, "globalitemsindex": 3, "seriesframeindex": 4, "volumeindex": 1},
        {"labelid": "cu", "category": "Cube", "cuboid": {"point1": [1, 1, 1], "point2": [2, 2, 2],
                                                         "computedpoint1world": [0.5, 0.5, 0.5]}},
        {"labelid": "pg", "category": "Poly", "polygon": [{"xnorm": 0.1, "ynorm": 0.1}, {"xnorm": 0.2, "ynorm": 0.1},
                                                          {"xnorm": 0.2, "ynorm": 0.3}]},
    ]
    shard = _shard(labels, attributes='[{"name": "Reviewed", "value": "false"}]',
                   heatMaps=[{"seriesIndex": 0, "name": "h", "item": "h.nii.gz", "preset": None}],
                   transforms=[{"seriesIndex": 1, "transform": list(range(16))}],
                   centerline=[{"seriesIndex": 0, "name": "c", "centerline": '{"p": [1]}'}])
    record = record_from_shard(shard, {0: "/cache/0.nii.gz"}, {}, VOCABULARY)
    a, b = record["series"]
    assert record["classification"] == {"id": "c", "attributes": {"Quality": "TRUE"}}  # SELECT: kept as is
    assert record["datapointClassification"] == {"attributes": {"Reviewed": False}}
    assert record["metaData"] == {"site": "x"} and record["status"] == "IN_PROGRESS"
    assert record["updatedBy"] == "API Key - bot" and record["createdBy"] == "up@example.com"
    assert a["items"] == ITEMS[:3] and b["items"] == ITEMS[3:]  # in item order
    assert a["metaData"] == {"m": 1} and "metaData" not in b
    assert a["segmentations"] == "/cache/0.nii.gz"
    assert a["segmentMap"] == {"1": {"id": "seg", "category": "Liver", "group": "g1", "readOnly": True,
                                     "mask": "/cache/0.nii.gz", "overlappingGroups": [3]}}
    # per-slice labels count in viewing order (items 2, 0, 1)
    assert a["instanceClassifications"] == [{"fileIndex": 0, "fileName": "a/2.dcm", "values": {"Blur": True}}]
    assert a["measurements"] == [
        {"type": "length", "point1": {"i": 1, "j": 2, "k": 3}, "point2": {"i": 4, "j": 5, "k": 6},
         "normal": [0, 0, 1], "id": "len", "category": "D", "absolutePoint1": {"x": 1.5, "y": 2.5, "z": 3.5},
         "absolutePoint2": {"x": 4.5, "y": 5.5, "z": 6.5}, "length": 5.2},
        {"type": "angle", "point1": {"i": 0, "j": 0, "k": 0}, "vertex": {"i": 1, "j": 0, "k": 0},
         "point2": {"i": 1, "j": 1, "k": 0}, "normal": [0, 0, 1], "id": "ang", "category": "A", "angle": 90.0}]
    assert a["landmarks"] == [{"point": {"xNorm": 0.1, "yNorm": 0.2}, "id": "p2", "category": "P", "video": {
        "trackId": "tr", "keyFrame": False, "endTrack": True, "seriesItemIndex": 1, "frameIndex": 1}}]
    assert a["landmarks3d"] == [{"point": {"i": 7, "j": 8, "k": 9}, "absolutePoint": {"x": 1.0, "y": 2.0, "z": 3.0},
                                 "id": "p3", "category": "L"}]
    assert a["polylines"] == [{"points": [{"xNorm": 0, "yNorm": 0}, {"xNorm": 1, "yNorm": 1}], "id": "pl",
                               "category": "Line"}]
    assert a["ellipses"] == [{"pointCenter": {"xNorm": 0.5, "yNorm": 0.4}, "xRadiusNorm": 0.1, "yRadiusNorm": 0.2,
                              "rotationRad": 0.3, "id": "el", "category": "E",
                              "stats": {"average": 10.0, "area": 3.0}}]
    assert a["cuboids"] == [{"point1": {"i": 1, "j": 1, "k": 1}, "point2": {"i": 2, "j": 2, "k": 2},
                             "absolutePoint1": {"x": 0.5, "y": 0.5, "z": 0.5}, "id": "cu", "category": "Cube"}]
    assert a["polygons"][0]["points"][2] == {"xNorm": 0.2, "yNorm": 0.3}
    assert a["heatMaps"] == [{"name": "h", "item": "h.nii.gz"}]
    assert a["centerline"] == [{"name": "c", "centerline": {"p": [1]}}]
    assert b["classifications"] == [{"id": "s", "attributes": {"Phase": "art"}}]  # "empty" has only an id
    assert b["boundingBoxes"] == [{"pointTopLeft": {"xNorm": 0.1, "yNorm": 0.2}, "wNorm": 0.3, "hNorm": 0.4,
                                   "id": "bb", "category": "Box", "video": {
                                       "trackId": "", "keyFrame": True, "endTrack": True, "seriesItemIndex": 0,
                                       "seriesFrameIndex": 4, "frameIndex": 0}}]
    assert b["transforms"] == [{"transform": [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]}]
    assert "segmentations" not in b and "segmentMap" not in b


def test_image_headers_as_an_export_writes_them() -> None:
    headers = image_headers({"imageHeaders": {"dimensions": [4, 4, 3], "spacing": [1, 2, 3], "origin": [5, 6, 7],
                                              "direction": [0, 1, 0, 1, 0, 0, 0, 0, 1]}})
    assert headers == {"dimensions": [4, 4, 3], "spacing": [1, 2, 3], "origin": [5, 6, 7],
                       "direction": [[0, 1, 0], [1, 0, 0], [0, 0, 1]],
                       "affine": [[0.0, 2.0, 0.0, 5.0], [1.0, 0.0, 0.0, 6.0], [0.0, 0.0, 3.0, 7.0],
                                  [0.0, 0.0, 0.0, 1.0]]}
    # web images and reports have no geometry; a video counts its frames
    assert image_headers({"dataType": "web", "imageHeaders": '{"dimensions": [2, 2, 1], "spacing": [1, 1, 1], '
                                                             '"totalFrames": 3}'}) == {"dimensions": [2, 2, 1],
                                                                                       "totalFrames": 3}
    assert image_headers({"imageHeaders": None}) is None


def test_labels_stored_by_id_are_named_through_the_taxonomy() -> None:
    stored = [
        {"labelid": "seg", "classid": 0, "dicom": {"instanceid": 1}, "volumeindex": 0, "attributes": [
            {"attrid": 1, "optionid": 1}, {"attrid": 2, "optionid": [1, 0]}, {"attrid": 3, "value": "true"},
            {"attrid": 4, "value": "false"}, {"attrid": 99, "name": "Legacy", "value": "x"}]},
        {"labelid": "c", "studyclassify": True, "attributes": [{"attrid": 9, "optionid": 5}]},
    ]
    record = record_from_shard(_shard(path="labels/td1.json"), {0: "/m.nii.gz"}, {"labels/td1.json": stored},
                               VOCABULARY)
    assert record["series"][0]["segmentMap"]["1"] == {
        "id": "seg", "category": "Liver", "mask": "/m.nii.gz",
        # a TEXT attribute keeps the text "true"; a BOOL's "false" is a boolean
        "attributes": {"Side": "R", "Findings": ["scar", "cyst"], "Note": "true", "Sure": False, "Legacy": "x"}}
    assert record["classification"] == {"id": "c", "attributes": {"Quality": "Good"}}
    # the same labels inline, by name, give the same record
    named = [{"labelid": "seg", "category": "Liver", "dicom": {"instanceid": 1}, "volumeindex": 0, "attributes": [
        {"name": "Side", "value": "R"}, {"name": "Findings", "value": ["scar", "cyst"]},
        {"name": "Note", "value": "true"}, {"name": "Sure", "value": "false"}, {"name": "Legacy", "value": "x"}]},
        {"labelid": "c", "studyclassify": True, "attributes": [{"name": "Quality", "value": "Good"}]}]
    assert record_from_shard(_shard(named), {0: "/m.nii.gz"}, {}, VOCABULARY) == record


def test_users() -> None:
    users = {"u1": "one@example.com"}
    assert [user_label(u, users) for u in ("u1", "API:k", "RB:sys", "u9", None)] == [
        "one@example.com", "API Key - API:k", "System", "u9", None]
    assert user_label({"userId": "API:k", "givenName": "bot", "email": None}, users) == "API Key - bot"
    assert user_label({"userId": "u2", "email": "two@example.com"}, users) == "two@example.com"
    assert user_label({"email": "x@example.com"}, users) is None  # no user id: not a user


def test_consensus() -> None:
    final = [{"labelid": "f", "category": "Liver", "dicom": {"instanceid": 1}, "volumeindex": 0}]
    first = [{"labelid": "x", "category": "Liver", "dicom": {"instanceid": 1}, "volumeindex": 0},
             {"labelid": "k", "category": "Kidney", "dicom": {"instanceid": 2}, "volumeindex": 0}]
    second = [{"labelid": "y", "classid": 0, "dicom": {"instanceid": 1}}]  # no series: in every series
    sub_task = {"state": "COMPLETED", "overallConsensusScore": 0.87, "consensusInfo": [
        {"user": {"email": "one@example.com"}, "taskData": {"tdId": "td-1", "labelsData": json.dumps(first)},
         "scores": [{"user": {"email": "two@example.com"}, "score": 0.87}]},
        {"user": {"email": "two@example.com"}, "taskData": {"tdId": "td-2", "labelsDataPath": "l/td-2.json",
                                                            "createdAt": "2025-01-03"},
         "scores": [{"user": {"email": "one@example.com"}, "score": 0.87}]}]}
    record = record_from_shard(_shard(final, sub_task=sub_task), {0: "/cache/0.nii.gz"}, {"l/td-2.json": second},
                               VOCABULARY)
    assert record["consensus"] is True and record["consensusScore"] == 87.0 and "status" not in record
    assert record["series"][0]["segmentMap"] == {"1": {"id": "f", "category": "Liver", "mask": "/cache/0.nii.gz"}}
    one, two = record["consensusTasks"]
    assert one == {"series": [{"name": "A", "segmentMap": {"1": {"id": "x", "category": "Liver"},
                                                           "2": {"id": "k", "category": "Kidney"}},
                               "binaryMask": False, "semanticMask": False, "pngMask": False},
                              {"name": "B"}],
                   "updatedBy": "one@example.com", "labelsId": "td-1",
                   "scores": [{"secondaryUser": "two@example.com", "score": 87.0}]}
    assert two["updatedAt"] == "2025-01-03"
    assert [s["segmentMap"] for s in two["series"]] == [{"1": {"id": "y", "category": "Liver"}}] * 2
    plain = record_from_shard(_shard(final), {}, {}, VOCABULARY)
    assert "consensus" not in plain and plain["status"] == "IN_PROGRESS"
