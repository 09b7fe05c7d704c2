"""``monai``: the Medical Segmentation Decathlon layout that MONAI loads with ``load_decathlon_datalist``.

Each task with a label map is one case: ``imagesTr/<case>.nii.gz`` (or ``imagesTr/<case>_<XXXX>.nii.gz`` per
channel when the task has several image series, listed together as the case's ``image``) and
``labelsTr/<case>.nii.gz`` with class values 1..K (see the ``_training`` module), all on the grid of the task's
first label map. ``dataset.json`` (written once per export, from every case) holds ``modality``, ``labels``,
``numTraining`` and the ``training`` list. A voxel of several classes takes the ``lowest`` (default) or
``highest``. Tasks without a label map are left out, with a warning. ``case=series`` makes each labelled
series a case of its own, ``<task>_<series>``, as for ``nnunet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import labelport

from ._common import GzipOptions


@dataclass(frozen=True)
class Options(GzipOptions):
    #: which class a voxel of several classes takes
    overlap: Literal["lowest", "highest"] = "lowest"
    #: one case per task (its series are the channels) or per labelled series
    case: Literal["task", "series"] = "task"
    #: the series that make the channels, by name and in order, comma-separated (default: every series with
    #: images, in the task's order)
    channels: str = ""


def _image_paths(case: str, count: int) -> list[str]:
    return [f"imagesTr/{case}.nii.gz"] if count == 1 else [f"imagesTr/{case}_{n:04d}.nii.gz" for n in range(count)]


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    from ._training import write_cases  # numpy and the training code load when the writer runs, not when listed

    return write_cases(task, ctx, "monai", _image_paths)


def project(entries: labelport.TaskEntries, ctx: labelport.ProjectContext) -> None:
    from ._training import class_names, entry_cases

    cases, channels = entry_cases(entries, "monai")

    def local(path: Any) -> Any:
        return [f"./{p}" for p in path] if isinstance(path, list) else f"./{path}"

    ctx.write_json("dataset.json", {
        "name": ctx.taxonomy.name,
        "description": "exported by labelport",
        "tensorImageSize": "3D",
        "modality": {str(n): c for n, c in enumerate(channels)},
        "labels": {"0": "background", **{str(n): c for n, c in enumerate(class_names(ctx.taxonomy), 1)}},
        "numTraining": len(cases),
        "numTest": 0,
        "training": [{"image": local(case["images"][0] if len(case["images"]) == 1 else case["images"]),
                      "label": local(case["label"])} for case in cases],
        "test": [],
    })


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="monai",
        description="the Medical Segmentation Decathlon layout with dataset.json, as MONAI loads it",
        write=write,
        options=Options,
        needs_images=True,
        project=project,
    )]
