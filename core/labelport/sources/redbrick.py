"""A live RedBrick AI project as a source: tasks fetched over the API, label maps (and images, when a writer
needs them) downloaded into a cache, each task turned into the tasks.json record a RedBrick export would hold.

    labelport export redbrick:ORG_ID/PROJECT_ID -o OUT --writer nifti     # key from REDBRICK_API_KEY

Pages of tasks are fetched one ahead while the current page is exported; the label maps of a task download in
parallel (bounded). Presigned URLs are used for downloads only and never reach tasks.json.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import SourceError
from ..model import LabelVolume, Task
from ..paths import safe_name
from .base import Source, TaskFilter, TaskRef
from .records import task_from_record
from .taxonomy import parse_taxonomy
from .transport import RetryPolicy, Transport

__all__ = ["DEFAULT_URL", "RedBrickProject", "api_key", "record_from_shard"]

DEFAULT_URL = "https://api.redbrickai.com/graphql/"
PAGE_SIZE = 50

TASK_SHARD = """taskId currentStageName priority currentStageSubTask { state }
 datapoint { name items createdAt createdByEntity { email } metaData
   seriesInfo { name itemsIndices metaData imageHeaders } storageMethod { storageId } }
 latestTaskData { tdId createdAt createdByEntity { email } labelsData
   labelsStorage { storageId } labelsMap { seriesIndex labelName } }"""
QUERIES = {
    "getTaxonomySDK": "query getTaxonomySDK($orgId: UUID!, $projectId: UUID!) "
                      "{ project(orgId: $orgId, projectId: $projectId) { taxonomy { name objectTypes } } }",
    "tasksPagedSDK": "query tasksPagedSDK($orgId: UUID!, $projectId: UUID!, $stageName: String, $cacheTime: DateTime, "
                     "$first: Int, $after: String) { tasksPaged(orgId: $orgId, projectId: $projectId, "
                     "stageName: $stageName, cacheTime: $cacheTime, first: $first, after: $after) "
                     f"{{ entries {{ {TASK_SHARD} }} cursor count }} }}",
    "taskSDK": "query taskSDK($orgId: UUID!, $projectId: UUID!, $taskId: UUID!) "
               f"{{ task(orgId: $orgId, projectId: $projectId, taskId: $taskId) {{ {TASK_SHARD} }} }}",
    "taskActiveTimeSDK": "query taskActiveTimeSDK($orgId: UUID!, $projectId: UUID!, $stageName: String!, "
                         "$taskId: UUID, $first: Int, $after: String) { taskActiveTime(orgId: $orgId, "
                         "projectId: $projectId, stageName: $stageName, taskId: $taskId, first: $first, after: $after) "
                         "{ entries { taskId user { userId email givenName } timeSpent cycle date } cursor } }",
    "presignItemsSDK": "query presignItemsSDK($orgId: UUID!, $storageId: UUID!, $items: [String]!) "
                       "{ presignItems(orgId: $orgId, storageId: $storageId, items: $items) }",
}


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


def _attributes(raw: Any) -> dict[str, Any]:
    """RedBrick's [{name, value}] attribute list as {name: value} ("true"/"false" strings become booleans)."""
    out: dict[str, Any] = {}
    for item in raw or []:
        if isinstance(item, Mapping) and "name" in item:
            value = item.get("value")
            out[str(item["name"])] = {"true": True, "false": False}.get(value, value) \
                if isinstance(value, str) else value
    return out


