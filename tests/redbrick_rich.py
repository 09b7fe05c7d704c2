"""A RedBrick project holding every kind of label the API serves, written directly in the server's raw form:
segmentations with overlaps and SELECT, MULTISELECT, BOOL and TEXT attributes; lengths, angles, 3D landmarks and
cuboids with the viewer's world points and statistics; study, series, per-slice and datapoint classifications;
2D points, boxes, polygons, polylines and ellipses on video frames; heat maps, transforms and centerlines; a task
without series info whose label map is given by image index; tasks in every state the task lists search for;
and an audit trail with every event kind. Its image files (DICOM, PNG, NIfTI) are real, so an export with
images works. Used to compare labelport with RedBrick's own SDK on the same project."""

from __future__ import annotations

import copy
import datetime
import gzip
import io
import json
from typing import Any

import nibabel as nib
import numpy as np
from cases import ct_slices
from PIL import Image
from redbrick_project import END, Project, task_state, trail, user

TAXONOMY = {
    "name": "labelport rich",
    "studyClassify": [{"name": "Quality", "attrType": "SELECT", "attrId": 10,
                       "options": [{"name": "Good", "optionId": 0}, {"name": "Poor", "optionId": 1}]},
                      {"name": "Remark", "attrType": "TEXT", "attrId": 11}],
    "seriesClassify": [{"name": "Phase", "attrType": "SELECT", "attrId": 12,
                        "options": [{"name": "arterial", "optionId": 0}, {"name": "venous", "optionId": 1}]},
                       {"name": "Contrast", "attrType": "BOOL", "attrId": 13}],
    "instanceClassify": [{"name": "Artifact", "attrType": "BOOL", "attrId": 14},
                         {"name": "Where", "attrType": "MULTISELECT", "attrId": 15,
                          "options": [{"name": "top", "optionId": 0}, {"name": "bottom", "optionId": 1}]}],
    "objectTypes": [
        {"category": "Liver", "classId": 0, "labelType": "SEGMENTATION", "color": "#e6194b", "attributes": [
            {"name": "Side", "attrType": "SELECT", "attrId": 1,
             "options": [{"name": "L", "optionId": 0}, {"name": "R", "optionId": 1}]},
            {"name": "Note", "attrType": "TEXT", "attrId": 2},
            {"name": "Confirmed", "attrType": "BOOL", "attrId": 3},
            {"name": "Findings", "attrType": "MULTISELECT", "attrId": 4,
             "options": [{"name": "cyst", "optionId": 0}, {"name": "nodule", "optionId": 1},
                         {"name": "scar", "optionId": 2}]}]},
        {"category": "Kidney", "classId": 1, "labelType": "SEGMENTATION", "color": "#3cb44b", "attributes": []},
        {"category": "Diameter", "classId": 2, "labelType": "LENGTH", "color": "#ffe119", "attributes": []},
        {"category": "Angle", "classId": 3, "labelType": "ANGLE", "color": "#4363d8", "attributes": []},
        {"category": "Lesion center", "classId": 4, "labelType": "LANDMARK_3D", "color": "#f58231",
         "attributes": [{"name": "Confidence", "attrType": "SELECT", "attrId": 5,
                         "options": [{"name": "low", "optionId": 0}, {"name": "high", "optionId": 1}]}]},
        {"category": "Organ box", "classId": 5, "labelType": "CUBOID", "color": "#911eb4", "attributes": []},
        {"category": "Point", "classId": 6, "labelType": "LANDMARK", "color": "#46f0f0", "attributes": []},
        {"category": "Box", "classId": 7, "labelType": "BBOX", "color": "#f032e6", "attributes": [
            {"name": "Occluded", "attrType": "BOOL", "attrId": 6}]},
        {"category": "Outline", "classId": 8, "labelType": "POLYGON", "color": "#bcf60c", "attributes": []},
        {"category": "Path", "classId": 9, "labelType": "POLYLINE", "color": "#fabebe", "attributes": []},
        {"category": "Blob", "classId": 10, "labelType": "ELLIPSE", "color": "#008080", "attributes": []},
    ],
}


def _png(width: int, height: int, shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width), shade, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _nifti(data: np.ndarray, affine: np.ndarray) -> bytes:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes(), mtime=0)


def _at(day: int, hour: int) -> str:
    return datetime.datetime(2025, 4, day, hour, 0, tzinfo=datetime.timezone.utc).isoformat()


