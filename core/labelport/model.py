"""The canonical in-memory model of an annotation project: plain objects, no file formats.

A source turns each task record into a :class:`Task`; every writer reads the same objects. Label arrays are
loaded lazily, once, in their stored integer dtype, and dropped again with :meth:`Task.release`. The original
records are kept, so fields that no writer understands still reach tasks.json unchanged.
"""

from __future__ import annotations

import colorsys
import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import LabelError, LabelportError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "VECTOR_ANNOTATION_KEYS",
    "Category",
    "LabelMap",
    "LabelVolume",
    "OverlapRule",
    "Segment",
    "Series",
    "Task",
    "Taxonomy",
]

RGB = tuple[int, int, int]
#: how a voxel shared by instances of different classes is resolved in class maps
OverlapRule = Literal["lowest", "highest", "error"]

#: Series fields holding vector annotations; they pass through every writer unchanged.
VECTOR_ANNOTATION_KEYS = (
    "classifications", "instanceClassifications", "landmarks", "landmarks3d", "measurements",
    "boundingBoxes", "cuboids", "polygons", "polylines", "ellipses", "heatMaps", "transforms", "centerline",
)

def parse_color(value: Any) -> RGB:
    """``"#RRGGBB"``, ``"#RGB"`` or an ``[r, g, b]`` list -> (r, g, b)."""
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) == 3:
            text = "".join(ch * 2 for ch in text)
        if len(text) == 6:
            try:
                return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
            except ValueError:
                pass
    elif isinstance(value, (list, tuple)) and len(value) >= 3 and all(isinstance(v, int) for v in value[:3]):
        r, g, b = (int(v) for v in value[:3])
        if all(0 <= v <= 255 for v in (r, g, b)):
            return (r, g, b)
    raise ValueError(f"not a colour: {value!r}")


def default_color(name: str) -> RGB:
    """The colour of a category that the taxonomy gives none (or a derived taxonomy): a function of the name
    alone, so that it does not change with the rest of the project."""
    from .digest import blake2b

    digest = blake2b(name.encode("utf-8"), digest_size=8).digest()
    hue = int.from_bytes(digest[:4], "big") / 2**32
    saturation = 0.55 + 0.35 * digest[4] / 255
    value = 0.75 + 0.2 * digest[5] / 255
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return (round(r * 255), round(g * 255), round(b * 255))


Code = tuple[str, str, str]


@dataclass(frozen=True)
class Category:
    """A taxonomy class: ``class_id`` counts from 0 (RedBrick's classId); semantic maps store class_id + 1.
    ``codes`` are the optional coded concepts of the class, ``(property category, property type)``, each as
    ``(code value, coding scheme, meaning)`` (from an objectType's ``segmentedPropertyCategory`` and
    ``segmentedPropertyType``, in dcmqi's ``CodeValue``/``CodingSchemeDesignator``/``CodeMeaning`` form)."""

    name: str
    class_id: int
    color: RGB
    attributes: tuple[Mapping[str, Any], ...] = ()
    codes: tuple[Code, Code] | None = None
    #: the RT ROI Interpreted Type of the class (``GTV``, ``ORGAN``, ...), from the objectType's
    #: ``rtRoiInterpretedType``; None when the taxonomy does not say
    roi_type: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    """The project's categories. ``derived`` is true when no taxonomy file was given."""

    name: str
    categories: tuple[Category, ...]
    derived: bool = False

    def get(self, name: str) -> Category | None:
        return next((c for c in self.categories if c.name == name), None)

    def with_category(self, name: str) -> tuple[Taxonomy, Category]:
        """This taxonomy with ``name`` added (next free class id) if it is missing, and that category."""
        found = self.get(name)
        if found is not None:
            return self, found
        class_id = max((c.class_id for c in self.categories), default=-1) + 1
        cat = Category(name, class_id, default_color(name))
        return Taxonomy(self.name, (*self.categories, cat), self.derived), cat

    @classmethod
    def derive(cls, names: Iterable[str], name: str = "derived") -> Taxonomy:
        """Class ids in the order given, colours from the names."""
        taxonomy = cls(name, (), derived=True)
        for category in names:
            taxonomy, _ = taxonomy.with_category(category)
        return taxonomy


