"""Training cases for the ``nnunet`` and ``monai`` writers: image channels and one class label array on one
voxel grid.

A case is a task (its series with images are its channels) or, on request, each labelled series of a task (its
image is the one channel). The grid is the first label map's; images and other label maps are put on it by
world geometry (any axis order or direction), and one on another grid fails the task with both grids.
Classes are numbered 1..K in the order of the taxonomy's class ids (0 is background). A voxel covered by
several classes (from overlapping instances, or from label maps of several series) is either flattened to the
``lowest`` or ``highest`` class, or (``regions``) given the value of its combination of classes: combinations
are numbered after K by size, then in lexicographic order of their classes, which depends on the taxonomy
alone, so a task's values never depend on the other tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import labelport

Overlap = Literal["regions", "lowest", "highest"]
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_MAX_BITS = 63


def class_names(taxonomy: labelport.Taxonomy) -> list[str]:
    """The class names in label order (value 1 is the first)."""
    return [c.name for c in sorted(taxonomy.categories, key=lambda c: c.class_id)]


def combination_value(classes: Sequence[int], count: int) -> int:
    """The label value of a set of class values (1..``count``): the class itself for one class, else ``count``
    plus its rank among all combinations ordered by size, then lexicographically."""
    combo = sorted(set(classes))
    if len(combo) == 1:
        return combo[0]
    value = count + sum(math.comb(count, size) for size in range(2, len(combo)))
    previous = 0
    for position, c in enumerate(combo):  # lexicographic rank of the combination among those of its size
        for skipped in range(previous + 1, c):
            value += math.comb(count - skipped, len(combo) - position - 1)
        previous = c
    return value + 1


def combination(value: int, count: int) -> tuple[int, ...]:
    """The classes a label value stands for (the inverse of :func:`combination_value`)."""
    if 1 <= value <= count:
        return (value,)
    rank, size = value - count - 1, 2
    while rank >= math.comb(count, size):
        rank -= math.comb(count, size)
        size += 1
        if size > count:
            raise ValueError(f"label value {value} stands for no combination of {count} classes")
    combo, c = [], 1
    for position in range(size):
        while True:
            block = math.comb(count - c, size - position - 1)
            if rank < block:
                break
            rank -= block
            c += 1
        combo.append(c)
        c += 1
    return tuple(combo)


def region_labels(names: Sequence[str], top: int) -> dict[str, int | list[int]]:
    """nnU-Net's ``labels`` for values up to ``top``: each class with every value whose combination holds it."""
    count = len(names)
    labels: dict[str, int | list[int]] = {"background": 0}
    covers = {c: [c] for c in range(1, count + 1)}
    for value in range(count + 1, top + 1):
        for c in combination(value, count):
            covers[c].append(value)
    for c, name in enumerate(names, start=1):
        labels[name] = covers[c] if top > count else c
    return labels


@dataclass
class Case:
    """A task as a training case: image channels (name, array) and classes on one grid (RAS ``affine``)."""

    channels: list[tuple[str, np.ndarray]]
    labels: np.ndarray
    affine: np.ndarray


def _class_bits(series: labelport.Series, order: dict[int, int]) -> dict[int, int]:
    """Label value -> bit set of the classes (bit c-1 for class value c) of every instance and overlap group."""
    bits = {n: 1 << (order[s.class_id] - 1) for n, s in series.segments.items()}
    for group, members in series.overlap_groups.items():
        bits[group] = 0
        for n in members:
            bits[group] |= bits.get(n, 0)
    return bits


def _bits_dtype(count: int) -> type:
    return next(t for t, n in ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32), (np.uint64, 64)) if count <= n)


def _value_dtype(top: int) -> type:
    return next(t for t in (np.uint8, np.uint16, np.uint32) if top <= np.iinfo(t).max)


def _lookup(array: np.ndarray, table: dict[int, int], dtype: type, out: np.ndarray | None = None,
            box: tuple[slice, ...] | None = None) -> np.ndarray:
    """``table[v]`` (0 for values it lacks) for each voxel value ``v`` inside ``box`` (0 outside); OR-ed into
    ``out`` when given. Works through a lookup table slab by slab, since numpy indexes through an 8-byte copy
    of the indices."""
    out = np.zeros(array.shape, dtype=dtype, order="F") if out is None else out
    box = box or tuple(slice(0, n) for n in array.shape)
    crop, target = array[box], out[box]
    top = int(crop.max()) if crop.size else 0
    if top >= 1 << 22:  # sparse huge values: through the distinct values instead of a table
        values, inverse = np.unique(crop, return_inverse=True)
        mapped: np.ndarray = np.array([table.get(int(v), 0) for v in values], dtype=dtype)
        target |= mapped[inverse].reshape(crop.shape)
        return out
    lut: np.ndarray = np.zeros(top + 1, dtype=dtype)
    for value, mapped_to in table.items():
        if 0 <= value <= top:
            lut[value] = mapped_to
    step = max(1, (1 << 20) // max(1, crop.shape[0] * crop.shape[1]))
    for k in range(0, crop.shape[2], step):
        target[:, :, k:k + step] |= lut[crop[:, :, k:k + step]]
    return out


def _union(boxes: list[tuple[slice, ...]]) -> tuple[slice, ...] | None:
    if not boxes:
        return None
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))