def _base(n: int, name: str, stage: str, state: str, **extra: Any) -> dict[str, Any]:
    record = {"taskId": f"90000000-0000-4000-8000-00000000000{n}", "name": name, "currentStageName": stage,
              "status": state, "priority": 0.25 * (n % 4), "createdBy": "uploader@example.com",
              "createdAt": _at(n, 8), "updatedBy": "annotator@example.com", "updatedAt": _at(n, 12),
              "labelsId": f"91000000-0000-4000-8000-00000000000{n}",
              "storageId": "92000000-0000-4000-8000-000000000000", "metaData": {"site": f"site-{n}"}}
    record.update(extra)
    return record


def _attr(project: Project, scope: str, values: dict[str, Any], class_id: int | None = None) -> list[dict[str, Any]]:
    return project.raw_attributes(values, scope, class_id)


def _ct_task(project: Project) -> dict[str, Any]:
    """A CT series with overlapping segmentations, measurements, landmarks, cuboids and classifications."""
    shape, spacing, origin = (16, 12, 3), (0.7, 0.8, 2.5), (-5.6, -4.8, -2.5)
    items = [f"dicom/case-a/{k:04d}.dcm" for k in range(shape[2])]
    for item, data in zip(items, ct_slices("case-a", shape, spacing, origin)):
        project.files[item] = data
    labels = np.zeros(shape, np.uint8)
    labels[2:9, 2:8, :] = 1
    labels[6:13, 3:10, 1:] = 2
    labels[6:9, 3:8, 1:] = 3  # instances 1 and 2 overlap: group 3
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [-origin[0], -origin[1], origin[2]]
    project.files["labelmaps/case-a/ct.nii.gz"] = _nifti(labels, affine)
    headers = {"dimensions": list(shape), "spacing": list(spacing), "origin": list(origin),
               "direction": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}
    record = _base(1, "Case A/CT", END, "COMPLETED", priority=0.0, metaData={"site": "north", "age": 61},
                   updatedBy="API:k1")
    raw = [
        {"labelid": "l-liver", "category": "Liver", "classid": 0, "volumeindex": 0, "linkid": "grp-1",
         "readonly": True, "dicom": {"instanceid": 1, "groupids": [3]},
         "attributes": _attr(project, "objectTypes", {"Side": "L", "Note": "true", "Confirmed": "false",
                                                      "Findings": ["cyst", "scar"]}, 0)},
        {"labelid": "l-kidney", "category": "Kidney", "classid": 1, "volumeindex": 0,
         "dicom": {"instanceid": 2, "groupids": [3]}, "attributes": []},
        {"labelid": "l-len", "category": "Diameter", "classid": 2, "volumeindex": 0,
         "length3d": {"point1": [2, 3, 1], "point2": [10, 3, 1], "normal": [0, 0, 1],
                      "computedpoint1world": [4.2, 2.4, 0.0], "computedpoint2world": [-1.4, 2.4, 0.0],
                      "computedlength": 5.6}},
        {"labelid": "l-ang", "category": "Angle", "classid": 3, "volumeindex": 0,
         "angle3d": {"point1": [1, 1, 0], "point2": [5, 1, 0], "point3": [5, 6, 0], "normal": [0, 0, 1],
                     "computedpoint1world": [4.9, 4.0, -2.5], "computedpoint2world": [2.1, 4.0, -2.5],
                     "computedpoint3world": [2.1, 0.0, -2.5], "computedangledeg": 90.0}},
        {"labelid": "l-p3", "category": "Lesion center", "classid": 4, "volumeindex": 0,
         "point3d": {"pointx": 7, "pointy": 5, "pointz": 2, "computedpointworld": [0.7, 0.8, 2.5]},
         "attributes": _attr(project, "objectTypes", {"Confidence": "high"}, 4)},
        {"labelid": "l-p3-world", "category": "Lesion center", "classid": 4, "volumeindex": 0,
         "point3d": {"computedpointworld": [1.0, 1.0, 1.0]}},
        {"labelid": "l-cube", "category": "Organ box", "classid": 5, "volumeindex": 0,
         "cuboid": {"point1": [1, 1, 0], "point2": [9, 8, 2], "computedpoint1world": [4.9, 4.0, -2.5],
                    "computedpoint2world": [-0.7, -1.6, 2.5]},
         "stats": {"average": 21.5, "minimum": 20.0, "maximum": 22.0, "volume": 123.4, "area": None,
                   "intensityunit": "HU"}},
        {"labelid": "l-series", "seriesclassify": True, "volumeindex": 0,
         "attributes": _attr(project, "seriesClassify", {"Phase": "venous", "Contrast": "true"})},
        {"labelid": "l-slice", "instanceclassify": True, "volumeindex": 0, "frameindex": 1,
         "attributes": _attr(project, "instanceClassify", {"Artifact": True, "Where": ["top"]})},
        {"labelid": "l-study", "studyclassify": True,
         "attributes": _attr(project, "studyClassify", {"Quality": "Good", "Remark": "false"})},
    ]
    info = [{"name": "CT", "itemsIndices": [2, 0, 1], "dataType": "dicom", "metaData": {"modality": "CT"},
             "imageHeaders": headers}]
    task = task_state(record, raw, [{"seriesIndex": 0, "path": "labelmaps/case-a/ct.nii.gz"}], items, info)
    task["heatMaps"] = [{"seriesIndex": 0, "seriesName": "CT", "name": "attention", "item": "heat/a.nii.gz",
                         "preset": "hot", "dataRange": [0, 1], "opacityPoints": None, "opacityPoints3d": None,
                         "rgbPoints": [[0, 1, 0, 0]]}]
    task["transforms"] = [{"seriesIndex": 0, "transform": [1.0, 0, 0, 2, 0, 1, 0, 3, 0, 0, 1, 4, 0, 0, 0, 1]}]
    task["centerline"] = [{"seriesIndex": 0, "name": "aorta", "centerline": {"points": [[0, 0, 0], [1, 1, 1]]}}]
    task["attributes"] = [{"name": "Cohort", "value": "train"}, {"name": "Reviewed", "value": "TRUE"}]
    task["events"] = trail(task) + _every_event(task)
    return task


