"""labelport: export medical-imaging annotation projects through writer plugins.

Open a project and iterate its tasks as arrays::

    import labelport
    for task in labelport.open_source("export-folder"):
        for series in task.series:
            if series.label_map is not None:
                print(task.name, series.name, series.label_map.array.shape, series.label_map.affine)

Export it::

    report = labelport.export("export-folder", "out", writers=["nifti"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    LabelError,
    LabelportError,
    OptionError,
    PluginError,
    SourceError,
    UnknownWriterError,
    WriterError,
)

if TYPE_CHECKING:
    from .context import FileContext, ProjectContext, WriterContext
    from .contours import keyhole_outlines, mask_outlines, rasterize
    from .dataset import Dataset, collate
    from .deflate import gzip_stream, zlib_stream
    from .dicomseries import (
        Alignment,
        DicomImage,
        DicomSeries,
        align_grids,
        align_to_series,
        describe_grid,
        read_dicom_series,
    )
    from .hookspecs import hookimpl, hookspec
    from .images import AlignedVolumes, load_aligned, read_image
    from .labels import Box, LabelViews, color_layers, views
    from .model import (
        VECTOR_ANNOTATION_KEYS,
        Category,
        LabelMap,
        LabelVolume,
        OverlapRule,
        Segment,
        Series,
        Task,
        Taxonomy,
    )
    from .niftiio import read_label_nifti, write_nifti
    from .paths import safe_name
    from .pipeline import ExportReport, Failure, TaskDone, export
    from .plugins import Registry, WriterInfo
    from .project import TaskEntries
    from .sources import LocalExport, Source, TaskFilter, TaskRef, open_source
    from .writer import NoOptions, ProjectFunction, WriterSpec

# Public names by module, loaded on first use: `labelport --version` and a plugin module's `import labelport`
# import none of them (not even pluggy), and a command pays only for what it touches (nibabel, pydicom and
# scipy load late).
_MODULES = {
    "context": ["FileContext", "ProjectContext", "WriterContext"],
    "contours": ["keyhole_outlines", "mask_outlines", "rasterize"],
    "dataset": ["Dataset", "collate"],
    "deflate": ["gzip_stream", "zlib_stream"],
    "dicomseries": ["Alignment", "DicomImage", "DicomSeries", "align_grids", "align_to_series", "describe_grid",
                    "read_dicom_series"],
    "hookspecs": ["hookimpl", "hookspec"],
    "pipeline": ["ExportReport", "Failure", "TaskDone", "export"],
    "images": ["AlignedVolumes", "load_aligned", "read_image"],
    "labels": ["Box", "LabelViews", "color_layers", "views"],
    "model": ["VECTOR_ANNOTATION_KEYS", "Category", "LabelMap", "LabelVolume", "OverlapRule", "Segment", "Series",
              "Task", "Taxonomy"],
    "niftiio": ["read_label_nifti", "write_nifti"],
    "paths": ["safe_name"],
    "plugins": ["Registry", "WriterInfo"],
    "project": ["TaskEntries"],
    "sources": ["LocalExport", "Source", "TaskFilter", "TaskRef", "open_source"],
    "writer": ["NoOptions", "ProjectFunction", "WriterSpec"],
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labelport' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "VECTOR_ANNOTATION_KEYS",
    "AlignedVolumes",
    "Alignment",
    "Box",
    "Category",
    "Dataset",
    "DicomImage",
    "DicomSeries",
    "ExportReport",
    "Failure",
    "FileContext",
    "LabelError",
    "LabelMap",
    "LabelViews",
    "LabelVolume",
    "LabelportError",
    "LocalExport",
    "NoOptions",
    "OptionError",
    "OverlapRule",
    "PluginError",
    "ProjectContext",
    "ProjectFunction",
    "Registry",
    "Segment",
    "Series",
    "Source",
    "SourceError",
    "Task",
    "TaskDone",
    "TaskEntries",
    "TaskFilter",
    "TaskRef",
    "Taxonomy",
    "UnknownWriterError",
    "WriterContext",
    "WriterError",
    "WriterInfo",
    "WriterSpec",
    "__version__",
    "align_grids",
    "align_to_series",
    "collate",
    "color_layers",
    "describe_grid",
    "export",
    "gzip_stream",
    "hookimpl",
    "hookspec",
    "keyhole_outlines",
    "load_aligned",
    "mask_outlines",
    "open_source",
    "rasterize",
    "read_dicom_series",
    "read_image",
    "read_label_nifti",
    "safe_name",
    "views",
    "write_nifti",
    "zlib_stream",
]
