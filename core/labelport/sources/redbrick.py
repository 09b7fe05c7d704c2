"""A live RedBrick AI project as a source: tasks fetched over the API, label maps (and images, when a writer
needs them) downloaded into a cache, each task turned into the tasks.json record a RedBrick export would hold.

    labelport export redbrick:ORG_ID/PROJECT_ID -o OUT --writer nifti     # key from REDBRICK_API_KEY

Pages of tasks are fetched one ahead while the current page is exported; the label maps of a task download in
parallel (bounded). Presigned URLs are used for downloads only and never reach tasks.json.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import SourceError
from ..model import LabelVolume, Task
from ..paths import safe_name
from .audit import search_filters, task_entry, task_events
from .base import Source, TaskFilter, TaskRef
from .queries import QUERIES
from .records import task_from_record
from .shards import record_from_shard
from .taxonomy import parse_taxonomy
from .transport import RetryPolicy, Transport

__all__ = ["DEFAULT_URL", "RedBrickProject", "api_key", "record_from_shard"]

DEFAULT_URL = "https://api.redbrickai.com/graphql/"
PAGE_SIZE = 50

def api_key() -> str:
    """``REDBRICK_API_KEY``, else the RedBrick CLI's credentials file (``~/.redbrickai/credentials``)."""
    key = os.environ.get("REDBRICK_API_KEY", "").strip()
    if key:
        return key
    path = Path(os.environ.get("REDBRICK_CREDENTIALS", Path.home() / ".redbrickai" / "credentials"))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        text = ""
    found = re.search(r"^\s*key\s*=\s*(\S+)", text, flags=re.M)
    if not found:
        raise SourceError("no RedBrick API key: set REDBRICK_API_KEY or log in with the RedBrick CLI")
    return found.group(1)