@dataclass(frozen=True)
class Segment:
    """One annotated instance of a series: a segmentMap entry resolved against the taxonomy."""

    instance_id: int
    category: str
    class_id: int
    color: RGB
    label_id: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    overlap_groups: tuple[int, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelVolume:
    """A loaded label map: the integer array in NIfTI voxel order (i, j, k), its affine and its header."""

    array: np.ndarray
    affine: np.ndarray
    header: Any  # nibabel Nifti1Header / Nifti2Header, kept so writers can preserve it
    #: :func:`slice_peaks` of ``array`` when the reader worked them out on the way (else None)
    peaks: np.ndarray | None = None
    #: :func:`block_peaks` of ``array`` when the reader worked them out on the way (else None)
    block_peaks: np.ndarray | None = None


def slice_rows(arr: np.ndarray) -> np.ndarray | None:
    """The k slices of a 3-D array in NIfTI (Fortran) order as the rows of a 2-D C-ordered view, as unsigned
    integers of the same size (a voxel is non-zero exactly when its unsigned view is); None for other layouts."""
    if arr.ndim != 3 or not arr.size or not arr.flags.f_contiguous or arr.dtype.kind not in "iu" \
            or not arr.dtype.isnative:
        return None
    rows: np.ndarray = arr.reshape(-1, arr.shape[2], order="F").T.view(f"u{arr.dtype.itemsize}")
    return rows


def slice_peaks(arr: np.ndarray) -> np.ndarray | None:
    """The largest value of each k slice of the array's unsigned view (:func:`slice_rows`), in one pass: a
    slice holds a non-zero voxel when its peak is positive, and for an unsigned array the largest peak is the
    array's largest value. None for other layouts."""
    rows = slice_rows(arr)
    return None if rows is None else rows.max(axis=1)


#: the bytes of a k slice, in storage order, whose largest value :func:`block_peaks` notes (a slice's last block
#: may be shorter)
PEAK_BLOCK = 16 << 10


def block_starts(rows: np.ndarray) -> np.ndarray:
    """Where each :data:`PEAK_BLOCK` of a row of :func:`slice_rows` starts, in values."""
    import numpy as np

    return np.arange(0, rows.shape[1], max(1, PEAK_BLOCK // rows.itemsize))


def block_peaks(arr: np.ndarray) -> np.ndarray | None:
    """The largest value of each :data:`PEAK_BLOCK` bytes of each k slice of the array's unsigned view
    (:func:`slice_rows`), as a (slices, blocks) array, in one pass; their largest along the blocks are the
    :func:`slice_peaks`. None for other layouts."""
    import numpy as np

    rows = slice_rows(arr)
    return None if rows is None else np.maximum.reduceat(rows, block_starts(rows), axis=1)


def nonzero_extent(arr: np.ndarray, peaks: np.ndarray | None = None) -> tuple[slice, slice, slice] | None:
    """Bounding box of the non-zero voxels of a 3D array, None when there are none. The occupied k slices come
    from their ``peaks`` (:func:`slice_peaks`, computed when not given); the i and j extent from one bitwise OR
    of those slices, eight bytes at a time."""
    import numpy as np

    rows = slice_rows(arr)
    if rows is None:  # any other layout: two passes
        along_k = arr.any(axis=(0, 1))
        ks = np.flatnonzero(along_k)
        if not ks.size:
            return None
        plane = np.asarray(arr[:, :, ks[0]: ks[-1] + 1].any(axis=2))
    else:
        ks = np.flatnonzero(peaks if peaks is not None else rows.max(axis=1))
        if not ks.size:
            return None
        occupied = rows[ks[0]: ks[-1] + 1]
        if occupied.shape[1] * occupied.itemsize % 8 == 0:  # (each row then starts 8-byte aligned)
            occupied = occupied.view(np.uint64)
        plane = np.bitwise_or.reduce(occupied, axis=0).view(rows.dtype).reshape(arr.shape[:2], order="F")
    js, is_ = np.flatnonzero(plane.any(axis=0)), np.flatnonzero(plane.any(axis=1))
    return (slice(int(is_[0]), int(is_[-1]) + 1), slice(int(js[0]), int(js[-1]) + 1),
            slice(int(ks[0]), int(ks[-1]) + 1))


class LabelMap:
    """A series' label map, loaded on first use and kept until :meth:`release`.

    Voxel values are instance ids, 0 is background, and a voxel shared by several instances holds an overlap
    group id: ``overlap_groups`` maps each group id to the instance ids that cover it.
    """

    def __init__(
        self,
        path: str,
        loader: Callable[[str], LabelVolume],
        overlap_groups: Mapping[int, frozenset[int]] | None = None,
    ) -> None:
        self.path = path
        self.overlap_groups: dict[int, frozenset[int]] = dict(overlap_groups or {})
        self._loader = loader
        self._volume: LabelVolume | None = None
        #: views derived from the array (see labelport.labels), dropped with it by release()
        self.cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "loaded" if self._volume is not None else "not loaded"
        return f"LabelMap({self.path!r}, {state})"

    def load(self) -> LabelVolume:
        if self._volume is None:
            self._volume = self._loader(self.path)
        return self._volume

    @property
    def array(self) -> np.ndarray:
        """The label array, read-only, in its stored integer dtype."""
        return self.load().array

    @property
    def affine(self) -> np.ndarray:
        """Voxel (i, j, k) -> world RAS+ millimetres, as nibabel reports it."""
        return self.load().affine

    @property
    def header(self) -> Any:
        return self.load().header

    @property
    def extent(self) -> tuple[slice, slice, slice] | None:
        """Bounding box of the non-zero voxels, None when there are none (computed once)."""
        if "extent" not in self.cache:
            self.cache["extent"] = nonzero_extent(self.array, self._peaks())
        return self.cache["extent"]  # type: ignore[no-any-return]

    @property
    def top(self) -> int:
        """The largest voxel value, 0 for an empty array (computed once: the label check and the views share
        it)."""
        if "top" not in self.cache:
            peaks = self._peaks() if self.array.dtype.kind == "u" else None
            self.cache["top"] = int(peaks.max()) if peaks is not None else \
                int(self.array.max()) if self.array.size else 0
        return self.cache["top"]  # type: ignore[no-any-return]

    @property
    def occupied_slices(self) -> np.ndarray:
        """Whether each k slice holds a non-zero voxel: one bool per slice of a 3-D map (from the pass that
        finds the extent), or a single True for any other shape."""
        if "occupied" not in self.cache:
            import numpy as np

            peaks, arr = self._peaks(), self.array
            self.cache["occupied"] = peaks != 0 if peaks is not None else \
                arr.any(axis=(0, 1)) if arr.ndim == 3 else np.ones(1, bool)
        return self.cache["occupied"]  # type: ignore[no-any-return]

    @property
    def zero_runs(self) -> list[tuple[int, int]]:
        """The ranges ``(start, end)`` of voxels, counted in storage order (NIfTI's: i fastest, then j, then k),
        that hold only zeros, ascending and apart: runs of empty k slices and, where the reader noted the
        largest value of each :data:`PEAK_BLOCK` bytes of a slice (:attr:`LabelVolume.block_peaks`), runs of
        empty blocks too. A writer that compresses the voxels, or an array that is zero wherever the map is,
        need not deflate these (see :func:`labelport.zlib_stream`; most of most label maps is empty); what is not
        in a run may hold zeros too."""
        if "zero_runs" not in self.cache:
            import numpy as np

            arr, blocks = self.array, self.load().block_peaks
            if arr.ndim != 3 or not arr.size:
                runs: list[tuple[int, int]] = []
            else:
                plane = arr.shape[0] * arr.shape[1]
                if blocks is not None and blocks.shape[0] == arr.shape[2]:
                    empty, step = (blocks == 0).ravel(), max(1, PEAK_BLOCK // arr.itemsize)
                else:
                    empty, step = ~self.occupied_slices, plane
                per_slice = len(empty) // arr.shape[2]
                flags = np.concatenate([[False], empty, [False]])
                edges = np.flatnonzero(flags[1:] != flags[:-1])  # where runs of empty blocks start and end
                starts = edges // per_slice * plane + edges % per_slice * step  # (a run may end at the very end)
                runs = [(int(a), int(b)) for a, b in zip(starts[::2], starts[1::2])]
            self.cache["zero_runs"] = runs
        return self.cache["zero_runs"]  # type: ignore[no-any-return]

    def _peaks(self) -> np.ndarray | None:
        """:func:`slice_peaks` of the array (computed once: the largest value and the extent share the pass)."""
        if "peaks" not in self.cache:
            volume = self.load()
            self.cache["peaks"] = volume.peaks if volume.peaks is not None else \
                volume.block_peaks.max(axis=1) if volume.block_peaks is not None else slice_peaks(volume.array)
        return self.cache["peaks"]  # type: ignore[no-any-return]

    @property
    def values(self) -> np.ndarray:
        """The sorted distinct voxel values present, 0 included when there is background (computed once)."""
        if "values" not in self.cache:
            import fastremap
            import numpy as np

            box = self.extent
            if box is None:
                values = np.zeros(1 if self.array.size else 0, dtype=self.array.dtype)
            else:
                values = np.asarray(fastremap.unique(np.asfortranarray(self.array[box])))
                covers_all = all(b.stop - b.start == n for b, n in zip(box, self.array.shape))
                if not covers_all and values[0] != 0:
                    values = np.concatenate([np.zeros(1, values.dtype), values])
            self.cache["values"] = values
        return self.cache["values"]  # type: ignore[no-any-return]

    @property
    def loaded(self) -> bool:
        return self._volume is not None

    def release(self) -> None:
        """Drop the array; the next access loads it again."""
        self._volume = None
        self.cache.clear()


@dataclass
class Series:
    """An image series of a task, with its label map (if any), segments and vector annotations."""

    name: str
    index: int
    record: Mapping[str, Any]
    label_map: LabelMap | None = None
    segments: dict[int, Segment] = field(default_factory=dict)
    #: image files of the series found on disk (from ``items``), in the record's order
    image_files: list[str] = field(default_factory=list)
    #: each item of ``items`` found on disk, and the file it was found at
    item_files: dict[str, str] = field(default_factory=dict)
    #: for a writer's copy (:meth:`Task.copy`), the series it was copied from: shared derived views are built
    #: from it, so that what one writer changes in its copy never reaches another writer
    origin: Series | None = field(default=None, repr=False, compare=False)

    @property
    def items(self) -> list[str]:
        items = self.record.get("items") or []
        return [items] if isinstance(items, str) else list(items)

    @property
    def image_headers(self) -> Mapping[str, Any]:
        return self.record.get("imageHeaders") or {}

    @property
    def annotations(self) -> dict[str, Any]:
        """Vector annotations (measurements, landmarks, boxes, classifications, ...) as stored."""
        return {k: self.record[k] for k in VECTOR_ANNOTATION_KEYS if k in self.record}

    @property
    def overlap_groups(self) -> dict[int, frozenset[int]]:
        return self.label_map.overlap_groups if self.label_map is not None else {}

    def unknown_values(self) -> list[int]:
        """Voxel values that are neither background, an instance id nor an overlap group id."""
        if self.label_map is None:
            return []
        known = set(self.segments) | set(self.overlap_groups) | {0}
        array = self.label_map.array
        top = self.label_map.top  # one fast pass: when 0..top are all known, nothing is unknown
        signed = array.dtype.kind == "i" and array.size and int(array.min()) < 0
        if not signed and top < len(known) and known.issuperset(range(top + 1)):
            return []
        return [int(v) for v in self.label_map.values if int(v) not in known]

    def check_grid(self) -> None:
        """Raise :class:`LabelError` when the label map's grid differs from ``imageHeaders.dimensions``."""
        dims = self.image_headers.get("dimensions")
        if self.label_map is None or not isinstance(dims, list) or not all(isinstance(d, int) for d in dims):
            return

        def trimmed(shape: Iterable[int]) -> tuple[int, ...]:
            out = list(shape)
            while len(out) > 2 and out[-1] == 1:
                out.pop()
            return tuple(out)

        grid, image = trimmed(self.label_map.array.shape), trimmed(dims)
        if grid != image:
            raise LabelError(
                f"label map is {'x'.join(map(str, grid))} but the image series is {'x'.join(map(str, image))} "
                "(imageHeaders.dimensions)",
                series=self.name, file=self.label_map.path,
            )

    def check_labels(self) -> None:
        """Raise :class:`LabelError` when the label map holds values the segmentMap does not explain."""
        unknown = self.unknown_values()
        if unknown:
            shown = ", ".join(map(str, unknown[:10])) + (", ..." if len(unknown) > 10 else "")
            raise LabelError(
                f"label map holds value(s) {shown} that are neither an instance id nor an overlap group "
                "in the segmentMap",
                series=self.name,
                file=self.label_map.path if self.label_map else None,
            )


@dataclass
class Task:
    """A task: its series and the untouched original record (see :meth:`to_record`)."""

    task_id: str
    name: str
    series: list[Series]
    record: Mapping[str, Any]
    taxonomy: Taxonomy
    stage: str | None = None
    status: str | None = None

    @property
    def label(self) -> str:
        """How messages name this task: its name, else its id."""
        return self.name or self.task_id

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.record.get("metaData") or {}

    @property
    def classification(self) -> Mapping[str, Any] | None:
        return self.record.get("classification")

    @property
    def created_at(self) -> str | None:
        return self.record.get("createdAt")

    @property
    def updated_at(self) -> str | None:
        return self.record.get("updatedAt")

    def to_record(self) -> dict[str, Any]:
        """A deep copy of the original record: the starting point of every writer's tasks.json entry."""
        return copy.deepcopy(dict(self.record))

    def copy(self) -> Task:
        """A copy whose records (the task's, each series', each segmentMap entry) can be changed without
        touching this task or another copy; label maps are shared, their arrays being read-only."""
        record = copy.deepcopy(dict(self.record))
        records: list[Any] = record["series"] if isinstance(record.get("series"), list) else []
        series = []
        for s in self.series:
            srec: dict[str, Any] = records[s.index] if s.index < len(records) and isinstance(records[s.index], dict) \
                else copy.deepcopy(dict(s.record))
            seg_map: dict[str, Any] = srec["segmentMap"] if isinstance(srec.get("segmentMap"), dict) else {}
            segments = {n: dataclasses.replace(seg, attributes=copy.deepcopy(dict(seg.attributes)),
                                               record=seg_map.get(str(n), copy.deepcopy(dict(seg.record))))
                        for n, seg in s.segments.items()}
            series.append(dataclasses.replace(s, record=srec, segments=segments, image_files=list(s.image_files),
                                              item_files=dict(s.item_files), origin=s.origin or s))
        return dataclasses.replace(self, record=record, series=series)

    def check(self, unknown_labels: bool = True) -> None:
        """Check every label map against its image grid and (unless ``unknown_labels`` is false) its
        segmentMap; raises :class:`LabelError` naming the task, series and file."""
        for series in self.series:
            try:
                series.check_grid()
                if unknown_labels:
                    series.check_labels()
            except LabelportError as exc:
                raise exc.located(task=self.label, series=series.name) from None

    def release(self) -> None:
        """Drop every loaded label array of this task."""
        for series in self.series:
            if series.label_map is not None:
                series.label_map.release()