def _every_event(task: dict[str, Any]) -> list[dict[str, Any]]:
    """More of a task's history, for every event kind the audit trail knows."""
    tdid = task["tdId"]

    def at(minute: int) -> str:
        return f"{task['createdAt'][:10]}T11:{minute:02d}:00.000000+00:00"

    def state(minute: int, **values: Any) -> dict[str, Any]:
        base = {"stageName": None, "assignedAtAfter": None, "updatedBy": None, "statusBefore": None,
                "statusAfter": None, "assignedToBeforeEntity": None, "assignedToAfterEntity": None,
                "consensusAssigneesBefore": None, "consensusAssigneesAfter": None, "consensusStatusesBefore": None,
                "consensusStatusesAfter": None, "reviewResultBefore": None, "reviewResultAfter": None}
        for key in ("assignedToBeforeEntity", "assignedToAfterEntity"):
            if key in values:
                values[key] = user(values[key])
        return {"__typename": "TaskStateChanges", "createdAt": at(minute), **base, **values}

    def event(minute: int, by: str | None, **values: Any) -> dict[str, Any]:
        return {"__typename": "TaskEvent", "createdAt": at(minute), "eventId": None, "updatedBy": by,
                "createEvent": None, "inputEvent": None, "outputEvent": None,
                "taskData": {"tdId": tdid, "stageName": None, "createdBy": by}, **values}

    def out(stage: str, passed: bool | None, following: str | None = None) -> dict[str, Any]:
        return {"currentStageName": stage, "cycleCount": 2, "outputBool": passed, "nextStageName": following,
                "timeSpentMs": 1500, "extraData": None, "multiLabels": None}

    pin = {"pinId": 7, "pointX": 1.5, "pointY": 2.5, "pointZ": 0.0, "frameIndex": 1, "volumeIndex": 0}
    return [
        state(1, assignedToBeforeEntity="u-reviewer", assignedToAfterEntity="u-annotator", stageName="Review_1"),
        state(2, assignedToBeforeEntity="u-annotator", assignedToAfterEntity=None),
        state(3, assignedToAfterEntity="u-reviewer", statusBefore="ASSIGNED", statusAfter="ASSIGNED"),
        state(4, assignedToBeforeEntity="u-reviewer", assignedToAfterEntity="u-reviewer", statusBefore="ASSIGNED",
              statusAfter="SKIPPED"),
        state(5, assignedToBeforeEntity="u-reviewer", assignedToAfterEntity="u-reviewer", statusBefore="SKIPPED",
              statusAfter="IN_PROGRESS"),
        event(6, "u-reviewer", outputEvent=out("Review_1", False)),
        state(7, reviewResultBefore=True, reviewResultAfter=False),
        event(8, "u-reviewer", outputEvent=out("Failed_Review", None)),
        {"__typename": "Comment", "createdAt": at(9), "commentId": "c0000000-0000-4000-8000-000000000009",
         "textVal": "Boundary unclear here", "createdBy": user("u-reviewer"), "stageName": "Review_1",
         "issueComment": False, "issueResolved": None, "labelEntityLabelId": "l-liver",
         "taskData": {"tdId": tdid}, "pin": pin, "replies": []},
        event(10, "u-annotator", outputEvent=out("Review_1", True)),
        event(11, "API:k1", outputEvent=out("Review_1", True, "END")),
        event(12, "u-annotator", outputEvent=out(END, None)),
        state(13, consensusAssigneesBefore=["u-annotator"], consensusAssigneesAfter=["u-annotator", "API:k1"],
              consensusStatusesBefore=["ASSIGNED"], consensusStatusesAfter=["ASSIGNED", "ASSIGNED"]),
        event(14, None, inputEvent={"currentStageName": END, "overallConsensusScore": 0.75, "priority": 0.5,
                                    "consensusInfo": [{"user": user("u-annotator"), "taskData": {"tdId": tdid},
                                                       "scores": [{"user": user("u-reviewer"), "score": 0.75}]}]}),
        event(15, None, outputEvent={**out("Review_1", True), "multiLabels": [
            {"user": user("u-annotator"), "taskData": {"tdId": tdid}}]}),
    ]