class RedBrickProject(Source):
    """The tasks of a RedBrick project (see the module docstring). ``since`` is an ISO timestamp: only tasks
    updated after it (RedBrick's ``cacheTime``). ``lookahead`` tasks (and the next page) are fetched ahead,
    ``download_threads`` files at a time; ``lookahead=0, download_threads=1`` fetches strictly in sequence."""

    uses_threads = True

    def __init__(self, org_id: str, project_id: str, *, key: str | None = None, url: str = DEFAULT_URL,
                 task_filter: TaskFilter | None = None, since: str | None = None,
                 cache: str | os.PathLike[str] | None = None, policy: RetryPolicy | None = None,
                 download_threads: int = 4, lookahead: int = 8) -> None:
        self.org_id, self.project_id = org_id, project_id
        self.filter = task_filter or TaskFilter()
        self.since = since
        self.warnings = []
        self.transport = Transport(url, key or api_key(), policy=policy)
        self.cache = Path(cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                          / "labelport" / org_id / project_id)
        self.download_threads = download_threads
        self.lookahead = lookahead
        self._ahead: dict[str, Any] = {}  # task id -> future of its downloads, while refs() runs
        self._seen: set[str] = set()
        self._users: dict[str, str] | None = None
        self._complete = False
        project = self._query("getTaxonomySDK").get("project")
        if not project:
            raise SourceError(f"RedBrick project {project_id} not found in organization {org_id} "
                              "(or the API key has no access to it)")
        taxonomy = project.get("taxonomy") or {}
        self.taxonomy = parse_taxonomy(taxonomy, f"taxonomy of project {project_id}")

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
            shards = (self._query("taskSDK", taskId=t).get("task") for t in sorted(self.filter.task_ids))
            pages: Iterator[list[Any]] = iter([[s for s in shards if s]])
        else:
            pages = self._pages("tasksPagedSDK", "tasksPaged", stageName=self._stage(), cacheTime=self.since)
        chosen = (shard for page in pages for shard in page if self._select(shard))
        with ThreadPoolExecutor(max(1, self.download_threads)) as pool:
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
        self._complete = not (self.filter.task_ids or self.filter.stage or self.filter.only_ground_truth
                              or self.since)

    def users(self) -> dict[str, str]:
        """The organisation's members and API keys: user id -> e-mail (or name, for an API key)."""
        if self._users is None:
            members = self.transport.graphql("membersSDK", QUERIES["membersSDK"], {"orgId": self.org_id})
            self._users = {}
            for member in members.get("members") or []:
                user = member.get("user") or {}
                if user.get("userId"):
                    self._users[str(user["userId"])] = str(user.get("email") or user.get("givenName") or "")
        return self._users

    def active_time(self, stage: str, task_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Time spent on tasks in ``stage`` (optionally one task), as RedBrick's SDK reports it:
        ``{orgId, projectId, stageName, taskId, completedBy, timeSpent (ms), completedAt, cycle}``."""
        for entry in self._entries("taskActiveTimeSDK", "taskActiveTime", stageName=stage, taskId=task_id):
            yield {"orgId": self.org_id, "projectId": self.project_id, "stageName": stage,
                   "taskId": entry.get("taskId"), "completedBy": (entry.get("user") or {}).get("email"),
                   "timeSpent": entry.get("timeSpent"), "completedAt": entry.get("date"), "cycle": entry.get("cycle")}

    def events(self) -> Iterator[dict[str, Any]]:
        """The audit trail of the selected tasks (the project's task filter and ``since``), one record per
        task: ``{taskId, taskName, currentStageName, events: [{eventType, createdAt, ...}]}``."""
        users = self.users()
        if self.filter.task_ids:
            tasks: Iterator[Any] = (self._query("taskEventSDK", taskId=t).get("task")
                                    for t in sorted(self.filter.task_ids))
        else:
            tasks = self._entries("taskEventsSDK", "tasksPaged", stageName=self._stage(), cacheTime=self.since)
        for task in tasks:
            if task and self.filter.accepts(task.get("taskId"), task.get("currentStageName")):
                yield task_events(task, users)

    def list_tasks(self, search: str = "ALL", *, stage: str | None = None, name: str | None = None,
                   exact_match: bool = False, user_id: str | None = None, completed_at: tuple[str | None,
                   str | None] = (None, None), limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Tasks of the project, as RedBrick's SDK lists them (see :func:`labelport.sources.audit.task_entry`).
        ``search`` is one of :data:`~labelport.sources.audit.SEARCHES`; ``name`` searches task names
        (``exact_match`` for the whole name only); ``user_id`` narrows to one assignee; ``completed_at`` bounds
        a ``COMPLETED`` search."""
        try:
            stage_for_search, filters = search_filters(search, user_id, *completed_at)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        task_search = f'"{name}"' if name and exact_match else name
        users = self.users()
        entries = self._entries("tasksListSDK", "genericTasks", stageName=stage_for_search or stage,
                              taskSearch=task_search, manualLabelingFilters=filters)
        for count, entry in enumerate(entries):
            if limit is not None and count >= limit:
                return
            yield task_entry(entry, users)

    def _select(self, shard: Mapping[str, Any]) -> bool:
        self._seen.add(str(shard.get("taskId")))
        return self.filter.accepts(shard.get("taskId"), shard.get("currentStageName"))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ahead"] = {}  # futures stay in the process that started them
        return state

    def missing_task_ids(self) -> list[str]:
        return sorted(self.filter.task_ids - self._seen)

    def all_task_ids(self) -> set[str] | None:
        return set(self._seen) if self._complete else None

    def _presign(self, storage_id: str, paths: list[str]) -> list[str]:
        urls = self.transport.graphql("presignItemsSDK", QUERIES["presignItemsSDK"],
                                      {"orgId": self.org_id, "storageId": storage_id, "items": paths})
        found = urls.get("presignItems") or []
        if len(found) != len(paths):
            raise SourceError(f"presigning returned {len(found)} URLs for {len(paths)} files")
        return [str(u) for u in found]

    def _fetch(self, ref: TaskRef) -> tuple[dict[int, str], dict[str, str]]:
        """Download a task's label maps (and images, when needed): (series index -> label map, item -> image)."""
        shard = ref.record
        latest = shard.get("latestTaskData") or {}
        folder = self.cache / safe_name(ref.task_id, "task") / safe_name(str(latest.get("tdId") or "labels"), "labels")
        wanted = [(int(m["seriesIndex"]), str(m["labelName"])) for m in latest.get("labelsMap") or []
                  if m.get("labelName") is not None]
        local: dict[int, str] = {}
        if wanted:
            targets = [str(folder / f"{index}.nii.gz") for index, _ in wanted]
            missing = [(name, target) for (_, name), target in zip(wanted, targets) if not os.path.isfile(target)]
            if missing:
                storage = str((latest.get("labelsStorage") or {}).get("storageId") or "")
                urls = self._presign(storage, [name for name, _ in missing])
                with ThreadPoolExecutor(min(self.download_threads, len(missing))) as pool:
                    list(pool.map(lambda pair: self.transport.download(pair[0], pair[1], gzipped=True),
                                  zip(urls, [target for _, target in missing])))
            local = {index: target for (index, _), target in zip(wanted, targets)}
        images = self._download_images(ref, shard) if self.images_needed else {}
        return local, images

    def open(self, ref: TaskRef) -> Task:
        ahead = self._ahead.pop(ref.task_id, None)
        try:
            local, images = ahead.result() if ahead is not None else self._fetch(ref)
        except SourceError as exc:
            raise exc.located(task=ref.label) from None
        try:
            record = record_from_shard(ref.record, local)
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"unexpected task object from the API ({type(exc).__name__}: {exc})",
                              task=ref.label) from None
        return task_from_record(record, self.taxonomy, lambda path: path, _read, images.get)

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
        missing = [(item, target) for item, target in zip(items, targets) if not os.path.isfile(target)]
        if missing:
            urls = self._presign(storage, [item for item, _ in missing])
            with ThreadPoolExecutor(self.download_threads) as pool:
                list(pool.map(lambda pair: self.transport.download(pair[0], pair[1]),
                              zip(urls, [target for _, target in missing])))
        return dict(zip(items, targets))


def _read(path: str) -> LabelVolume:
    from ..niftiio import read_label_nifti

    return read_label_nifti(path)
