"""Derived views of a series' label map, computed once per task and shared by every writer.

RedBrick stores a voxel covered by several instances as an overlap *group id*; the voxels of instance ``n``
are ``value == n`` plus the voxels of every group listing ``n``. :func:`views` gives, for one series:

* ``boxes``: the bounding box of every voxel value, from one ``scipy.ndimage.find_objects`` pass;
* ``instance_mask(n)``: instance ``n``'s voxels (groups included) inside its bounding box;
* ``semantic(rule)``: class id + 1 per voxel, overlaps resolved by ``rule``;
* ``layers()``: the fewest overlap-free layers (graph colouring of the overlap graph).

Writers never scan the whole volume once per label: they work on the crops.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import numpy as np

from .errors import WriterError
from .model import OverlapRule, Series, nonzero_extent

__all__ = ["Box", "LabelViews", "OverlapRule", "color_layers", "views"]

Box = tuple[slice, slice, slice]
_LUT_LIMIT = 1 << 20  # larger label values are remapped through a dict instead of a lookup table


def _union(boxes: list[Box]) -> Box:
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))  # type: ignore[return-value]


def _slabs(box: Box, voxels: int = 1 << 20) -> Iterator[Box]:
    """``box`` cut along k into pieces of about ``voxels`` voxels."""
    i, j, k = box
    step = max(1, voxels // max(1, (i.stop - i.start) * (j.stop - j.start)))
    for start in range(k.start, k.stop, step):
        yield i, j, slice(start, min(k.stop, start + step))


def color_layers(nodes: list[int], edges: set[frozenset[int]]) -> list[list[int]]:
    """Assign every node to a layer so that no edge joins two nodes of one layer, with few layers (DSATUR:
    next the node whose neighbours use the most distinct layers, ties by degree, then by smallest id; it
    takes the lowest free layer). A clique of k nodes gets exactly k layers. Layers list nodes in order."""
    neighbours: dict[int, set[int]] = {n: set() for n in nodes}
    for edge in edges:
        a, b = tuple(edge)
        neighbours[a].add(b)
        neighbours[b].add(a)
    layer_of: dict[int, int] = {}
    while len(layer_of) < len(nodes):
        def priority(n: int) -> tuple[int, int, int]:
            saturation = len({layer_of[m] for m in neighbours[n] if m in layer_of})
            return (-saturation, -len(neighbours[n]), n)

        node = min((n for n in nodes if n not in layer_of), key=priority)
        used = {layer_of[m] for m in neighbours[node] if m in layer_of}
        layer_of[node] = next(k for k in range(len(nodes) + 1) if k not in used)
    count = max(layer_of.values(), default=-1) + 1
    return [sorted(n for n in nodes if layer_of[n] == k) for k in range(count)]


class LabelViews:
    """The derived views of one series (see the module docstring). Create it through :func:`views`."""

    def __init__(self, series: Series, array: np.ndarray | None = None) -> None:
        """``array``: the series' labels on another grid (resampled), instead of its label map's array."""
        if series.label_map is None:
            raise ValueError(f"series {series.name!r} has no label map")
        self.series = series
        self.array = series.label_map.array if array is None else array
        self._own = array is None
        self.groups = series.overlap_groups
        self.instance_ids = sorted(series.segments)
        self._groups_of: dict[int, list[int]] = {n: [] for n in self.instance_ids}
        for group, members in self.groups.items():
            for n in members:
                self._groups_of.setdefault(n, []).append(group)

    @cached_property
    def extent(self) -> Box | None:
        """Bounding box of all non-zero voxels (None for an empty map); the other views work inside it."""
        if self._own and self.series.label_map is not None:
            return self.series.label_map.extent
        return nonzero_extent(self.array)

    def _top(self, crop: np.ndarray) -> int:
        """The largest value of ``crop``, the array inside its non-zero extent: the label map's own, which the
        label check found, when it is positive (then it lies inside the extent)."""
        if self._own and self.series.label_map is not None and self.series.label_map.top > 0:
            return self.series.label_map.top
        return int(crop.max())

    @cached_property
    def boxes(self) -> dict[int, Box]:
        """Bounding box of every non-zero voxel value present (one pass over the non-zero extent)."""
        from scipy import ndimage

        if self.extent is None:
            return {}
        crop = self.array[self.extent]
        offset = [s.start for s in self.extent]

        def shifted(box: tuple[slice, ...]) -> Box:
            return tuple(slice(b.start + o, b.stop + o) for b, o in zip(box, offset))  # type: ignore[return-value]

        top = self._top(crop)
        if top < _LUT_LIMIT:
            found = ndimage.find_objects(crop, max_label=top)
            return {v + 1: shifted(b) for v, b in enumerate(found) if b is not None}
        import fastremap

        renumbered, mapping = fastremap.renumber(crop, preserve_zero=True, in_place=False)
        found = ndimage.find_objects(renumbered)
        return {int(v): shifted(found[k - 1]) for v, k in mapping.items() if v and found[k - 1] is not None}

    def groups_of(self, instance_id: int) -> list[int]:
        """The overlap group ids that instance ``instance_id`` takes part in."""
        return self._groups_of.get(instance_id, [])

    def instance_box(self, instance_id: int) -> Box | None:
        """Bounding box of the instance including its overlap groups; None when it has no voxels."""
        parts = [self.boxes[v] for v in (instance_id, *self.groups_of(instance_id)) if v in self.boxes]
        return _union(parts) if parts else None

    def instance_mask(self, instance_id: int) -> tuple[Box, np.ndarray] | None:
        """(box, boolean mask within the box) of the instance's voxels, overlap groups included."""
        box = self.instance_box(instance_id)
        if box is None:
            return None
        crop = self.array[box]
        mask = crop == instance_id
        for group in self.groups_of(instance_id):
            mask |= crop == group
        return box, mask

    def instance_masks(self) -> Iterator[tuple[int, tuple[Box, np.ndarray] | None]]:
        """``(instance id, instance_mask)`` for every segment, in instance id order."""
        for n in self.instance_ids:
            yield n, self.instance_mask(n)

    def semantic(self, rule: OverlapRule = "lowest") -> np.ndarray:
        """Class id + 1 per voxel (uint8, or uint16 past 254 classes); 0 is background and any value the
        segmentMap does not know. An overlap voxel goes to the ``lowest`` or ``highest`` class id among
        its instances; ``error`` refuses overlaps between different classes."""
        segments = self.series.segments
        mapping: dict[int, int] = {n: seg.class_id + 1 for n, seg in segments.items() if n}  # (0: background)
        for group, members in self.groups.items():
            if not group:
                continue
            classes = sorted({segments[m].class_id for m in members if m in segments})
            if not classes:
                continue
            if rule == "error" and len(classes) > 1 and group in self.boxes:
                names = sorted({segments[m].category for m in members})
                raise WriterError(f"overlap group {group} mixes classes {', '.join(names)} "
                                  "(choose the 'lowest' or 'highest' overlap rule)", series=self.series.name)
            mapping[group] = (classes[-1] if rule == "highest" else classes[0]) + 1
        top_class = max(mapping.values(), default=0)
        dtype = np.uint8 if top_class <= np.iinfo(np.uint8).max else np.uint16
        out = np.zeros(self.array.shape, dtype=dtype, order="F")
        if self.extent is None:
            return out
        crop = self.array[self.extent]
        top = self._top(crop)
        if top < _LUT_LIMIT:
            lut = np.zeros(top + 1, dtype=dtype)
            for value, target in mapping.items():
                if value <= top:
                    lut[value] = target
            for slab in _slabs(self.extent):  # numpy indexes through an 8-byte copy: keep it small
                out[slab] = lut[self.array[slab]]
        else:
            import fastremap

            full = {int(v): mapping.get(int(v), 0) for v in fastremap.unique(crop)}
            out[self.extent] = fastremap.remap(crop, full, preserve_missing_labels=False)
        return out

    def layers(self) -> list[list[int]]:
        """Instance ids per overlap-free layer: the fewest layers such that no voxel is covered by two
        instances of one layer. Instances that overlap nothing (or have no voxels) are in the first layer."""
        edges = {frozenset((a, b)) for members in self.groups.values() if self.groups
                 for a in members for b in members if a < b and a in self._groups_of and b in self._groups_of}
        layers = color_layers(self.instance_ids, edges)
        return layers or [[]]

    def layer_array(self, instance_ids: list[int]) -> np.ndarray:
        """A label array (the source dtype) holding the whole of each given instance; they must not overlap."""
        out = np.zeros(self.array.shape, dtype=self.array.dtype, order="F")
        for n in instance_ids:
            found = self.instance_mask(n)
            if found is not None:
                box, mask = found
                out[box][mask] = n
        return out


def views(series: Series) -> LabelViews:
    """The derived views of ``series``, computed once and kept until the task's arrays are released."""
    if series.label_map is None:
        raise ValueError(f"series {series.name!r} has no label map")
    cache = series.label_map.cache
    found = cache.get("views")
    if not isinstance(found, LabelViews):
        found = cache["views"] = LabelViews(series.origin or series)
    return found
