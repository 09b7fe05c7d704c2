"""``coco``: instance segmentation in the COCO format, one ``annotations.json`` for the whole export.

Every slice of a labelled series becomes a COCO image: ``images/<task>/<series>/<series>-<k>.png`` (8-bit
grey; a 2D series gives ``<series>.png``), named, sliced and oriented exactly as the ``png`` writer names its
label slices under ``segmentations/``, so the two writers' outputs pair up file for file. Each instance on
each slice where it has voxels becomes an annotation whose ``segmentation`` is an exact RLE mask or, with
``segmentation=polygon``, polygons along the pixel edges (a hole joined to its outline by a zero-area keyhole,
so that pycocotools fills exactly the mask's pixels); overlap voxels are included in every instance that
covers them. Annotations have ``area``, ``bbox``, ``category_id`` (class id + 1) and ``iscrowd`` 0.
Categories come from the taxonomy. Each image and annotation also says which task, series, slice and instance
it comes from (``labelport``).

Each series lists its slice images in ``cocoImages``. Each task's images and annotations are written to
``coco/<task>.json``; the project step joins them into ``annotations.json``, numbering images and annotations
in task order, so it always holds every task of the folder. Grey levels: CT in a soft-tissue window (level 40,
width 400 HU) unless ``window=level,width`` is given; other modalities from the 0.5th to the 99.5th percentile
of the series.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import labelport

from ._common import labelled
from .png import display_volume, save_slice, slice_name

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Options:
    #: slice direction for 3D series (as for the png writer)
    axis: Literal["axial", "coronal", "sagittal"] = "axial"
    #: "all" slices become images, or only those with a label ("labelled")
    slices: Literal["all", "labelled"] = "all"
    #: "rle" masks, or "polygon": one outline per region along the pixel edges, holes joined by a keyhole
    segmentation: Literal["rle", "polygon"] = "rle"
    #: grey window "level,width" (e.g. "40,400"); empty: automatic (see the module docstring)
    window: str = ""
    #: zlib level 0-9 of the PNG images
    compresslevel: int = 1

    def __post_init__(self) -> None:
        if self.window:
            _window_of(self.window)


def _window_of(text: str) -> tuple[float, float]:
    try:
        level, width = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"window must be 'level,width', not {text!r}") from None
    if not width > 0:
        raise ValueError(f"window width must be above 0, not {width}")
    return level, width


def _grey(image: np.ndarray, series: labelport.Series, window: str) -> np.ndarray:
    """The image as 8-bit grey."""
    import numpy as np

    from ._training import modality

    if window:
        level, width = _window_of(window)
        low, high = level - width / 2, level + width / 2
    elif modality(series) == "CT":
        low, high = -160.0, 240.0
    else:
        low, high = (float(v) for v in np.percentile(image, [0.5, 99.5]))
    scaled = (image.astype(np.float32) - low) * (255.0 / max(high - low, 1e-6))
    grey: np.ndarray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return grey


def _rle(mask: np.ndarray) -> dict[str, Any]:
    import numpy as np
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype("uint8")))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons of a 2D mask: pixel-edge outlines (x, y), one per 4-connected region, each hole joined to
    its outline by a zero-area keyhole, so that pycocotools fills exactly the mask's pixels."""
    return [[float(v) for v in outline.ravel()] for outline in labelport.keyhole_outlines(mask)]


def _series(ctx: labelport.WriterContext, task: labelport.Task, series: labelport.Series,
            opts: Options) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import numpy as np
    from PIL import Image

    volumes = labelport.load_aligned(series)
    affine = volumes.affine
    views = labelport.views(series)
    grey = display_volume(_grey(volumes.image, series, opts.window), affine, opts.axis)
    count = grey.shape[2]
    origin = {"task": task.task_id, "series": series.name}
    # one instance's mask at a time (volumes may be large); each slice's annotations, in instance order
    found_on: dict[int, list[dict[str, Any]]] = {}
    for n, found in views.instance_masks():
        if found is None:
            continue
        mask = np.zeros(views.array.shape, dtype=bool, order="F")
        box, inside = found
        mask[box][inside] = True
        shown = display_volume(mask, affine, opts.axis)
        segment = series.segments[n]
        for k in np.flatnonzero(shown.any(axis=(0, 1))).tolist():
            plane = np.ascontiguousarray(shown[:, :, k].T)
            rows, cols = np.nonzero(plane)
            found_on.setdefault(k, []).append({
                "image": None, "category_id": segment.class_id + 1, "iscrowd": 0,
                "segmentation": _rle(plane) if opts.segmentation == "rle" else _polygons(plane),
                "area": int(plane.sum()), "bbox": [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                                                   int(rows.max() - rows.min() + 1)],
                "labelport": {**origin, "slice": k, "instance": n, "labelId": segment.label_id}})
        del mask, shown
    folder, stem = ctx.series_dir(series, top="images"), ctx.series_stem(series)
    images, annotations = [], []
    for k in range(count):
        if opts.slices == "labelled" and k not in found_on:
            continue
        path = save_slice(ctx, f"{folder}/{slice_name(stem, k, count)}", grey[:, :, k], Image.fromarray,
                          opts.compresslevel)
        images.append({"file_name": path, "height": int(grey.shape[1]), "width": int(grey.shape[0]),
                       "labelport": {**origin, "slice": k}})
        for annotation in found_on.pop(k, []):
            annotation["image"] = path
            annotations.append(annotation)
    return images, annotations


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for series, _, record in labelled(task, entry):
        found = _series(ctx, task, series, opts)
        record["cocoImages"] = [image["file_name"] for image in found[0]]
        images += found[0]
        annotations += found[1]
    entry["coco"] = ctx.write_json(f"coco/{ctx.task_folder}.json", {"images": images, "annotations": annotations})
    return entry


def project(entries: labelport.TaskEntries, ctx: labelport.ProjectContext) -> None:
    """annotations.json, streamed task by task (two passes: images, then annotations)."""
    import os

    parts = [e["coco"] for e in entries if isinstance(e.get("coco"), str)]
    categories = [{"id": c.class_id + 1, "name": c.name, "supercategory": ""}
                  for c in sorted(ctx.taxonomy.categories, key=lambda c: c.class_id)]

    def read(part: str) -> dict[str, Any]:
        with open(os.path.join(ctx.root, part), encoding="utf-8") as f:
            return json.load(f)  # type: ignore[no-any-return]

    with ctx.create("annotations.json") as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write('{"info": {"description": "exported by labelport"}, "licenses": [], "categories": ')
        out.write(json.dumps(categories, ensure_ascii=False))
        out.write(', "images": [')
        ids: dict[str, int] = {}
        for part in parts:
            for image in read(part)["images"]:
                ids[image["file_name"]] = len(ids) + 1
                out.write(("" if len(ids) == 1 else ", ") + json.dumps({"id": len(ids), **image}, ensure_ascii=False))
        out.write('], "annotations": [')
        count = 0
        for part in parts:
            for ann in read(part)["annotations"]:
                count += 1
                ann = {"id": count, "image_id": ids[ann.pop("image")], **ann}
                out.write(("" if count == 1 else ", ") + json.dumps(ann, ensure_ascii=False))
        out.write("]}\n")


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="coco",
        description="COCO instance segmentation: one annotations.json (exact RLE) and a PNG per slice",
        write=write,
        options=Options,
        requires=("pycocotools",),
        needs_images=True,
        project=project,
    )]
