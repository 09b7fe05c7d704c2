"""``overlapping``: the fewest overlap-free layers, ``layer-<n>.nii.gz`` (n from 1), voxels = instance ids.

Every instance is whole in exactly one layer, and no layer holds two instances on one voxel; no overlap group
ids remain. The layers come from a graph colouring of the overlap graph (DSATUR): k mutually overlapping
instances give exactly k layers, a series without overlaps one layer. Each segmentMap entry's ``mask`` is its
layer file and ``layer`` its layer number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import labelport

from ._common import GzipOptions, instance_entry, labelled, replace_masks


@dataclass(frozen=True)
class Options(GzipOptions):
    """Only the gzip level."""


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record in labelled(task, entry):
        views = labelport.views(series)
        files, seg_map = [], {}
        for number, instance_ids in enumerate(views.layers(), start=1):
            path = ctx.write_nifti(f"{ctx.series_dir(series)}/layer-{number}.nii.gz",
                                   views.layer_array(instance_ids), like=label_map,
                                   compresslevel=opts.compresslevel,
                                   zero_runs=label_map.zero_runs)  # (a layer is zero wherever the map is)
            files.append(path)
            for n in instance_ids:
                seg_map[str(n)] = {**instance_entry(series.segments[n], path), "layer": number}
        seg_map = {k: seg_map[k] for k in sorted(seg_map, key=int)}
        replace_masks(record, files, seg_map)
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="overlapping",
        description="fewest overlap-free instance layers as NIfTI (every instance whole in one layer)",
        write=write,
        options=Options,
    )]