def _label_props(label: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {"id": label.get("labelid"), "category": label.get("category")}
    attributes = _attributes(label.get("attributes"))
    if attributes:
        props["attributes"] = attributes
    return props


def record_from_shard(shard: Mapping[str, Any], segmentations: Mapping[int, str]) -> dict[str, Any]:
    """A task record as a RedBrick export's tasks.json holds it, from the API's task object and the local
    paths of its downloaded label maps (by series index). Fields are emitted only when they have a value."""
    datapoint = shard.get("datapoint") or {}
    latest = shard.get("latestTaskData") or {}
    labels = json.loads(latest.get("labelsData") or "[]")
    items = datapoint.get("items") or []
    record: dict[str, Any] = {"taskId": shard["taskId"], "name": datapoint.get("name") or "", "series": []}
    task_classification = next((lab for lab in labels if lab.get("studyclassify")), None)
    for index, info in enumerate(datapoint.get("seriesInfo") or []):
        series: dict[str, Any] = {"name": info.get("name") or ""}
        series["items"] = [items[i] for i in info.get("itemsIndices") or []]
        for key in ("metaData", "imageHeaders"):
            if info.get(key):
                series[key] = info[key]
        own = [lab for lab in labels if lab.get("volumeindex") == index]
        if index in segmentations:
            series["segmentations"] = segmentations[index]
            seg_map = {}
            for lab in own:
                dicom = lab.get("dicom")
                if isinstance(dicom, Mapping) and dicom.get("instanceid") is not None:
                    entry = _label_props(lab)
                    if dicom.get("groupids"):
                        entry["overlappingGroups"] = list(dicom["groupids"])
                    seg_map[str(dicom["instanceid"])] = entry
            series["segmentMap"] = seg_map
            series.update(binaryMask=False, semanticMask=False, pngMask=False)
        vectors: dict[str, list[Any]] = {}
        for lab in own:
            props = {k: v for k, v in _label_props(lab).items() if k != "category"}
            if lab.get("seriesclassify"):
                vectors.setdefault("classifications", []).append(props)
            elif lab.get("length3d"):
                m = lab["length3d"]
                vectors.setdefault("measurements", []).append(
                    {"type": "length", "point1": m.get("point1"), "point2": m.get("point2"), "normal": m.get("normal"),
                     **({"length": m["computedlength"]} if m.get("computedlength") is not None else {}),
                     **_label_props(lab)})
            elif lab.get("point3d"):
                p = lab["point3d"]
                vectors.setdefault("landmarks3d", []).append(
                    {"point": {"i": p.get("pointx"), "j": p.get("pointy"), "k": p.get("pointz")}, **_label_props(lab)})
            elif lab.get("cuboid"):
                c = lab["cuboid"]
                vectors.setdefault("cuboids", []).append(
                    {"point1": c.get("point1"), "point2": c.get("point2"), **_label_props(lab)})
        series.update(vectors)
        record["series"].append(series)
    fields = {
        "labelsId": latest.get("tdId"), "currentStageName": shard.get("currentStageName"),
        "status": (shard.get("currentStageSubTask") or {}).get("state"), "priority": shard.get("priority"),
        "createdBy": (datapoint.get("createdByEntity") or {}).get("email"), "createdAt": datapoint.get("createdAt"),
        "storageId": (datapoint.get("storageMethod") or {}).get("storageId"),
        "updatedBy": (latest.get("createdByEntity") or {}).get("email"), "updatedAt": latest.get("createdAt"),
        "metaData": datapoint.get("metaData"),
        "classification": {k: v for k, v in _label_props(task_classification).items() if k != "category"}
        if task_classification else None,
    }
    record.update({k: v for k, v in fields.items() if v not in (None, "", {}, [])})
    return record


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
        self._complete = False
        data = self._query("getTaxonomySDK")
        taxonomy = ((data.get("project") or {}).get("taxonomy")) or {}
        self.taxonomy = parse_taxonomy(taxonomy, f"taxonomy of project {project_id}")

    def _query(self, operation: str, **variables: Any) -> dict[str, Any]:
        return self.transport.graphql(operation, QUERIES[operation],
                                      {"orgId": self.org_id, "projectId": self.project_id, **variables})

    def _pages(self) -> Iterator[list[dict[str, Any]]]:
        """Pages of task objects; the next page is fetched while the caller works on this one."""
        stage = "END" if self.filter.only_ground_truth else self.filter.stage

        def fetch(cursor: str | None) -> dict[str, Any]:
            return dict(self._query("tasksPagedSDK", stageName=stage, cacheTime=self.since, first=PAGE_SIZE,
                                    after=cursor).get("tasksPaged") or {})

        with ThreadPoolExecutor(1) as prefetch:
            page = fetch(None)
            while True:
                cursor = page.get("cursor")
                if cursor and not self.lookahead:  # strictly sequential, as RedBrick's SDK fetches
                    yield list(page.get("entries") or [])
                    page = fetch(cursor)
                    continue
                following = prefetch.submit(fetch, cursor) if cursor else None
                yield list(page.get("entries") or [])
                if following is None:
                    return
                page = following.result()

    def refs(self) -> Iterator[TaskRef]:
        """The selected tasks. While they are exported, the files of the next ``lookahead`` tasks download in
        the background (into the cache, where :meth:`open` finds them)."""
        self._seen, self._complete = set(), False
        if self.filter.task_ids:
            shards = (self._query("taskSDK", taskId=t).get("task") for t in sorted(self.filter.task_ids))
            pages: Iterator[list[Any]] = iter([[s for s in shards if s]])
        else:
            pages = self._pages()
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

    def active_time(self, stage: str, task_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Time spent on tasks in ``stage`` (optionally one task), as RedBrick's SDK reports it:
        ``{orgId, projectId, stageName, taskId, completedBy, timeSpent (ms), completedAt, cycle}``."""
        cursor = None
        while True:
            page = self._query("taskActiveTimeSDK", stageName=stage, taskId=task_id, first=PAGE_SIZE,
                               after=cursor).get("taskActiveTime") or {}
            for entry in page.get("entries") or []:
                yield {"orgId": self.org_id, "projectId": self.project_id, "stageName": stage,
                       "taskId": entry.get("taskId"), "completedBy": (entry.get("user") or {}).get("email"),
                       "timeSpent": entry.get("timeSpent"), "completedAt": entry.get("date"),
                       "cycle": entry.get("cycle")}
            cursor = page.get("cursor")
            if not cursor:
                return

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
