"""``png``: label maps as PNG images, 2D and 3D.

A 2D series (one slice) gives ``segmentations/<task>/<series>/<series>.png``; a 3D series one PNG per slice,
``<series>/<series>-<k>.png`` with a zero-padded slice index. Modes:

* ``color`` (default): palette PNG in the taxonomy colours (class id + 1 is the palette index), plus
  ``class_map.json`` mapping each category to its colour;
* ``index``: grey PNG whose values are class id + 1 (``bits=8`` or ``16``), for training;
* ``binary``: one 0/255 stack per instance, ``<series>/mask-<id>.png`` (2D) or
  ``<series>/mask-<id>/<series>-<k>.png`` (3D), each including its overlap voxels.

Orientation: slices are shown as a radiologist's viewer shows them, whatever the voxel order on disk. Axial
(default): k runs from inferior to superior, image rows from anterior (top) to posterior, columns from the
patient's right (left edge) to left. Coronal: slices from anterior to posterior, rows from superior to
inferior, columns right to left. Sagittal: slices from right to left, rows superior to inferior, columns
anterior to posterior. Oblique grids use their nearest axes. A 2D series keeps its stored layout: rows are
the second voxel axis (j), columns the first (i), as DICOM stores an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import labelport

from ._common import class_entries, instance_entry, labelled, replace_masks

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

VIEWS = {"axial": ("L", "P", "S"), "coronal": ("L", "I", "P"), "sagittal": ("P", "I", "L")}


@dataclass(frozen=True)
class Options:
    #: "color" (taxonomy colours), "index" (class id + 1 as grey) or "binary" (one 0/255 stack per instance)
    mode: Literal["color", "index", "binary"] = "color"
    #: slice direction for 3D series
    axis: Literal["axial", "coronal", "sagittal"] = "axial"
    #: bits per pixel in index mode
    bits: Literal[8, 16] = 8
    #: which class an overlap voxel shows (color and index modes)
    overlap: labelport.OverlapRule = "lowest"
    #: zlib level 0-9 (1 is several times faster than the default at a similar size for label images)
    compresslevel: int = 1


def display_volume(volume: np.ndarray, affine: np.ndarray, axis: str) -> np.ndarray:
    """``volume`` reordered so that ``[:, :, k].T`` is slice k as a viewer shows it (rows, columns)."""
    import numpy as np
    from nibabel import orientations

    if volume.shape[2] == 1:
        return volume
    transform = orientations.ornt_transform(orientations.io_orientation(affine),
                                            orientations.axcodes2ornt(VIEWS[axis]))
    return np.asarray(orientations.apply_orientation(volume, transform))


def _save(ctx: labelport.WriterContext, path: str, image: Image.Image, level: int) -> str:
    with ctx.create(path) as tmp:
        image.save(tmp, format="PNG", compress_level=level)
    return path


def slice_name(stem: str, k: int, count: int) -> str:
    """The file name of slice ``k`` of ``count`` (``<stem>.png`` for a 2D series, else a zero-padded index)."""
    if count == 1:
        return f"{stem}.png"
    return f"{stem}-{k:0{max(3, len(str(count - 1)))}d}.png"


def save_slice(ctx: labelport.WriterContext, path: str, plane: np.ndarray, make: Any, level: int) -> str:
    """Slice ``plane`` of a display-oriented volume (``volume[:, :, k]``) as a PNG at ``path``."""
    import numpy as np

    return _save(ctx, path, make(np.ascontiguousarray(plane.T)), level)


def _slices(ctx: labelport.WriterContext, folder: str, stem: str, volume: np.ndarray, make: Any,
            level: int) -> list[str]:
    """One PNG per slice (or one for a 2D series) of an already display-oriented volume."""
    count = volume.shape[2]
    return [save_slice(ctx, f"{folder}/{slice_name(stem, k, count)}", volume[:, :, k], make, level)
            for k in range(count)]


def _binary(ctx: labelport.WriterContext, series: labelport.Series, affine: np.ndarray, record: dict[str, Any],
            opts: Options) -> None:
    import numpy as np
    from PIL import Image

    views = labelport.views(series)
    folder, stem = ctx.series_dir(series), ctx.series_stem(series)
    flat = views.array.shape[2] == 1
    files: list[str] = []
    seg_map = {}
    for n, found in views.instance_masks():
        mask = np.zeros(views.array.shape, dtype=np.uint8, order="F")
        if found is not None:
            box, inside = found
            mask[box][inside] = 255
        paths = _slices(ctx, folder if flat else f"{folder}/mask-{n}", f"mask-{n}" if flat else stem,
                        display_volume(mask, affine, opts.axis), Image.fromarray, opts.compresslevel)
        files += paths
        seg_map[str(n)] = instance_entry(series.segments[n], paths[0] if flat else paths)
    replace_masks(record, files, seg_map, pngMask=True)


def _palette_maker(series: labelport.Series) -> Any:
    import numpy as np
    from PIL import Image

    palette = [0, 0, 0] * 256
    for segment in series.segments.values():
        palette[3 * (segment.class_id + 1): 3 * (segment.class_id + 2)] = segment.color

    def make(plane: np.ndarray) -> Image.Image:
        image = Image.fromarray(plane.astype(np.uint8, copy=False), mode="P")
        image.putpalette(palette)
        return image

    return make


def _classes(ctx: labelport.WriterContext, series: labelport.Series, affine: np.ndarray, record: dict[str, Any],
             opts: Options) -> None:
    """Colour or index mode: one image per slice of the class map."""
    import numpy as np
    from PIL import Image

    folder, stem = ctx.series_dir(series), ctx.series_stem(series)
    semantic = display_volume(labelport.views(series).semantic(opts.overlap), affine, opts.axis)
    top = int(semantic.max()) if semantic.size else 0
    if opts.mode == "color":
        if top > 255:
            raise labelport.WriterError(f"{top - 1} classes do not fit a PNG palette; use mode=index bits=16",
                                        series=series.name)
        files = _slices(ctx, folder, stem, semantic, _palette_maker(series), opts.compresslevel)
        by_class = sorted(series.segments.values(), key=lambda s: s.class_id)
        record["classMap"] = ctx.write_json(f"{folder}/class_map.json", {s.category: list(s.color) for s in by_class})
    else:
        if opts.bits == 8 and top > 255:
            raise labelport.WriterError(f"class ids up to {top - 1} do not fit 8 bits; use bits=16",
                                        series=series.name)
        planes = semantic.astype(np.uint8 if opts.bits == 8 else np.uint16, copy=False)
        files = _slices(ctx, folder, stem, planes, Image.fromarray, opts.compresslevel)
    replace_masks(record, files, class_entries(series, None), pngMask=True)


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        (_binary if opts.mode == "binary" else _classes)(ctx, series, label_map.affine, record, opts)
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="png",
        description="PNG per slice (2D and 3D): taxonomy colours, class-id grey, or binary per instance",
        write=write,
        options=Options,
    )]