def class_array(labelled: Sequence[tuple[labelport.Series, np.ndarray]], shape: Sequence[int],
                taxonomy: labelport.Taxonomy, overlap: Overlap) -> np.ndarray:
    """The class label array of label arrays already on one grid (see the module docstring). Only the box
    around their labelled voxels is scanned; one label map goes through one lookup table."""
    import fastremap

    order = {c.class_id: n for n, c in enumerate(sorted(taxonomy.categories, key=lambda c: c.class_id), 1)}
    count = len(order)
    if count > _MAX_BITS:
        raise labelport.WriterError(f"{count} classes: at most {_MAX_BITS} are supported")

    def value(bits: int) -> int:
        classes = [c for c in range(1, count + 1) if bits >> (c - 1) & 1]
        if overlap == "regions":
            return combination_value(classes, count)
        return classes[-1] if overlap == "highest" else classes[0]

    found: list[tuple[labelport.Series, np.ndarray, tuple[slice, ...]]] = []
    for series, labels in labelled:
        extent = labelport.LabelViews(series, labels).extent
        if extent is not None:
            found.append((series, labels, extent))
    box = _union([b for _, _, b in found])
    if box is None:
        return np.zeros(tuple(shape), dtype=np.uint8, order="F")
    if len(found) == 1:  # the usual case: label values straight to class values
        series, labels, _ = found[0]
        table = {v: value(b) for v, b in _class_bits(series, order).items() if b}
        return _lookup(labels, table, _value_dtype(max(table.values(), default=0)), box=box)
    dtype = _bits_dtype(count)
    bits: np.ndarray = np.zeros(tuple(shape), dtype=dtype, order="F")
    for series, labels, own in found:
        _lookup(labels, _class_bits(series, order), dtype, bits, own)
    mapping = {int(b): value(int(b)) for b in fastremap.unique(bits[box]) if b}
    return _lookup(bits, mapping, _value_dtype(max(mapping.values(), default=0)), box=box)


def _on_grid(series: labelport.Series, array: np.ndarray, affine: np.ndarray, ref: labelport.Series,
             shape: Sequence[int], ref_affine: np.ndarray, what: str) -> np.ndarray:
    found = labelport.align_grids(array.shape, affine, shape, ref_affine)
    if found is None:
        raise labelport.WriterError(
            f"{what} is on another grid than series {ref.name!r}'s label map, so they cannot make one case: "
            f"{labelport.describe_grid(array.shape, _LPS @ affine)} against "
            f"{labelport.describe_grid(shape, _LPS @ ref_affine)}", series=series.name)
    return np.asarray(found.array(array))


def _case(sources: list[tuple[str, labelport.Series]], labelled: list[labelport.Series],
          taxonomy: labelport.Taxonomy, overlap: Overlap) -> Case:
    """Channels from ``sources`` (name, series) and classes from ``labelled``, on the first label map's grid."""
    ref = labelled[0]
    assert ref.label_map is not None
    shape, affine = ref.label_map.array.shape, ref.label_map.affine
    images = []
    for name, series in sources:
        image, image_affine = labelport.read_image(series)
        images.append((name, _on_grid(series, image, image_affine, ref, shape, affine, f"series {series.name!r}")))
    arrays = []
    for series in labelled:
        assert series.label_map is not None
        arrays.append((series, _on_grid(series, series.label_map.array, series.label_map.affine, ref, shape,
                                        affine, f"the label map of series {series.name!r}")))
    return Case(images, class_array(arrays, shape, taxonomy, overlap), affine)


def modality(series: labelport.Series) -> str:
    """The DICOM Modality of a series' images (``CT``, ``MR``, ...), else ``image``."""
    import pydicom

    files = series.image_files
    if files and not files[0].endswith((".nii", ".nii.gz")):
        try:
            found = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=["Modality"]).get("Modality")
        except Exception:  # not DICOM after all: the image reader reports it
            found = None
        if found:
            return str(found)
    return "image"


