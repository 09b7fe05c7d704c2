"""A map-style dataset over a project, for training code (PyTorch, MONAI, TorchIO) without depending on them.

Each item is one series with a label map, as a dict of numpy arrays and metadata::

    ds = labelport.Dataset("export-folder", target="semantic")
    item = ds[0]   # {"image", "label", "affine", "spacing", "task_id", "task_name", "series", "segments", ...}

Arrays are in voxel order (i, j, k) with their RAS ``affine``. Labels are ``int64`` (what torch's losses take
for class indices), or ``uint8`` 0/1 channels for the ``binary`` target. ``transform`` is applied to each item.

Geometry travels with the arrays where the training library expects it: :meth:`Dataset.as_monai` gives items
whose ``image`` and ``label`` are MONAI ``MetaTensor`` s (channel first, with their affine), which MONAI's
spatial transforms (``Orientationd``, ``Spacingd``) need; :meth:`Dataset.as_torchio` gives TorchIO
``Subject`` s of a ``ScalarImage`` and a ``LabelMap``. :func:`collate` batches items of different shapes for a
``DataLoader``. ``cache="memory"`` keeps decoded items for later epochs; ``cache="disk"`` (with ``cache_dir``)
keeps them as ``.npz`` files keyed by everything they are made from (the task record, its files' sizes, times
and inodes, the taxonomy, the target, images, resample), so an edited task is decoded again.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from ._version import __version__
from .errors import SourceError
from .images import load_aligned
from .labels import LabelViews
from .model import Series
from .sources import LocalExport, Source, TaskFilter, TaskRef, open_source

__all__ = ["Dataset", "Target", "collate"]

Target = Literal["instances", "semantic", "binary", "layers"]
Cache = Literal["memory", "disk"]
_ARRAYS = ("image", "label", "affine")


def _label_target(series: Series, labels: np.ndarray, target: Target, dtype: Any) -> np.ndarray:
    """The label array in the form training wants (a writable copy)."""
    if target == "instances":
        instances: np.ndarray = np.array(labels, dtype=dtype)
        return instances
    views = LabelViews(series, labels)
    if target == "semantic":
        semantic: np.ndarray = np.asarray(views.semantic("lowest"), dtype=dtype)
        return semantic
    if target == "layers":
        return np.stack([views.layer_array(ids) for ids in views.layers()]).astype(dtype)
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
    a series without image files is refused here, not at its first item. ``resample``: when the grids differ,
    put the labels on the image grid instead of refusing. ``transform``: a function applied to each item dict.
    ``label_dtype``: of the integer targets (``int64`` by default). ``cache``: ``"memory"`` or ``"disk"``
    (in ``cache_dir``).
    """

    def __init__(self, source: str | os.PathLike[str] | Source, *, target: Target = "instances",
                 images: bool = True, resample: bool = False, task_filter: TaskFilter | None = None,
                 transform: Callable[[dict[str, Any]], Any] | None = None, label_dtype: Any = np.int64,
                 cache: Cache | None = None, cache_dir: str | os.PathLike[str] | None = None) -> None:
        if target not in ("instances", "semantic", "binary", "layers"):
            raise ValueError(f"target must be instances, semantic, binary or layers, not {target!r}")
        if cache not in (None, "memory", "disk"):
            raise ValueError(f"cache must be None, 'memory' or 'disk', not {cache!r}")
        if cache == "disk" and cache_dir is None:
            raise ValueError("cache='disk' needs cache_dir")
        if transform is not None and not callable(transform):
            raise ValueError("transform must be a function of the item dict")
        self.source = open_source(source, task_filter=task_filter)
        self.target, self.images, self.resample, self.transform = target, images, resample, transform
        self.label_dtype = np.dtype(label_dtype)
        if not np.issubdtype(self.label_dtype, np.integer):
            raise ValueError(f"label_dtype must be an integer type, not {self.label_dtype}")
        self.cache, self.cache_dir = cache, None if cache_dir is None else os.fspath(cache_dir)
        self._memory: dict[int, dict[str, Any]] = {}
        self._items: list[tuple[TaskRef, int]] = []
        without: list[str] = []
        for ref in self.source.refs():
            series = ref.record.get("series") if isinstance(ref.record, dict) else None
            for index, s in enumerate(series or []):
                if isinstance(s, dict) and s.get("segmentations"):
                    self._items.append((ref, index))
                    if images and not self._has_images(s):
                        without.append(f"task {ref.label!r}, series {s.get('name') or index!r}")
        if without:
            more = f" and {len(without) - 3} more" if len(without) > 3 else ""
            raise SourceError(f"images=True, but {', '.join(without[:3])}{more} have no image files (their "
                              "items list none, or none is there); export the project with its images, or use "
                              "images=False")

    def _has_images(self, series: dict[str, Any]) -> bool:
        """Whether a series record lists image files (and, in an export folder, one of them is there)."""
        items = series.get("items") or []
        items = [items] if isinstance(items, str) else [i for i in items if isinstance(i, str)]
        if isinstance(self.source, LocalExport):
            return any(self.source.find(item) for item in items)
        return bool(items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> Any:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)}")
        index %= len(self)
        item = self._cached(index)
        return self.transform(item) if self.transform is not None else item

    def as_monai(self) -> _Wrapped:
        """This dataset with ``image`` and ``label`` as MONAI MetaTensors, channel first, carrying their affine
        (needs ``monai``)."""
        from monai.data.meta_tensor import MetaTensor

        def wrap(item: dict[str, Any]) -> dict[str, Any]:
            affine = item["affine"]
            out = dict(item)
            for key in ("image", "label"):
                if key in item:
                    array = item[key]
                    channels = array if array.ndim == 4 else array[None]
                    out[key] = MetaTensor(channels, affine=affine.copy(), meta={"filename_or_obj": item["series"]})
            return out

        return _Wrapped(self, wrap)

    def as_torchio(self) -> _Wrapped:
        """This dataset as TorchIO Subjects: ``image`` a ScalarImage, ``label`` a LabelMap, with their affine;
        the other fields as subject attributes (needs ``torchio``). 64-bit labels are held as ``int32``, since
        TorchIO's spatial transforms go through nibabel, which refuses 64-bit integers (``.long()`` them for a
        loss)."""
        import torchio as tio

        def wrap(item: dict[str, Any]) -> Any:
            affine = item["affine"]
            fields = {k: v for k, v in item.items() if k not in ("image", "label")}
            label = item["label"]
            if label.dtype.itemsize == 8:
                label = label.astype(np.int32)
            images: dict[str, Any] = {"label": tio.LabelMap(tensor=label if label.ndim == 4 else label[None],
                                                            affine=affine)}
            if "image" in item:
                images["image"] = tio.ScalarImage(tensor=item["image"][None], affine=affine)
            return tio.Subject(**images, **fields)

        return _Wrapped(self, wrap)

    # -- items --------------------------------------------------------------------------------------------
    def _cached(self, index: int) -> dict[str, Any]:
        if self.cache == "memory":
            if index not in self._memory:
                self._memory[index] = self._load(index)
            return copy.deepcopy(self._memory[index])
        if self.cache == "disk":
            return self._from_disk(index)
        return self._load(index)

    def _key(self, index: int) -> str:
        """Everything an item is made from (see the module docstring)."""
        from .manifest import input_digest, record_digest

        ref, series_index = self._items[index]
        labels, images = self.source.input_files(ref)
        inputs = input_digest(record_digest(ref.record), labels + (images if self.images else []), __version__)
        text = repr((inputs, series_index, self.target, self.images, self.resample, str(self.label_dtype),
                     repr(self.source.taxonomy)))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def _from_disk(self, index: int) -> dict[str, Any]:
        import json

        assert self.cache_dir is not None
        path = os.path.join(self.cache_dir, f"{self._key(index)}.npz")
        try:
            with np.load(path, allow_pickle=False) as stored:
                item: dict[str, Any] = {k: np.array(stored[k]) for k in stored.files if k != "fields"}
                item.update(json.loads(stored["fields"].tobytes().decode("utf-8")))
            item["spacing"] = tuple(item["spacing"])
            return item
        except (OSError, ValueError, KeyError, EOFError):
            pass  # not cached yet, or a damaged file: decode again
        item = self._load(index)
        os.makedirs(self.cache_dir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fields = {k: v for k, v in item.items() if k not in _ARRAYS}
        arrays: dict[str, Any] = {k: item[k] for k in _ARRAYS if k in item}
        arrays["fields"] = np.frombuffer(json.dumps(fields).encode("utf-8"), np.uint8)
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        return item

    def _load(self, index: int) -> dict[str, Any]:
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
            label = _label_target(series, labels, self.target, self.label_dtype)
        except SourceError as exc:
            raise exc.located(task=task.label) from None
        finally:
            task.release()
        item = {
            "label": label, "affine": np.array(affine, dtype=np.float64),
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


class _Wrapped:
    """A dataset whose items pass through ``wrap`` (after the dataset's own transform)."""

    def __init__(self, dataset: Dataset, wrap: Callable[[dict[str, Any]], Any]) -> None:
        self.dataset, self.wrap = dataset, wrap

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.wrap(self.dataset[index])

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items for a ``torch.utils.data.DataLoader`` (``collate_fn=labelport.collate``): arrays of one shape
    become a stacked tensor, arrays of different shapes a list of tensors, everything else (``segments``,
    names, metadata) a list with one element per item."""
    import torch

    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if all(isinstance(v, np.ndarray) for v in values):
            tensors = [torch.as_tensor(v) for v in values]
            same = all(t.shape == tensors[0].shape and t.dtype == tensors[0].dtype for t in tensors)
            out[key] = torch.stack(tensors) if same else tensors
        else:
            out[key] = values
    return out
