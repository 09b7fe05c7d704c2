"""A live RedBrick AI project as a source: tasks fetched over the API, their labels files, label maps (and
images, when a writer needs them) downloaded into a cache, each task turned into the tasks.json record a
RedBrick export would hold.

    labelport export redbrick:ORG_ID/PROJECT_ID -o OUT --writer nifti     # key from REDBRICK_API_KEY

Pages of tasks are fetched one ahead while the current page is exported; the files of the next tasks download
in parallel (bounded) meanwhile. Presigned URLs are used for downloads only and never reach tasks.json or
any message. The cache is keyed by endpoint, organization, project, task and label version; a cached file is
checked (gzip length and CRC, or JSON) before it is used, and fetched again if it is damaged.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import SourceError
from ..model import LabelVolume, Task
from ..paths import safe_name
from .audit import Stages, search_filters, task_entry, task_events
from .base import Source, TaskFilter, TaskRef
from .credentials import login, parse_since, tls
from .queries import QUERIES
from .rawlabels import Vocabulary
from .records import task_from_record
from .shards import record_from_shard, series_infos, series_of_map, user_label
from .taxonomy import parse_taxonomy
from .transport import RetryPolicy, Transport, gzip_intact

__all__ = ["RedBrickProject"]

PAGE_SIZE = 50


def _task_datas(shard: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every label version a task object carries: the latest, and each consensus annotator's."""
    sub = shard.get("currentStageSubTask") or {}
    found = [shard.get("latestTaskData"), sub.get("taskData"), *((s or {}).get("taskData") for s in
                                                                 sub.get("subTasks") or []),
             *((c or {}).get("taskData") for c in sub.get("consensusInfo") or [])]
    return [d for d in found if isinstance(d, Mapping)]