def build_cases(task: labelport.Task, overlap: Overlap, per: Literal["task", "series"] = "task",
                channels: Sequence[str] = ()) -> list[tuple[labelport.Series | None, Case]]:
    """The task's training cases: one per task (``per="task"``: its series with images are the channels, or
    the series named in ``channels``, in that order) or one per labelled series (``per="series"``: its image
    is the one channel, named by :func:`modality`), each with the series it comes from. None without a label
    map."""
    labelled = [s for s in task.series if s.label_map is not None]
    if not labelled:
        return []
    if per == "series":
        for series in labelled:
            if not series.image_files:
                raise labelport.WriterError("the series has no images (a training case needs them)",
                                            series=series.name)
        return [(s, _case([(modality(s), s)], [s], task.taxonomy, overlap)) for s in labelled]
    if channels:
        by_name = {s.name: s for s in task.series}
        missing = [name for name in channels if name not in by_name]
        if missing:
            raise labelport.WriterError(f"no series named {', '.join(map(repr, missing))} for the channels "
                                        f"(the task's series: {', '.join(map(repr, by_name))})")
        sources = [by_name[name] for name in channels]
    else:
        sources = [s for s in task.series if s.image_files]
    if not sources:
        raise labelport.WriterError("the task has no images (a training case needs them)")
    return [(None, _case([(s.name, s) for s in sources], labelled, task.taxonomy, overlap))]


def case_name(ctx: labelport.WriterContext, series: labelport.Series | None) -> str:
    """A case's name: the task's folder, with the series' stem for one case per series."""
    return ctx.task_folder if series is None else f"{ctx.task_folder}_{ctx.series_stem(series)}"


def unique_cases(cases: Iterable[tuple[str, str]]) -> None:
    """Raise when two tasks made cases of the same name ((task, case) pairs)."""
    seen: dict[str, str] = {}
    for task, case in cases:
        if case in seen and seen[case] != task:
            raise labelport.WriterError(f"tasks {seen[case]!r} and {task!r} both make case {case!r}")
        seen[case] = task


def channel_list(text: str) -> list[str]:
    """The ``channels`` option: series names, comma-separated."""
    return [name.strip() for name in text.split(",") if name.strip()]


def write_cases(task: labelport.Task, ctx: labelport.WriterContext, key: str,
                image_paths: Callable[[str, int], list[str]]) -> dict[str, Any]:
    """Write the task's cases (``ctx.options`` has ``overlap``, ``case``, ``channels`` and ``compresslevel``):
    the channels at ``image_paths(case, count)`` and the classes at ``labelsTr/<case>.nii.gz``; returns the
    task's entry, its cases listed under ``key``."""
    opts = ctx.options
    entry = task.to_record()
    cases = []
    for series, case in build_cases(task, opts.overlap, opts.case, channel_list(opts.channels)):
        name = case_name(ctx, series)
        images = [ctx.write_nifti(path, array, affine=case.affine, compresslevel=opts.compresslevel)
                  for path, (_, array) in zip(image_paths(name, len(case.channels)), case.channels)]
        label = ctx.write_nifti(f"labelsTr/{name}.nii.gz", case.labels, affine=case.affine,
                                compresslevel=opts.compresslevel)
        cases.append({"case": name, "channels": [c for c, _ in case.channels], "images": images, "label": label,
                      "topLabel": int(case.labels.max())})
    if not cases:
        ctx.warn("no label map, so no training case")
    entry[key] = cases
    return entry


def entry_cases(entries: labelport.TaskEntries, key: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every case of every entry (under ``key``) and their common channels; raises when two tasks made cases
    of one name or the cases' channels differ."""
    cases = [(str(e.get("name") or e.get("taskId")), case) for e in entries for case in e.get(key) or []]
    unique_cases((task, case["case"]) for task, case in cases)
    return [case for _, case in cases], same_channels((task, case["channels"]) for task, case in cases)


def same_channels(entries: Iterable[tuple[str, list[str]]]) -> list[str]:
    """The channel names every case has (as (task, channels) pairs); raises naming the tasks that differ."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for task, names in entries:
        groups.setdefault(tuple(names), []).append(task)
    if len(groups) > 1:
        listed = "; ".join(f"{list(names)} in {', '.join(map(repr, tasks[:5]))}{' ...' if len(tasks) > 5 else ''}"
                           for names, tasks in sorted(groups.items(), key=lambda g: -len(g[1])))
        raise labelport.WriterError(f"the cases must all have the same channels, but they have {listed} "
                                    "(choose the series with the channels option)")
    return list(next(iter(groups), ()))
