"""``nnunet``: an nnU-Net v2 raw dataset, ready for ``nnUNetv2_plan_and_preprocess``.

Each task with a label map is one training case: ``imagesTr/<case>_<XXXX>.nii.gz`` per channel and
``labelsTr/<case>.nii.gz``, all on the grid of the task's first label map (see the ``_training`` module for
channels, grids and class values); ``dataset.json`` (written once per export, from every case) holds
``channel_names`` (the series names), ``labels``, ``numTraining`` and ``file_ending``. ``<case>`` is the task's
folder name. With ``case=series`` each labelled series is a case of its own, ``<task>_<series>``, whose one
channel is named by its modality (``CT``, ``MR``, ...). nnU-Net normalises a channel named ``CT`` (any case)
as CT; other names get z-scoring.

Overlaps between classes are kept by default as nnU-Net's region-based labels (``overlap=regions``): a voxel of
several classes holds the value of that combination, ``labels`` maps each class to every value that covers it
and ``regions_class_order`` is set; ``overlap=lowest`` or ``highest`` gives plain labels instead. Tasks
without a label map are left out (with a warning); all cases must have the same channels (``channels=T1,T2``
picks and orders them by series name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import labelport

from ._common import GzipOptions


@dataclass(frozen=True)
class Options(GzipOptions):
    #: "regions" keeps overlapping classes (nnU-Net region labels); "lowest"/"highest" keeps one class
    overlap: Literal["regions", "lowest", "highest"] = "regions"
    #: one case per task (its series are the channels) or per labelled series
    case: Literal["task", "series"] = "task"
    #: the series that make the channels, by name and in order, comma-separated (default: every series with
    #: images, in the task's order)
    channels: str = ""


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    from ._training import write_cases  # numpy and the training code load when the writer runs, not when listed

    return write_cases(task, ctx, "nnunet", lambda case, count: [f"imagesTr/{case}_{n:04d}.nii.gz"
                                                                 for n in range(count)])


def project(entries: labelport.TaskEntries, ctx: labelport.ProjectContext) -> None:
    from ._training import class_names, entry_cases, region_labels

    opts: Options = ctx.options
    cases, channels = entry_cases(entries, "nnunet")
    names = class_names(ctx.taxonomy)
    top = max((int(case["topLabel"]) for case in cases), default=0)
    regions = opts.overlap == "regions" and top > len(names)
    dataset: dict[str, Any] = {
        "channel_names": {str(n): c for n, c in enumerate(channels)},
        "labels": region_labels(names, top) if regions else {"background": 0, **{c: n for n, c in
                                                                                  enumerate(names, 1)}},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    if regions:
        dataset["regions_class_order"] = list(range(1, len(names) + 1))
    ctx.write_json("dataset.json", dataset)


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="nnunet",
        description="an nnU-Net v2 raw dataset: imagesTr, labelsTr and dataset.json (overlaps as region labels)",
        write=write,
        options=Options,
        needs_images=True,
        project=project,
    )]
