"""A RedBrick-style export folder on disk: ``tasks.json``, ``segmentations/``, optional ``images/`` and
``taxonomy.json``."""

from __future__ import annotations

import datetime
import functools
import json
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..digest import blake2b
from ..errors import SourceError
from ..model import LabelVolume, Task, Taxonomy
from ..textset import TextSet
from .base import Missing, Source, TaskFilter, TaskRef
from .jsonfile import file_digest, parse_json, read_bytes, read_json
from .lookups import Lookups, folder_listing, real_folder_listing, stat_or_none
from .records import task_from_record
from .taxonomy import parse_taxonomy

if TYPE_CHECKING:
    from .recordfile import Head, Heads, RecordFile

__all__ = ["LocalExport"]

_TOPS = ("segmentations", "images")  # the folders of an export that a tasks.json path may be found from


def read_label_nifti(path: str, expected: tuple[int, ...] | None, limit: int | None) -> LabelVolume:
    """labelport.niftiio's reader, imported when the first label map is read (nibabel is slow to import)."""
    from ..niftiio import read_label_nifti as read

    return read(path, expected, limit)


def _stamp(name: str) -> int:
    """The time in a ``report-<time>.json`` name (0 when it holds none)."""
    digits = name[len("report-"):-len(".json")]
    return int(digits) if digits.isdigit() else 0


