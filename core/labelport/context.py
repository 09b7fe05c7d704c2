"""What a writer gets besides the task: where to write, its options, and atomic, recorded file creation.

:class:`WriterContext` serves a writer's ``write`` (one task) and :class:`ProjectContext` its ``project``
step (once per export); both write files the same way (:class:`FileContext`)."""

from __future__ import annotations

import filecmp
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import WriterError
from .model import LabelMap, Series, Taxonomy
from .outdir import move_into_place, remove_folder, scratch_file
from .paths import safe_join

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FileContext", "ProjectContext", "WriterContext"]


class FileContext:
    """Where one writer writes, with its options.

    Every file goes through :meth:`create` (or a helper built on it): it is written in the root's scratch
    folder and renamed into place only when complete, and its path is recorded in :attr:`written`. Paths are
    relative to :attr:`root` and use ``/``; they cannot leave the root.
    """

    #: leave a file that is already there with the same bytes alone (its time stamp too)
    keep_identical = False

    def __init__(self, root: str, options: Any, writer: str = "") -> None:
        self.root = root
        self.options = options
        self.writer = writer
        self.written: list[str] = []
        #: problems that do not stop the writer, reported with the task (or project) (see :meth:`warn`)
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        """Report something the user should know that does not fail the task (once per message)."""
        if message not in self.warnings:
            self.warnings.append(message)

    # -- writing ------------------------------------------------------------------------------------------
    @contextmanager
    def create(self, relpath: str) -> Iterator[str]:
        """Yield a temporary path to write ``relpath`` to; it is renamed into place when the block ends
        without an exception, and removed otherwise."""
        final = safe_join(self.root, relpath)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = scratch_file(self.root, final)
        try:
            yield tmp
            if not os.path.isfile(tmp):
                raise WriterError(f"nothing was written to {relpath}")
            if not (self.keep_identical and os.path.isfile(final) and filecmp.cmp(tmp, final, shallow=False)):
                move_into_place(tmp, final)
        finally:
            if os.path.lexists(tmp):
                os.remove(tmp)
        self.written.append(relpath)

    @contextmanager
    def create_many(self, relpaths: list[str]) -> Iterator[list[str]]:
        """Like :meth:`create` for files that must keep their final names while being written (a
        MetaImage header names its data file): yields paths with those names in a private temporary
        folder; all are moved into place when the block succeeds, none otherwise."""
        finals = [safe_join(self.root, rel) for rel in relpaths]
        tmpdir = scratch_file(self.root, "many")
        os.makedirs(tmpdir)
        try:
            tmps = [os.path.join(tmpdir, os.path.basename(f)) for f in finals]
            if len(set(tmps)) != len(tmps):
                raise WriterError(f"create_many needs distinct file names: {relpaths}")
            yield tmps
            for tmp, rel in zip(tmps, relpaths):
                if not os.path.isfile(tmp):
                    raise WriterError(f"nothing was written to {rel}")
            for tmp, final, rel in zip(tmps, finals, relpaths):
                os.makedirs(os.path.dirname(final), exist_ok=True)
                move_into_place(tmp, final)
                self.written.append(rel)
        finally:
            remove_folder(tmpdir)

    def write_bytes(self, relpath: str, data: bytes) -> str:
        with self.create(relpath) as tmp, open(tmp, "wb") as f:
            f.write(data)
        return relpath

    def write_json(self, relpath: str, obj: Any) -> str:
        text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
        return self.write_bytes(relpath, text.encode("utf-8"))

    def write_nifti(
        self, relpath: str, array: np.ndarray, *, like: LabelMap | None = None,
        affine: np.ndarray | None = None, compresslevel: int = 1, zero_runs: list[tuple[int, int]] | None = None,
    ) -> str:
        """Write ``array`` as NIfTI (gzip through ISA-L for ``.nii.gz``). ``like`` copies the geometry and
        header of a source label map; otherwise ``affine`` (RAS+, as nibabel uses) is required.
        ``zero_runs``: voxels known to hold only zeros, not deflated again (see
        :func:`labelport.write_nifti`): ``like.zero_runs`` for the map's own array, or for an array that is
        zero wherever the map is."""
        from .niftiio import write_nifti  # nibabel is imported only when a NIfTI is written

        header = like.header if like is not None else None
        with self.create(relpath) as tmp:
            write_nifti(tmp, array, affine=affine, header=header, compresslevel=compresslevel,
                        gzip=relpath.endswith(".gz"), zero_runs=zero_runs)
        return relpath

    def rollback(self) -> None:
        """Remove every file this context wrote (used when the task fails part-way)."""
        for relpath in reversed(self.written):
            path = safe_join(self.root, relpath)
            if os.path.lexists(path):
                os.remove(path)
        self.written.clear()


class WriterContext(FileContext):
    """One writer's view of one task: a :class:`FileContext` that also names the task's files."""

    def __init__(
        self, root: str, task_folder: str, series_stems: Mapping[int, str], options: Any, writer: str = ""
    ) -> None:
        super().__init__(root, options, writer)
        self.task_folder = task_folder
        self._stems = dict(series_stems)

    # -- naming -------------------------------------------------------------------------------------------
    def task_dir(self, top: str = "segmentations") -> str:
        """``segmentations/<task folder>``: the task's folder, named safely and uniquely by the core."""
        return f"{top}/{self.task_folder}"

    def series_stem(self, series: Series) -> str:
        """The series' safe, unique file stem (its name, else A, B, ... by index)."""
        return self._stems[series.index]

    def series_path(self, series: Series, suffix: str, top: str = "segmentations") -> str:
        """``segmentations/<task>/<series><suffix>``, e.g. ``suffix=".nii.gz"``."""
        return f"{self.task_dir(top)}/{self.series_stem(series)}{suffix}"

    def series_dir(self, series: Series, top: str = "segmentations") -> str:
        """``segmentations/<task>/<series>``, for writers that emit several files per series."""
        return f"{self.task_dir(top)}/{self.series_stem(series)}"


class ProjectContext(FileContext):
    """One writer's view of the whole export, for its ``project`` step: a :class:`FileContext` with the
    project's :attr:`taxonomy`. A file written again with the same bytes keeps its time stamp."""

    keep_identical = True

    def __init__(self, root: str, options: Any, writer: str, taxonomy: Taxonomy) -> None:
        super().__init__(root, options, writer)
        self.taxonomy = taxonomy