def _video_task(project: Project) -> dict[str, Any]:
    """Video frames and a web image with 2D labels on frames (tracks, key frames, statistics)."""
    items = [f"video/clip/{n:03d}.png" for n in range(4)] + ["web/photo.png"]
    for n, item in enumerate(items):
        project.files[item] = _png(8, 6, 40 * n)
    record = _base(2, "clip", "Review_1", "IN_PROGRESS", createdBy="API:k1", updatedBy="RB:system")
    frame = {"trackid": "track-1", "keyframe": True, "end": False}
    raw = [
        {"labelid": "v-point", "category": "Point", "classid": 6, "volumeindex": 0, "frameindex": 1,
         "globalitemsindex": 1, "seriesframeindex": None, **frame, "point": {"xnorm": 0.25, "ynorm": 0.5}},
        {"labelid": "v-box", "category": "Box", "classid": 7, "volumeindex": 0, "frameindex": 2,
         "globalitemsindex": 2, "seriesframeindex": 2, "trackid": "track-2",
         "attributes": _attr(project, "objectTypes", {"Occluded": "FALSE"}, 7),
         "bbox2d": {"xnorm": 0.1, "ynorm": 0.2, "wnorm": 0.3, "hnorm": 0.4},
         "stats": {"average": 40.0, "minimum": 40.0, "maximum": 40.0, "area": 12.0}},
        {"labelid": "v-poly", "category": "Outline", "classid": 8, "volumeindex": 0, "frameindex": 0,
         "globalitemsindex": 0, "polygon": [{"xnorm": 0.1, "ynorm": 0.1}, {"xnorm": 0.5, "ynorm": 0.1},
                                            {"xnorm": 0.3, "ynorm": 0.6}], "stats": {"area": 0.1}},
        {"labelid": "v-line", "category": "Path", "classid": 9, "volumeindex": 0, "frameindex": 3,
         "polyline": [{"xnorm": 0.0, "ynorm": 0.0}, {"xnorm": 1.0, "ynorm": 1.0}]},
        {"labelid": "v-blob", "category": "Blob", "classid": 10, "volumeindex": 1,
         "ellipse": {"xcenternorm": 0.5, "ycenternorm": 0.5, "xnorm": 0.2, "ynorm": 0.1, "rot": 0.3},
         "stats": {"average": 160.0}},
        {"labelid": "v-class", "seriesclassify": True, "volumeindex": 0, "frameindex": 2, "globalitemsindex": 2,
         "attributes": _attr(project, "seriesClassify", {"Phase": "arterial"})},
        {"labelid": "v-class-empty", "seriesclassify": True, "volumeindex": 1, "attributes": []},
    ]
    info = [{"name": "clip", "itemsIndices": [0, 1, 2, 3], "dataType": "video",
             "imageHeaders": {"dimensions": [8, 6, 4], "totalFrames": 4}},
            {"name": "photo", "itemsIndices": [4], "dataType": "web", "metaData": None,
             "imageHeaders": {"dimensions": [8, 6, 1], "spacing": [1, 1, 1], "origin": [0, 0, 0],
                              "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1]}}]
    return task_state(record, raw, [], items, info)


def _nifti_task(project: Project) -> dict[str, Any]:
    """A NIfTI image without series info; its label map is given by image index."""
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    project.files["nifti/case-c.nii.gz"] = _nifti(np.full((10, 8, 4), 7, np.int16), affine)
    labels = np.zeros((10, 8, 4), np.uint16)
    labels[2:6, 2:6, 1:3] = 4
    project.files["labelmaps/case-c/0.nii.gz"] = _nifti(labels, affine)
    record = _base(3, "", "Label", "UNASSIGNED", updatedBy="annotator@example.com")
    raw = [{"labelid": "c-seg", "category": "Kidney", "classid": 1, "dicom": {"instanceid": 4}}]
    task = task_state(record, raw, [{"imageIndex": 0, "path": "labelmaps/case-c/0.nii.gz"}],
                      ["nifti/case-c.nii.gz"], [])
    return task


def _simple_task(project: Project, n: int, name: str, stage: str, state: str, **stages: Any) -> dict[str, Any]:
    """A task with one small CT series and one segmentation, in a given stage and state."""
    items = [f"dicom/{name}/{k:04d}.dcm" for k in range(2)]
    for item, data in zip(items, ct_slices(name, (6, 5, 2), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))):
        project.files[item] = data
    labels = np.zeros((6, 5, 2), np.uint8)
    labels[1:4, 1:4, :] = 1
    path = f"labelmaps/{name}/0.nii.gz"
    project.files[path] = _nifti(labels, np.diag([-1.0, -1.0, 2.0, 1.0]))
    record = _base(n, name, stage, state)
    raw = [{"labelid": f"{name}-seg", "category": "Liver", "classid": 0, "volumeindex": 0,
            "dicom": {"instanceid": 1}, "attributes": _attr(project, "objectTypes", {"Side": "R"}, 0)}]
    info = [{"name": "CT", "itemsIndices": [0, 1], "imageHeaders": {
        "dimensions": [6, 5, 2], "spacing": [1.0, 1.0, 2.0], "origin": [0.0, 0.0, 0.0],
        "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1]}}]
    task = task_state(record, raw, [{"seriesIndex": 0, "path": path}], items, info)
    for stage_name, values in stages.items():
        task["stages"].setdefault(stage_name, {}).update(values)
    if state == "STAGED":  # saved as a draft: the save is the task's last event
        last = {**task["events"][2], "createdAt": f"{task['createdAt'][:10]}T11:59:00.000000+00:00",
                "statusBefore": "ASSIGNED", "statusAfter": "IN_PROGRESS"}
        task["events"].append(last)
    return task


def rich_project(labels: str = "path", page_size: int = 3) -> Project:
    """The project (see the module docstring); ``labels`` as for :class:`redbrick_project.Project`."""
    project = Project(copy.deepcopy(TAXONOMY), labels=labels, page_size=page_size)
    project.add_task(_ct_task(project))
    project.add_task(_video_task(project))
    project.add_task(_nifti_task(project))
    project.add_task(_simple_task(project, 4, "draft", "Label", "STAGED",
                                  Label={"assignedTo": "u-annotator", "completedAt": None}))
    project.add_task(_simple_task(project, 5, "skipped", "Label", "SKIPPED",
                                  Label={"assignedTo": "u-reviewer", "completedAt": None}))
    project.add_task(_simple_task(project, 6, "issue", "Label", "PROBLEM",
                                  Label={"assignedTo": "u-annotator", "completedAt": None}))
    project.add_task(_simple_task(project, 7, "rejected", "Review_1", "ASSIGNED",
                                  Review_1={"reviewResult": False, "assignedTo": None}))
    project.active_time = [
        {"stageName": "Label", "taskId": t["taskId"], "user": "u-annotator", "timeSpent": 1000.0 * (n + 1),
         "cycle": 1, "date": t["labelsAt"]} for n, t in enumerate(project.tasks)]
    json.dumps(project.taxonomy)  # plain data only
    return project