def _instant(text: Any) -> datetime.datetime | None:
    """An ISO 8601 time with a zone, or None when ``text`` is not one."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


_FOLDERS_KEPT = 256  # per cache (see _remember)


def _remember(cache: dict[str, Any], key: str, value: Any) -> Any:
    """Store ``value`` in a per-folder cache that is emptied when it reaches 256 folders: a task's files share a
    few folders, so this keeps what is in use while memory does not grow with the project (every worker
    process has its own caches)."""
    if len(cache) >= _FOLDERS_KEPT:
        cache.clear()
    cache[key] = value
    return value


class _NoRecords:
    """What a worker process has of tasks.json: nothing (its tasks come with their records, and the taxonomy
    with the source)."""

    def __init__(self) -> None:
        from .recordfile import Heads

        self.heads = Heads()
        self.categories: list[str] = []


class LocalExport(Source):
    """Tasks of an export folder. Paths in tasks.json may be written relative to the folder
    (``./segmentations/...``), relative to its parent (``<project>/segmentations/...``) or absolute."""

    local_images = True
    lookups: Lookups

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        taxonomy: str | os.PathLike[str] | None = None,
        task_filter: TaskFilter | None = None,
        allow_outside_paths: bool = False,
    ) -> None:
        self.root = Path(root)
        self._root, self._parent = str(self.root), str(self.root.parent)
        self._root_slash, self._parent_slash = os.path.join(self._root, ""), os.path.join(self._parent, "")
        self._real_root = os.path.realpath(self.root)
        self._folders: dict[str, bool] = {}  # folder -> whether it resolves inside the export folder
        self._real: dict[str, None] = {}  # folders listed and found not to be symbolic links (see _listing)
        self._files: dict[str, dict[str, bool]] = {}  # folder -> its files (see _listing)
        self._missing: dict[str, None] = {}  # folders found not to exist (see _in_missing)
        # a tasks.json folder -> where its files are (see _index), and the folders not listed yet
        self._places: dict[str, tuple[dict[str, str], list[str]]] = {}
        self.allow_outside_paths = allow_outside_paths
        self.filter = task_filter or TaskFilter()
        self.lookups = Lookups()
        self.warnings = []
        if not self.root.is_dir():
            raise SourceError("export folder not found", file=str(self.root))
        if not (self.root / "tasks.json").is_file():
            raise SourceError("file not found", file=str(self.root / "tasks.json"))
        self._taxonomy_path = Path(taxonomy) if taxonomy else None
        self._summary: dict[str, Any] | None = None  # (see use_summary)
        self._taxonomy_digest: str | None = None  # of the taxonomy file's bytes that were parsed

    @functools.cached_property
    def _records(self) -> RecordFile:
        """The records of tasks.json, split when first needed (a re-run that finds nothing changed does not
        need them: see :meth:`seal_state`)."""
        from .recordfile import RecordFile  # (and msgspec, which splits it)

        return RecordFile(self.root / "tasks.json")

    @property
    def _heads(self) -> Heads:
        return self._records.heads

    @functools.cached_property
    def taxonomy(self) -> Taxonomy:  # type: ignore[override]
        """The taxonomy file's (``taxonomy.json`` in the folder unless one is given), with a class id for every
        category the records use that it lacks; derived from those categories when there is none."""
        # by name: the class ids of a derived taxonomy depend on the set of categories, not on task order
        summary = self._summary if "_records" not in self.__dict__ else None
        categories = sorted(summary["categories"] if summary is not None else self._records.categories)
        path = self._taxonomy_file()
        if path is None:
            return Taxonomy.derive(categories)
        before = stat_or_none(path)
        text = read_bytes(path)
        self._taxonomy_digest = blake2b(text).hexdigest()  # (as file_digest makes it)
        self.lookups.note(str(path), before, self._taxonomy_digest)
        taxonomy = parse_taxonomy(parse_json(text, path), str(path))
        missing = [c for c in categories if taxonomy.get(c) is None]
        for name in missing:
            taxonomy, _ = taxonomy.with_category(name)
        if missing:
            self.warnings.append(f"{path}: categories missing from the taxonomy were given new class ids: "
                                 + ", ".join(missing))
        return taxonomy

    def _taxonomy_file(self) -> Path | None:
        if self._taxonomy_path is None and (self.root / "taxonomy.json").is_file():
            return self.root / "taxonomy.json"
        return self._taxonomy_path

    def _without_index(self) -> dict[str, Any]:
        """What stands for the record index and the look-up caches in a copy that does without them; the
        taxonomy is worked out first, where the records are, and stays."""
        self.taxonomy  # noqa: B018
        return {"_records": _NoRecords(), "_files": {}, "_places": {}, "_missing": {}, "_real": {}}

    def __getstate__(self) -> dict[str, Any]:
        """Worker processes open tasks from their records: the full record list stays here."""
        without = self._without_index()
        return {**self.__dict__, **without, "lookups": Lookups()}

    def release(self) -> None:
        """The record index and the look-up caches go, as from a copy sent to a worker (see __getstate__)."""
        self.__dict__.update(self._without_index())

    def _selected(self, head: Head) -> bool:
        """Whether ``refs`` yields this record (a record that is not an object is yielded, to be reported)."""
        return not head.is_object or self.filter.accepts(head.task_id, head.stage)

    def refs(self) -> Iterator[TaskRef]:
        for index, head in enumerate(self._heads):
            if self._selected(head):  # each record is read and parsed when its task first needs it
                yield TaskRef(index, str(head.task_id or ""), str(head.name or ""),
                              digest=self._records.digest(index), load=partial(self._records.__getitem__, index))

    def list_tasks(self, search: str | None = None, *, stage: str | None = None, name: str | None = None,
                   exact_match: bool = False, task_id: str | None = None,
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The folder's tasks as listing records, in the fields RedBrick's SDK lists (``taskId``, ``name``,
        ``createdAt``, ``currentStageName``, ``updatedAt``, ``createdBy``, ``priority``, ``metaData``,
        ``series`` with their ``name``, ``metaData`` and ``imageHeaders``), where the record has them.
        ``search`` is ``ALL`` (default) or ``GROUNDTRUTH`` (stage END): an export folder holds no assignments,
        so RedBrick's other task lists cannot be made from it."""
        from ..errors import OptionError

        search = (search or "ALL").upper()
        if search not in ("ALL", "GROUNDTRUTH"):
            raise OptionError(f"--search {search} needs a live project (redbrick:ORG_ID/PROJECT_ID); an export "
                              "folder lists ALL or GROUNDTRUTH")
        if stage is not None:
            self.check_stage(stage)
        count = 0
        for index, head in enumerate(self._heads):
            if not head.is_object:
                continue
            task_name = str(head.name or "")
            if (search == "GROUNDTRUTH" and head.stage != "END") or \
                    (stage is not None and head.stage != stage) or \
                    (task_id is not None and head.task_id != task_id) or \
                    (name is not None and not (task_name == name if exact_match else task_name.startswith(name))):
                continue
            if limit is not None and count >= limit:
                return
            count += 1
            record = self._records[index]
            entry = {key: record[key] for key in ("taskId", "name", "createdAt", "currentStageName", "updatedAt",
                                                  "createdBy", "priority", "metaData") if key in record}
            series = [{key: s[key] for key in ("name", "metaData", "imageHeaders") if key in s}
                      for s in record.get("series") or [] if isinstance(s, dict)]
            if any(series):
                entry["series"] = series
            yield entry

    def events(self, since: str | None = None) -> Iterator[dict[str, Any]]:
        """The audit trail saved in the folder by RedBrick's CLI (``redbrick report`` writes
        ``report-<time>.json``; the newest is read), one record per task, ``{taskId, taskName,
        currentStageName, events}``, for the tasks of the folder's filter. ``since`` (ISO time or date) keeps
        tasks updated at or after it: the task's ``updatedAt`` in tasks.json, else its last event. A record that
        is not an object with a ``taskId`` is skipped with a warning."""
        from .credentials import parse_since

        reports = sorted(self.root.glob("report-*.json"), key=lambda p: (_stamp(p.name), p.name))
        if not reports:
            raise SourceError("no audit trail: RedBrick's `redbrick report` saves one here as report-<time>.json, "
                              "and `labelport events redbrick:ORG_ID/PROJECT_ID` reads it from RedBrick",
                              file=str(self.root))
        path = reports[-1]
        records = read_json(path)
        if not isinstance(records, list):
            raise SourceError(f"expected a JSON array of task events, found a {type(records).__name__}",
                              file=str(path))
        start = _instant(parse_since(since)) if since else None
        updated = self._updated() if start is not None else {}
        for n, record in enumerate(records):
            if not isinstance(record, dict) or not isinstance(record.get("taskId"), str):
                self.warnings.append(f"{path}: record {n + 1} is not a task's events (an object with a taskId); "
                                     "skipped")
                continue
            if not self.filter.accepts(record["taskId"], record.get("currentStageName")):
                continue
            if start is not None:
                events = record.get("events")
                times = [_instant(e.get("createdAt")) for e in events if isinstance(e, dict)] \
                    if isinstance(events, list) else []
                when = _instant(updated.get(record["taskId"])) or max(filter(None, times), default=None)
                if when is None or when < start:
                    continue
            yield record

    def _updated(self) -> dict[Any, Any]:
        """Each task id's ``updatedAt`` (read from the records: only ``events --since`` needs them)."""
        return {h.task_id: record.get("updatedAt") for h, record in zip(self._heads, self._records)
                if h.is_object and isinstance(record, dict)}

    def stage_names(self) -> set[str]:
        """The stages tasks are in, and END (ground truth), which every RedBrick workflow has."""
        return {"END"} | {str(h.stage) for h in self._heads if h.is_object and h.stage}

    def listing(self) -> Iterator[tuple[str, str]]:
        return ((str(h.task_id or ""), str(h.name or "")) for h in self._heads)

    def count(self) -> int:
        if self.filter == TaskFilter():
            if self._summary is not None and "_records" not in self.__dict__:
                return int(self._summary["records"])
            return len(self._heads)
        return sum(1 for h in self._heads if self._selected(h))

    def all_task_ids(self) -> TextSet:
        return TextSet(str(h.task_id) for h in self._heads if h.is_object)

    def input_paths(self, ref: TaskRef) -> tuple[list[str], list[str]]:
        from .schema import check_record

        check_record(ref.record)
        paths: tuple[list[str], list[str]] = ([], [])
        for series in ref.record.get("series") or [] if isinstance(ref.record, dict) else []:
            if not isinstance(series, dict):
                continue
            for key, into in (("segmentations", paths[0]), ("items", paths[1])):
                value = series.get(key) or []
                into += (p for p in ([value] if isinstance(value, str) else value) if isinstance(p, str))
        return paths

    def input_files(self, ref: TaskRef, paths: tuple[list[str], list[str]] | None = None) -> \
            tuple[list[str], list[str]]:
        labels, images = paths or self.input_paths(ref)
        find = self.find
        labels, images = [find(p) or Missing(p) for p in labels], [find(p) or Missing(p) for p in images]
        self.lookups.found([p for p in labels if type(p) is not Missing], [p for p in images if type(p) is not Missing])
        return labels, images

    def start_lookups(self) -> None:
        """Forget what was found on disk, and note every look-up from now on in :attr:`lookups`."""
        for cache in (self._files, self._missing, self._folders, self._places, self._real):
            cache.clear()
        self.lookups.start()

    def seal_state(self) -> str | None:
        """A digest of tasks.json's bytes (the records are the same while they are) and of the taxonomy file's,
        and where files are looked up from; None when tasks.json is not split (see :class:`RecordFile`) and for
        a filtered source. Worked out without splitting tasks.json, unless it was split already: then from the
        bytes that were."""
        if self.filter != TaskFilter():
            return None
        try:
            if "_records" in self.__dict__:
                records = self._records.file_digest()
                if records is not None:
                    self.lookups.note(str(self._records.path), self._records.before, records)
            else:
                records = self.lookups.digest(str(self.root / "tasks.json"), file_digest)
            path = self._taxonomy_file()
            taxonomy = None if path is None else self._taxonomy_digest if "taxonomy" in self.__dict__ else \
                self.lookups.digest(str(path), file_digest)
        except OSError:
            return None
        if records is None:
            return None
        where = (self._root, os.getcwd() if not os.path.isabs(self._root) else "", self._real_root,
                 self.allow_outside_paths)
        return f"{records} {str(path) if path else ''!r} {taxonomy} {where!r}"

    def summary(self) -> str | None:
        """The number of records and the categories they use: all an export needs of tasks.json besides the
        tasks themselves (see :meth:`use_summary`)."""
        return json.dumps({"records": len(self._heads), "categories": self._records.categories})

    def use_summary(self, summary: str) -> bool:
        """Take the number of records and their categories from the :meth:`summary` of an export that saw the
        same :meth:`seal_state`, instead of splitting tasks.json; False (and nothing taken) when it is not one,
        or when the records were split already."""
        try:
            value = json.loads(summary)
            count, categories = value["records"], value["categories"]
        except (ValueError, TypeError, KeyError):
            return False
        if "_records" in self.__dict__ or "taxonomy" in self.__dict__ or type(count) is not int \
                or not isinstance(categories, list) or not all(type(c) is str for c in categories):
            return False
        self._summary = {"records": count, "categories": categories}
        return True

    def missing_task_ids(self) -> list[str]:
        wanted = set(self.filter.task_ids)  # (a few: the heads are looked at, not collected)
        if wanted:
            wanted.difference_update(str(h.task_id) for h in self._heads if h.is_object)
        return sorted(wanted)

    def open(self, ref: TaskRef) -> Task:
        return task_from_record(ref.record, self.taxonomy, self.resolve, read_label_nifti, self.find,
                                self.label_memory)

    def find(self, path: str) -> str | None:
        """A tasks.json path on disk (see the class docstring), or None. Unless ``allow_outside_paths``, a path
        must lead to a file inside the export folder: one that leaves it (an absolute path elsewhere, ``..``,
        a symbolic link) is refused before anything is read, and the error does not say whether it exists."""
        folder, _, name = path.rpartition("/")
        if not (path.startswith("/") or ".." in path or "\\" in path or name in _TOPS):
            # the usual path, relative and plain: its folder's files are looked up once, for all its paths
            entry = self._places.get(folder)
            if entry is None:
                entry = _remember(self._places, folder, ({}, self._folder_places(folder)))
            index, left = entry
            while left and name not in index:  # the next folder is listed only for a name not found yet
                self._index(index, left.pop(0))
            found = index.get(name)
            if found == "":
                raise self._outside(path)
            return found
        absolute = os.path.isabs(path)
        if absolute or (".." in path and ".." in path.replace("\\", "/").split("/")):
            candidates = [path] if absolute else [os.path.join(self._root, path), os.path.join(self._parent, path)]
            if not self.allow_outside_paths and not any(self._within(c) for c in candidates):
                raise self._outside(path)
        first = path if absolute else self._root_slash + path
        if self._isfile(first):  # the usual case, checked first: this runs for every image of every task
            return self._checked(first, path)
        candidates = [] if absolute else [self._parent_slash + path]
        candidates += self._from_tops(path.replace("\\", "/").split("/"))
        for candidate in candidates:
            if candidate != first and self._isfile(candidate):
                return self._checked(candidate, path)
        return None

    def _folder_places(self, folder: str) -> list[str]:
        """The folders, in the order :meth:`find` tries them, where a file of a plain relative ``folder`` may be."""
        if not folder:
            return [self._root, self._parent]
        places = [self._root_slash + folder, self._parent_slash + folder, *self._from_tops(folder.split("/"))]
        return list(dict.fromkeys(places))

    def _index(self, index: dict[str, str], place: str) -> None:
        """Add the files of ``place`` that ``index`` does not have yet: for each name, its path, or "" when that
        path leads outside the export folder."""
        for name in self._listing(place):
            if name not in index:
                found = place + os.sep + name
                index[name] = found if self._leads_inside(found) else ""

    def _from_tops(self, parts: list[str]) -> list[str]:
        """A path's place in the export folder from its ``segmentations`` or ``images`` part on (an export
        moved or renamed keeps them)."""
        return [self._root_slash + os.sep.join(parts[parts.index(top):]) for top in _TOPS if top in parts]

    def _isfile(self, path: str) -> bool:
        """``os.path.isfile``, from one listing per folder (a task's images share a folder: one ``scandir``
        instead of a ``stat`` per image, and nothing per missing image)."""
        folder, _, name = path.rpartition(os.sep)
        return name in self._listing(folder)

    def _listing(self, folder: str) -> dict[str, bool]:
        """The files of a folder, each with whether it is a symbolic link (from the directory entries)."""
        files = self._files.get(folder)
        if files is None:
            files = {}
            if not self._in_missing(folder):
                real = real_folder_listing(folder)  # (learns that the folder is not a link in the same look-up)
                listed = real if real is not None else folder_listing(folder)  # (none when not readable, as isfile)
                if listed is None:
                    self._missing_from(folder)
                else:
                    files = listed[0]
                    self.lookups.listed(folder, listed, real=real is not None)
                    if real is not None:
                        _remember(self._real, folder, None)
            _remember(self._files, folder, files)
        return files

    def _in_missing(self, folder: str) -> bool:
        """Whether a folder, or one it is in, is known not to exist (every task of an export without images
        names a folder of its own under the missing ``images``: nothing is asked of the disk for it)."""
        while folder:
            if folder in self._missing:
                return True
            folder = folder.rpartition(os.sep)[0]
        return False

    def _missing_from(self, folder: str) -> None:
        """Note the folders, from ``folder`` (just found missing) up, that do not exist."""
        top = None
        while folder and folder not in self._missing and not os.path.isdir(folder):
            _remember(self._missing, folder, None)
            top, folder = folder, folder.rpartition(os.sep)[0]
        if top is not None:
            self.lookups.missing(top)

    def _within(self, path: str) -> bool:
        self.lookups.partial = True
        return os.path.realpath(path).startswith(self._real_root + os.sep)

    def _outside(self, path: str) -> SourceError:
        return SourceError(f"path {path!r} leads outside the export folder (for an export you trust, "
                           "--allow-outside-paths reads it)")

    def _inside(self, folder: str) -> bool:
        """Whether a folder resolves inside the export folder. A folder under the export folder's path is
        inside when its parent is and it is not a symbolic link (one ``lstat``); others are resolved."""
        inside = self._folders.get(folder)
        if inside is None:
            parent, _, name = folder.rpartition(os.sep)
            if folder == self._root:
                inside = True
            elif folder.startswith(self._root_slash) and name not in ("", ".", ".."):
                link = False
                if folder not in self._real:  # (a folder listed as not a link is not asked again)
                    link = os.path.islink(folder)
                    self.lookups.link(folder, link)
                inside = self._inside(parent) and not link
            else:
                self.lookups.partial = True
                real = os.path.realpath(folder)
                inside = real == self._real_root or real.startswith(self._real_root + os.sep)
            _remember(self._folders, folder, inside)
        return inside

    def _leads_inside(self, found: str) -> bool:
        """Whether a file found on disk may be read: it resolves inside the export folder (its folder is
        resolved once; the file itself only when it is a symbolic link), or ``allow_outside_paths``."""
        if self.allow_outside_paths:
            return True
        folder, _, name = found.rpartition(os.sep)
        return self._inside(folder) and (not self._listing(folder).get(name, True) or self._within(found))

    def _checked(self, found: str, path: str) -> str:
        """``found``, after checking that it :meth:`leads inside <_leads_inside>` the export folder."""
        if not self._leads_inside(found):
            raise self._outside(path)
        return found

    def resolve(self, path: str) -> str:
        """A segmentation path on disk; raises :class:`SourceError` when it is missing."""
        found = self.find(path)
        if found is None:
            raise SourceError(f"segmentation file {path!r} not found in {self.root}", file=path)
        return found
