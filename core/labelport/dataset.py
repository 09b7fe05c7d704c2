"""A map-style dataset over a project, for training code (PyTorch, MONAI, scikit-learn) without torch itself.

Each item is one series with a label map, as a plain dict of numpy arrays and metadata::

    ds = labelport.Dataset("export-folder", target="semantic")
    item = ds[0]   # {"image", "label", "affine", "spacing", "task_id", "task_name", "series", "segments", ...}

``images=False`` gives items without an ``"image"`` key.

``torch.utils.data.DataLoader(ds, batch_size=1)`` uses it as it is (items hold variable-length ``segments``:
give a ``collate_fn`` for larger batches). MONAI dictionary transforms take the arrays under ``"image"`` and
``"label"``; they have no channel axis, except for the ``binary`` and ``layers`` targets (channel first).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np

from .errors import SourceError
from .images import load_aligned
from .labels import LabelViews
from .model import Series
from .sources import Source, TaskFilter, TaskRef, open_source

__all__ = ["Dataset", "Target"]

Target = Literal["instances", "semantic", "binary", "layers"]


def _label_target(series: Series, labels: np.ndarray, target: Target) -> np.ndarray:
    """The label array in the form training wants (a writable copy)."""
    if target == "instances":
        return np.array(labels)
    views = LabelViews(series, labels)
    if target == "semantic":
        return np.array(views.semantic("lowest"))
    if target == "layers":
        return np.stack([views.layer_array(ids) for ids in views.layers()])
    out = np.zeros((len(views.instance_ids), *labels.shape), dtype=np.uint8)
    for n, (_, found) in enumerate(views.instance_masks()):
        if found is not None:
            box, mask = found
            out[n][box][mask] = 1
    return out


class Dataset:
    """Series of a project as training samples (see the module docstring).

    ``target``: ``instances`` (the stored ids, overlap group ids included), ``semantic`` (class id + 1, overlaps
    to the lowest class), ``binary`` (one 0/1 channel per instance, overlaps included) or ``layers`` (the
    overlap-free layers as channels). ``images``: load each series' image on the label grid (DICOM or NIfTI);
    ``resample``: when the grids differ, put the labels on the image grid instead of refusing.
    """

    def __init__(self, source: str | os.PathLike[str] | Source, *, target: Target = "instances",
                 images: bool = True, resample: bool = False, task_filter: TaskFilter | None = None) -> None:
        if target not in ("instances", "semantic", "binary", "layers"):
            raise ValueError(f"target must be instances, semantic, binary or layers, not {target!r}")
        self.source = open_source(source, task_filter=task_filter)
        self.target, self.images, self.resample = target, images, resample
        self._items: list[tuple[TaskRef, int]] = []
        for ref in self.source.refs():
            series = ref.record.get("series") if isinstance(ref.record, dict) else None
            for index, s in enumerate(series or []):
                if isinstance(s, dict) and s.get("segmentations"):
                    self._items.append((ref, index))

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        ref, series_index = self._items[index]
        task = self.source.open(ref)
        try:
            series = task.series[series_index]
            assert series.label_map is not None
            if self.images:
                volumes = load_aligned(series, resample=self.resample)
                image, labels, affine = np.array(volumes.image), volumes.labels, volumes.affine
            else:
                image, labels, affine = None, series.label_map.array, series.label_map.affine
            label = _label_target(series, labels, self.target)
        except SourceError as exc:
            raise exc.located(task=task.label) from None
        finally:
            task.release()
        item = {
            "label": label, "affine": np.array(affine),
            "spacing": tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)),
            "task_id": task.task_id, "task_name": task.name, "series": series.name,
            "segments": [{"instance_id": s.instance_id, "category": s.category, "class_id": s.class_id,
                          "label_id": s.label_id, "attributes": dict(s.attributes)}
                         for s in series.segments.values()],
            "metadata": dict(task.metadata),
        }
        if image is not None:  # absent rather than None, which DataLoader's default collate cannot batch
            item["image"] = image
        return item