def _read_labels_file(path: str) -> list[Any] | None:
    """A labels file (plain or gzip JSON), or None when it is missing or damaged."""
    try:
        gzipped = _is_gzip(path)
        with (gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")) as f:
            labels = json.load(f)
    except (OSError, ValueError, EOFError):
        return None
    return labels if isinstance(labels, list) else None


class RedBrickProject(Source):
    """The tasks of a RedBrick project (see the module docstring). ``org_id`` may be None to use the
    profile's organization. ``since`` is an ISO time or date: only tasks updated at or after it. ``lookahead``
    tasks (and the next page) are fetched ahead, ``download_threads`` files at a time; ``lookahead=0,
    download_threads=1`` fetches strictly in sequence. ``cache`` is the folder for downloads (default
    ``$XDG_CACHE_HOME/labelport``)."""

    uses_threads = True

    def __init__(self, org_id: str | None, project_id: str, *, key: str | None = None, url: str | None = None,
                 profile: str | None = None, ca_bundle: str | None = None, task_filter: TaskFilter | None = None,
                 since: str | None = None, cache: str | os.PathLike[str] | None = None,
                 policy: RetryPolicy | None = None, download_threads: int = 4, lookahead: int = 8) -> None:
        self.since = parse_since(since) if since else None
        self.filter = task_filter or TaskFilter()
        account = login(key=key, url=url, profile=profile)
        org = org_id or account.org
        if not org:
            raise SourceError("no RedBrick organization: use redbrick:ORG_ID/PROJECT_ID, or a profile with an org")
        for what, value in (("organization", org), ("project", project_id)):
            if not _is_uuid(value):
                raise SourceError(f"{value!r} is not a RedBrick {what} id (those are UUIDs, as in the project's URL)")
        self.org_id, self.project_id = org, project_id
        verify, warning = tls(ca_bundle)
        self.warnings = [warning] if warning else []
        self.transport = Transport(account.url, account.key, policy=policy, verify=verify)
        digest = hashlib.blake2b(account.url.encode(), digest_size=4).hexdigest()
        where = f"{safe_name(urlsplit(account.url).netloc, 'api')}-{digest}"  # one cache per endpoint
        root = Path(cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labelport")
        self.cache = root / where / safe_name(org, "org") / safe_name(project_id, "project")
        self.download_threads = max(1, download_threads)
        self.lookahead = lookahead
        self._ahead: dict[str, Any] = {}  # task id -> future of its downloads, while refs() runs
        self._seen: set[str] = set()
        self._users: dict[str, str] | None = None
        self._complete = False
        project = self._query("getProjectSDK").get("project")
        if not project:
            raise SourceError(f"RedBrick project {project_id} not found in organization {org} "
                              "(or the API key has no access to it)")
        if project.get("status") == "REMOVING":
            raise SourceError(f"RedBrick project {project_id} is archived")
        raw_taxonomy = project.get("taxonomy") or {}
        self.vocabulary = Vocabulary(raw_taxonomy)
        self.stages = Stages.of(project.get("stages") or [])
        self.taxonomy = parse_taxonomy(raw_taxonomy, f"taxonomy of project {project_id}")

    def stage_names(self) -> set[str]:
        return {*self.stages.label, *self.stages.review, self.stages.output, "END"}

    def _query(self, operation: str, **variables: Any) -> dict[str, Any]:
        return self.transport.graphql(operation, QUERIES[operation],
                                      {"orgId": self.org_id, "projectId": self.project_id, **variables})

    def _stage(self) -> str | None:
        """The stage the task filter asks the server for (ground truth is the END stage)."""
        return "END" if self.filter.only_ground_truth else self.filter.stage

    def _pages(self, operation: str, field: str, **variables: Any) -> Iterator[list[dict[str, Any]]]:
        """The pages of a paged query. The next page is fetched while the caller works on this one, unless
        ``lookahead`` is 0 (strictly sequential, as RedBrick's SDK fetches)."""

        def fetch(cursor: str | None) -> dict[str, Any]:
            return dict(self._query(operation, **variables, first=PAGE_SIZE, after=cursor).get(field) or {})

        with ThreadPoolExecutor(1) as prefetch:
            page = fetch(None)
            while True:
                cursor = page.get("cursor")
                following = prefetch.submit(fetch, cursor) if cursor and self.lookahead else None
                yield list(page.get("entries") or [])
                if not cursor:
                    return
                page = following.result() if following is not None else fetch(cursor)

    def _entries(self, operation: str, field: str, **variables: Any) -> Iterator[dict[str, Any]]:
        """Every entry of a paged query."""
        for page in self._pages(operation, field, **variables):
            yield from page

    def refs(self) -> Iterator[TaskRef]:
        """The selected tasks. While they are exported, the files of the next ``lookahead`` tasks download in
        the background (into the cache, where :meth:`open` finds them)."""
        self._seen, self._complete = set(), False
        if self.filter.task_ids:
            shards = (self._query("taskSDK", taskId=t).get("task") for t in self._task_ids())
            pages: Iterator[list[Any]] = iter([[s for s in shards if s]])
        else:
            pages = self._pages("tasksPagedSDK", "tasksPaged", stageName=self._stage(), cacheTime=self.since)
        chosen = (shard for page in pages for shard in page if self._select(shard))
        with ThreadPoolExecutor(self.download_threads) as pool:
            window: list[TaskRef] = []
            for index, shard in enumerate(chosen):
                ref = TaskRef(index, str(shard.get("taskId")), str((shard.get("datapoint") or {}).get("name") or ""),
                              shard)
                if self.lookahead:
                    self._ahead[ref.task_id] = pool.submit(self._fetch, ref)
                window.append(ref)
                if len(window) > self.lookahead:
                    yield window.pop(0)
            yield from window
            self._ahead.clear()
        self._complete = self.streams_all

    def users(self) -> dict[str, str]:
        """The organization's members: user id -> e-mail (members without one, such as API keys, are left out,
        as RedBrick's SDK leaves them out)."""
        if self._users is None:
            members = self.transport.graphql("membersSDK", QUERIES["membersSDK"],
                                             {"orgId": self.org_id, "onlyActive": False})
            self._users = {}
            for member in members.get("members") or []:
                user = member.get("user") or {}
                if user.get("userId") and user.get("email"):
                    self._users[str(user["userId"])] = str(user["email"])
        return self._users

    def active_time(self, stage: str, task_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Time spent on tasks in ``stage`` (optionally one task), as RedBrick's SDK reports it:
        ``{orgId, projectId, stageName, taskId, completedBy, timeSpent (ms), completedAt, cycle}``."""
        users = self.users()
        for entry in self._entries("taskActiveTimeSDK", "taskActiveTime", stageName=stage, taskId=task_id):
            yield {"orgId": self.org_id, "projectId": self.project_id, "stageName": stage,
                   "taskId": entry.get("taskId"), "completedBy": user_label(entry.get("user"), users),
                   "timeSpent": entry.get("timeSpent"), "completedAt": entry.get("date"), "cycle": entry.get("cycle")}

    def events(self) -> Iterator[dict[str, Any]]:
        """The audit trail of the selected tasks (the project's task filter and ``since``), one record per
        task: ``{taskId, taskName, currentStageName, events: [{eventType, createdAt, ...}]}``."""
        users = self.users()
        if self.filter.task_ids:
            tasks: Iterator[Any] = (self._query("taskEventSDK", taskId=t).get("task") for t in self._task_ids())
        else:
            tasks = self._entries("taskEventsSDK", "tasksPaged", stageName=self._stage(), cacheTime=self.since)
        for task in tasks:
            if task and self.filter.accepts(task.get("taskId"), task.get("currentStageName")):
                yield task_events(task, users)

    def list_tasks(self, search: str | None = None, *, stage: str | None = None, name: str | None = None,
                   exact_match: bool = False, user_id: str | None = None, task_id: str | None = None,
                   completed_at: tuple[str | None, str | None] = (None, None),
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Tasks of the project, as RedBrick's SDK lists them (see :func:`labelport.sources.audit.task_entry`).
        ``search`` is one of :data:`~labelport.sources.audit.SEARCHES` (default: ``ALL``, or with a ``stage``
        ``QUEUED``, or ``COMPLETED`` when ``completed_at`` is given); ``name`` matches the start of task names
        (``exact_match``: the whole name); ``user_id`` narrows to one assignee; ``completed_at`` (ISO times)
        bounds a ``COMPLETED`` search."""
        done_from, done_to = (parse_since(t) if t else None for t in completed_at)
        if search is None:
            search = "ALL" if stage is None else ("QUEUED" if not (done_from or done_to) else "COMPLETED")
        try:
            stage_name, filters = search_filters(search.upper(), self.stages, stage, user_id, task_id, done_from,
                                                 done_to)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        text = task_id or ('"' + name.strip('"') + '"' if name and exact_match else name)
        users = self.users()
        entries = self._entries("tasksListSDK", "genericTasks", stageName=stage_name, taskSearch=text,
                                manualLabelingFilters=filters)
        for count, entry in enumerate(entries):
            if limit is not None and count >= limit:
                return
            yield task_entry(entry, users)

    def _task_ids(self) -> list[str]:
        """The task ids asked for that can exist (RedBrick's are UUIDs; others are reported missing)."""
        return [t for t in sorted(self.filter.task_ids) if _is_uuid(t)]

    def _select(self, shard: Mapping[str, Any]) -> bool:
        self._seen.add(str(shard.get("taskId")))
        return self.filter.accepts(shard.get("taskId"), shard.get("currentStageName"))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ahead"] = {}  # futures stay in the process that started them
        return state

    @property
    def streams_all(self) -> bool:
        return not (self.filter.task_ids or self.filter.stage or self.filter.only_ground_truth or self.since)

    def missing_task_ids(self) -> list[str]:
        return sorted(self.filter.task_ids - self._seen)

    def all_task_ids(self) -> set[str] | None:
        return set(self._seen) if self._complete else None

    # -- downloads ----------------------------------------------------------------------------------------

    def _download(self, files: list[tuple[str, str, str]]) -> None:
        """Fetch ``(storage id, storage path, local target)`` files: presigned in one request per storage,
        downloaded ``download_threads`` at a time."""
        by_storage: dict[str, list[tuple[str, str]]] = {}
        for storage, path, target in files:
            by_storage.setdefault(storage, []).append((path, target))
        jobs = []
        for storage, pairs in by_storage.items():
            found = self.transport.graphql("presignItemsSDK", QUERIES["presignItemsSDK"],
                                           {"orgId": self.org_id, "storageId": storage,
                                            "items": [p for p, _ in pairs]}).get("presignItems") or []
            if len(found) != len(pairs) or not all(found):
                raise SourceError(f"presigning returned {sum(1 for u in found if u)} URLs for {len(pairs)} files")
            jobs += [(str(url), target, path) for url, (path, target) in zip(found, pairs)]
        if len(jobs) == 1:
            self.transport.download(jobs[0][0], jobs[0][1], what=jobs[0][2])
            return
        with ThreadPoolExecutor(min(self.download_threads, len(jobs))) as pool:
            for future in [pool.submit(self.transport.download, url, target, what=path) for url, target, path in jobs]:
                future.result()

    def _fetch(self, ref: TaskRef) -> tuple[dict[int, str], dict[str, list[Any]], dict[str, str]]:
        """A task's files: (series index -> local label map, labelsDataPath -> labels, item -> local image)."""
        shard = ref.record
        folder = self.cache / safe_name(ref.task_id, "task")
        wanted: list[tuple[str, str, str]] = []
        labels: dict[str, list[Any]] = {}
        label_files: dict[str, str] = {}
        for data in _task_datas(shard):
            path = data.get("labelsDataPath")
            if not path:
                continue
            target = str(folder / safe_name(str(data.get("tdId") or "labels"), "labels") / "labels.json")
            found = _read_labels_file(target)
            if found is None:
                storage = str((data.get("labelsStorage") or {}).get("storageId") or "")
                wanted.append((storage, str(path), target))
            else:
                labels[str(path)] = found
            label_files[str(path)] = target
        latest = shard.get("latestTaskData") or {}
        infos = series_infos(shard.get("datapoint") or {})
        maps: dict[int, str] = {}
        version = folder / safe_name(str(latest.get("tdId") or "labels"), "labels")
        for position, entry in enumerate(latest.get("labelsMap") or []):
            if not entry or entry.get("labelName") is None:
                continue
            index = series_of_map(entry, infos, position)
            target = str(version / f"{index}.nii.gz")
            maps[index] = target
            if os.path.isfile(target) and gzip_intact(target):
                continue
            if os.path.isfile(target[:-3]):  # stored uncompressed
                maps[index] = target[:-3]
                continue
            storage = str((latest.get("labelsStorage") or {}).get("storageId") or "")
            wanted.append((storage, str(entry["labelName"]), target))
        if wanted:
            self._download(wanted)
        for path, target in label_files.items():
            if path in labels:
                continue
            found = _read_labels_file(target)
            if found is None:
                if os.path.exists(target):
                    os.remove(target)
                raise SourceError("the labels file is not a JSON list of labels", file=path)
            labels[path] = found
        for index, target in list(maps.items()):
            if target.endswith(".gz") and os.path.isfile(target) and not _is_gzip(target):
                os.replace(target, target[:-3])  # an uncompressed label map
                maps[index] = target[:-3]
        images = self._download_images(ref, shard) if self.images_needed else {}
        return maps, labels, images

    def open(self, ref: TaskRef) -> Task:
        ahead = self._ahead.pop(ref.task_id, None)
        try:
            maps, labels, images = ahead.result() if ahead is not None else self._fetch(ref)
        except SourceError as exc:
            raise exc.located(task=ref.label) from None
        try:
            record = record_from_shard(ref.record, maps, labels, self.vocabulary)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise SourceError(f"unexpected task object from the API ({type(exc).__name__}: {exc})",
                              task=ref.label) from None
        return task_from_record(record, self.taxonomy, lambda path: path, _read, images.get, self.label_memory)

    def _download_images(self, ref: TaskRef, shard: Mapping[str, Any]) -> dict[str, str]:
        """The task's image files in the cache, by their storage path (what ``items`` lists)."""
        datapoint = shard.get("datapoint") or {}
        items = [str(i) for i in datapoint.get("items") or []]
        if not items:
            return {}
        storage = str((datapoint.get("storageMethod") or {}).get("storageId") or "")
        folder = self.cache / safe_name(ref.task_id, "task") / "images"
        targets = [str(folder / f"{n:05d}-{safe_name(os.path.basename(item), 'image')}")
                   for n, item in enumerate(items)]
        missing = [(storage, item, target) for item, target in zip(items, targets) if not os.path.isfile(target)]
        if missing:
            self._download(missing)
        return dict(zip(items, targets))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _read(path: str, expected: tuple[int, ...] | None, limit: int | None) -> LabelVolume:
    from ..niftiio import read_label_nifti

    return read_label_nifti(path, expected, limit)
