"""The export pipeline: source -> tasks -> every selected writer -> files and one tasks.json per writer.

Each task is opened once and its label maps loaded once for all writers, on a worker process (``workers``)
or in this one (see :mod:`labelport.taskrun` and :mod:`labelport.workers`). A task that fails (unreadable
input, a malformed record, a writer error, a worker that died or ran out of time) is reported by name and its
output removed; the other tasks are still exported.

Exports are incremental and always equal to a clean export: a task is written again when anything its output
depends on changed (its record, the size and time of its files, the taxonomy, its folder name, the writer and
its options and version, ``unknown_labels``, ``images`` and, for ``images="reference"``, where the output
folder is; labelport's version); the outputs of tasks that left the source
are removed; an interrupted export resumes (see :mod:`labelport.manifest`). An export that finds nothing
changed since a complete one tells so without looking at each task (see :mod:`labelport.seal`).
``force=True`` rewrites everything. Task folders are named from the whole source in source order, so a filter
never changes them.
tasks.json always lists exactly the tasks whose files are on disk: a filtered export refreshes the tasks it
selects and keeps the others' entries.

One export at a time writes into a folder, never into (or around) its own source; see :mod:`labelport.outdir`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._version import __version__
from .context import ProjectContext
from .digest import blake2b
from .errors import LabelportError, OptionError, PluginError, UnknownWriterError
from .heap import EVERY, give_back
from .imageitems import IMAGES_MODES, ImagesMode
from .manifest import Inputs, Manifest, fingerprint, input_digest, record_digest
from .outdir import OutputLock, check_output, clear_scratch
from .paths import UniqueNames, safe_name
from .plugins import Registry, WriterInfo
from .project import PROJECT, run_project
from .seal import new_seal, seal_key, sealed
from .sources import LocalExport, Source, TaskFilter, TaskRef, open_source
from .taskrun import (
    Failure,
    Interrupted,
    Outcome,
    Settings,
    failure,
    quiet_library_logs,
    run_task,
    worker_init,
    worker_run,
)
from .textset import TextSet

__all__ = ["ExportReport", "Failure", "export"]

UnknownLabels = Literal["error", "warn"]
Progress = Callable[[int, "int | None", bool], None]


@dataclass(frozen=True)
class TaskDone:
    """One task, finished (given to ``export(on_task=...)`` in source order): the writers that wrote it, found it
    unchanged, or failed on it (with the messages)."""

    name: str
    task_id: str
    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Notify:
    """The caller's ``progress`` and ``on_task`` callbacks, told about each finished task."""

    progress: Progress | None = None
    on_task: Callable[[TaskDone], None] | None = None

    def __call__(self, done: int, total: int | None, task: TaskDone) -> None:
        if self.on_task is not None:
            self.on_task(task)
        if self.progress is not None:
            self.progress(done, total, bool(task.messages))
Chosen = list[tuple[WriterInfo, Any]]
_SEEN_BATCH = 4096  # observations of the source's look-ups noted in the manifest at a time


@dataclass
class ExportReport:
    """What an export did: per writer, tasks written, left unchanged and removed; failures; warnings."""

    out: str
    roots: dict[str, str]
    tasks_seen: int = 0
    written: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    #: files removed per writer: those of tasks that left the source, or that a task no longer writes
    removed_files: dict[str, int] = field(default_factory=dict)
    #: nothing was written: ``written`` counts the tasks an export would write
    dry_run: bool = False
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed_tasks(self) -> int:
        return len({(f.task_id, f.task) for f in self.failures if f.task != PROJECT})

    @property
    def failed_steps(self) -> int:
        """Writers whose project step failed (see :mod:`labelport.project`)."""
        return len({f.writer for f in self.failures if f.task == PROJECT})


@dataclass
class _Slot:
    """A task on its way through the pipeline, kept until every earlier task is flushed."""

    ref: TaskRef
    key: str
    folder: str
    fingerprints: dict[str, str]
    reused: set[str]  # the writers whose earlier output of the task stands
    todo: list[str]
    inputs: Inputs | None = None  # see Manifest.record
    parsed: bool = False  # whether the inputs were worked out from the record (not taken from the manifest)


def _resolve_writers(registry: Registry, names: Sequence[str], options: Mapping[str, Mapping[str, Any]]) -> Chosen:
    if not names:
        raise UnknownWriterError("no writer selected (use --writer NAME; `labelport writers` lists them)")
    unique = list(dict.fromkeys(names))
    stray = sorted(set(options) - set(unique))
    if stray:
        raise OptionError(f"options given for writer(s) not selected: {', '.join(stray)}")
    chosen = []
    for name in unique:
        info = registry.writer(name)
        missing = info.spec.missing()
        if missing:
            raise PluginError(f"writer {name!r} needs {', '.join(missing)} (pip install {' '.join(missing)})")
        chosen.append((info, info.spec.parse_options(options.get(name))))
    return chosen


def _names(value: Any, what: str) -> list[str]:
    """A name or a list of names (a lone string is one name, not a list of characters)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise OptionError(f"{what} must be a list of strings, not {type(value).__name__}")
    names = list(value)
    bad = [v for v in names if not isinstance(v, str) or not v]
    if bad:
        raise OptionError(f"{what} must be a list of non-empty strings; got {bad[0]!r}")
    return names


def _check_arguments(source: Any, out: Any, options: Any, stage: Any, only_ground_truth: Any, taxonomy: Any,
                     unknown_labels: Any, images: Any, registry: Any, progress: Any, workers: Any, force: Any,
                     task_timeout: Any) -> None:
    """One clear message for each misuse of :func:`export` (its signature says what each argument takes)."""
    path_like = (str, os.PathLike)
    checks = [
        (isinstance(source, (*path_like, Source)), "source must be a folder path or a labelport Source"),
        (isinstance(out, path_like) and str(out) != "", "out must be a folder path"),
        (options is None or (isinstance(options, Mapping) and all(
            isinstance(k, str) and isinstance(v, Mapping) for k, v in options.items())),
         "options must map writer names to {option: value} mappings"),
        (stage is None or (isinstance(stage, str) and stage != ""), "stage must be a stage name or None"),
        (isinstance(only_ground_truth, bool), "only_ground_truth must be True or False"),
        (taxonomy is None or isinstance(taxonomy, path_like), "taxonomy must be a file path or None"),
        (unknown_labels in ("error", "warn") and isinstance(unknown_labels, str),
         f"unknown_labels must be 'error' or 'warn', not {unknown_labels!r}"),
        (images in IMAGES_MODES and isinstance(images, str),
         f"images must be one of {', '.join(map(repr, IMAGES_MODES))}, not {images!r}"),
        (registry is None or isinstance(registry, Registry), "registry must be a labelport Registry or None"),
        (progress is None or callable(progress), "progress must be a function or None"),
        (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1,
         f"workers must be a whole number of at least 1, not {workers!r}"),
        (isinstance(force, bool), "force must be True or False"),
        (task_timeout is None or (isinstance(task_timeout, (int, float)) and not isinstance(task_timeout, bool)
                                  and task_timeout > 0), f"task_timeout must be a number of seconds above 0 "
                                                         f"or None, not {task_timeout!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise OptionError(message)


class _Folders:
    """Task keys and folder names. They come from the whole source, in source order, whenever the source can
    list it (so a filter or a failed task never changes them); otherwise from the folders earlier exports
    recorded, a newcomer never taking another task's folder. The listing is walked alongside the tasks: of the
    tasks passed, only their keys and folder names are kept, packed (see :mod:`labelport.textset`)."""

    def __init__(self, listing: Iterable[tuple[str, str]] | None, streams_all: bool,
                 recorded: Callable[[], Mapping[str, str]]):
        self.keys = _Keys()  # (also for tasks the listing did not have: never a key it gave)
        self.listed = enumerate(_keyed(listing, self.keys)) if listing is not None else None
        self.names = UniqueNames()
        self.fresh = UniqueNames() if streams_all else None
        self._recorded = recorded
        self.recorded: dict[str, str] | None = None  # read when first needed
        self.used: dict[str, int] = {}  # casefolded folder -> how many tasks recorded it
        self.taken: set[str] = set()

    def of(self, ref: TaskRef) -> tuple[str, str]:
        """A task's manifest key and folder (tasks come in listing order)."""
        for index, (key, name, fallback) in self.listed or ():
            folder = self.names.take(name, fallback)
            if index == ref.index:
                return key, folder
        key = self.keys(ref.task_id, ref.index)
        return key, self.take(key, ref.name, ref.task_id or f"record-{ref.index + 1}")

    def every_key(self) -> TextSet | None:
        """The keys of every task of the source, when it lists them (after the tasks of a run)."""
        if self.listed is None:
            return None
        for _ in self.listed:
            pass
        return self.keys.given

    def take(self, key: str, name: str, fallback: str) -> str:
        if self.fresh is not None:
            return self.fresh.take(name, fallback)
        if self.recorded is None:
            self.recorded = dict(self._recorded())
            for folder in self.recorded.values():
                self.used[folder.casefold()] = self.used.get(folder.casefold(), 0) + 1
        base = safe_name(name, fallback)
        own = self.recorded.get(key)
        if own and (own == base or (own.startswith(base + "-") and own[len(base) + 1:].isdigit())):
            self.taken.add(own.casefold())
            return own
        mine = own.casefold() if own else None

        def free(folder: str) -> bool:
            return folder not in self.taken and self.used.get(folder, 0) == (folder == mine)

        candidate, n = base, 1
        while not free(candidate.casefold()):
            n += 1
            candidate = f"{base}-{n}"
        self.taken.add(candidate.casefold())
        return candidate


class _Keys:
    """The manifest keys of tasks, in source order: a task's id; a task id that repeats makes a task of its
    own, ``<id>\0<n>``, never a key handed out before (an id may hold a NUL)."""

    def __init__(self) -> None:
        self.given = TextSet()
        self.repeats: dict[str, int] = {}

    def __call__(self, task_id: str, index: int) -> str:
        key = base = task_id or f"record {index}"
        n = self.repeats.get(base, 1)
        while not self.given.add(key):
            n += 1
            key = f"{base}\0{n}"
        if n > 1:
            self.repeats[base] = n
        return key


def _keyed(listing: Iterable[tuple[str, str]], key: _Keys) -> Iterator[tuple[str, str, str]]:
    """(manifest key, name, folder fallback) for each (task id, name) of a source, in order."""
    for index, (task_id, name) in enumerate(listing):
        yield key(task_id, index), name, task_id or f"record-{index + 1}"


def _gone(key: str, present: Container[str], by_key: bool) -> bool:
    """Whether the task of a manifest key left the source, whose tasks are ``present`` by key, or else by id
    (a repeat, ``<id>\0<n>``, stays while its id does)."""
    if key in present:
        return False
    base, repeat, _ = key.rpartition("\0")
    return by_key or not (repeat and base in present)


def _digest(*parts: Any) -> str:
    return blake2b(repr(parts).encode(), digest_size=16).hexdigest()


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the export the same way (cleanly, raising KeyboardInterrupt), and mark that they
    really arrived (see :class:`labelport.taskrun.Interrupted`)."""
    Interrupted.event.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, Interrupted.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Runner:
    """Runs tasks in this process (``workers == 1`` and no time limit) or on a :class:`WorkerPool`, keeping at
    most two tasks per worker in flight so that memory is bounded by the workers, not by the project."""

    def __init__(self, workers: int, timeout: float | None, src: Source, chosen: Chosen, roots: dict[str, str],
                 settings: Settings) -> None:
        self.src, self.chosen, self.roots, self.settings = src, chosen, roots, settings
        self.done: dict[int, Outcome] = {}
        self.refs: dict[int, TaskRef] = {}
        self.pool: Any = None
        self.workers, self.timeout = workers, timeout
        self.parallel = workers > 1 or timeout is not None
        self.limit = 2 * workers
        if not self.parallel:
            quiet_library_logs()  # (as each worker process does)

    def _pool(self) -> Any:
        """The worker processes, made when the first task needs them (a no-op re-export starts none)."""
        if self.pool is None:
            from .workers import WorkerPool

            names = [info.name for info, _ in self.chosen]
            options = {info.name: opts for info, opts in self.chosen}
            self.pool = WorkerPool(self.workers, worker_init, (self.src, names, options, self.roots,
                                                               self.settings),
                                   worker_run, timeout=self.timeout, respawn="spawn" if self.src.uses_threads else None)
        return self.pool

    def start(self) -> None:
        """Start the worker processes now, before the caller starts any thread (fork and threads do not mix)."""
        if self.parallel:
            self._pool().start()

    def submit(self, seq: int, ref: TaskRef, folder: str, names: list[str]) -> None:
        if not self.parallel:
            chosen = [(info, opts) for info, opts in self.chosen if info.name in names]
            self.done[seq] = run_task(self.src, ref, folder, chosen, self.roots, self.settings)
            return
        while self._pool().busy >= self.limit:
            self.collect(block=True)
        self.refs[seq] = ref
        self._pool().submit(seq, (ref, folder, names))

    def collect(self, block: bool) -> None:
        """Move finished tasks into :attr:`done` (waiting for at least one when ``block``)."""
        if self.pool is None:
            return
        from .workers import Died, TimedOut

        for seq, result in self.pool.results(block):
            ref = self.refs.pop(seq)
            if isinstance(result, Died):
                result = Outcome(failures=[Failure(ref.label, ref.task_id, None, f"task {ref.label!r}: {result.how}")])
            elif isinstance(result, TimedOut):
                result = Outcome(failures=[Failure(ref.label, ref.task_id, None, f"task {ref.label!r}: stopped after "
                                                   f"the time limit of {result.seconds:g} s (--task-timeout)")])
            self.done[seq] = result

    def close(self, kill: bool = False) -> None:
        if self.pool is not None:
            self.pool.close(kill=kill)


def _workers_for(src: Source, workers: int, registry: Registry, scheduler: Any = None) -> int:
    """The worker processes to use: 1 when plugins cannot reach other processes. A Dask cluster has no such
    fallback: there, that and a source that cannot be sent are errors."""
    remote = scheduler is not None
    if (workers > 1 or remote) and registry.in_process:
        if remote:
            raise OptionError("plugins registered in this process cannot run on a Dask cluster: install them as "
                              "packages or name them with --plugin/LABELPORT_PLUGINS on every worker")
        warnings.warn("plugins registered in this process cannot run on worker processes; using one", stacklevel=3)
        return 1
    if remote:
        import pickle

        try:
            pickle.dumps(src)
        except Exception as exc:  # a Source holding a connection or a lock, say
            raise OptionError(f"the source cannot be sent to Dask workers ({exc})") from None
    return workers


def _sendable(src: Source, workers: int, timeout: float | None) -> tuple[int, float | None]:
    """The local worker processes and time limit to use: one worker and no limit (this process) when the source
    cannot be sent to other processes. (Tried only when tasks are to be looked at: a sent source has its
    taxonomy worked out first.)"""
    if workers > 1 or timeout is not None:
        import pickle

        try:
            pickle.dumps(src)
        except Exception as exc:  # a Source holding a connection or a lock, say
            warnings.warn(f"the source cannot be sent to worker processes ({exc}); using one"
                          + (" and no time limit" if timeout is not None else ""), stacklevel=4)
            return 1, None
    return workers, timeout


def export(
    source: str | os.PathLike[str] | Source,
    out: str | os.PathLike[str],
    writers: str | Sequence[str],
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    task_ids: str | Iterable[str] = (),
    stage: str | None = None,
    only_ground_truth: bool = False,
    taxonomy: str | os.PathLike[str] | None = None,
    unknown_labels: UnknownLabels = "error",
    images: ImagesMode = "reference",
    registry: Registry | None = None,
    progress: Progress | None = None,
    on_task: Callable[[TaskDone], None] | None = None,
    workers: int = 1,
    force: bool = False,
    task_timeout: float | None = None,
    max_label_memory: int | None = 4 << 30,
    allow_outside_paths: bool = False,
    dry_run: bool = False,
    scheduler: Any = None,
) -> ExportReport:
    """Export ``source`` (an export folder or a :class:`Source`) with the named writers into ``out``.

    With one writer ``out`` is its root (``out/tasks.json``, ``out/segmentations/...``); with several each
    gets ``out/<writer>/``. ``options`` maps a writer name to its options (strings are converted by type).
    ``unknown_labels="warn"`` exports label maps holding values missing from the segmentMap instead of
    failing those tasks. ``images`` says where the written ``items`` point: at the source's image files
    (``"reference"``), or at copies (``"copy"``) or hard links (``"link"``) of them in each writer's folder
    (see :mod:`labelport.imageitems`). ``workers`` > 1 runs tasks on that many processes; ``task_timeout``
    (seconds) stops a task that runs longer (it then runs on a worker process even with one worker).
    ``max_label_memory`` bounds the bytes of one task's label maps (a larger map fails its task before anything
    is allocated; None: no bound). Paths in an export folder's tasks.json must stay inside it unless
    ``allow_outside_paths``. Only tasks whose inputs or options changed since the last export into ``out`` are
    written, unless ``force``. ``progress(done, total, failed)`` is called after each task and ``on_task`` with
    a :class:`TaskDone` for it. ``dry_run`` writes nothing and reports what an export would write, leave
    unchanged and remove (``report.written`` then counts the tasks that would be written). ``scheduler`` runs
    the tasks on a Dask cluster instead of local processes: ``"local:N"`` (a LocalCluster of N processes), a
    scheduler address (``"tcp://host:8786"``) or a ``distributed.Client`` (see :mod:`labelport.cluster`).
    Returns an :class:`ExportReport`; problems with single tasks never raise.
    """
    started = time.perf_counter()
    _check_arguments(source, out, options, stage, only_ground_truth, taxonomy, unknown_labels, images, registry,
                     progress, workers, force, task_timeout)
    if not (max_label_memory is None or (isinstance(max_label_memory, int) and not isinstance(max_label_memory, bool)
                                         and max_label_memory > 0)):
        raise OptionError(f"max_label_memory must be a number of bytes above 0 or None, not {max_label_memory!r}")
    if not isinstance(allow_outside_paths, bool):
        raise OptionError("allow_outside_paths must be True or False")
    if not (on_task is None or callable(on_task)):
        raise OptionError("on_task must be a function or None")
    notify = _Notify(progress, on_task)
    registry = registry or Registry()
    if scheduler is not None and task_timeout is not None:
        raise OptionError("task_timeout (--task-timeout) is for local workers; a Dask cluster has its own limits")
    chosen = _resolve_writers(registry, _names(writers, "writers"), options or {})
    task_filter = TaskFilter.of(_names(task_ids, "task_ids"), stage, only_ground_truth)
    if isinstance(source, Source) and (task_filter != TaskFilter() or taxonomy is not None or allow_outside_paths):
        raise OptionError("give task filters, the taxonomy and allow_outside_paths to the Source itself")
    if scheduler is not None and not isinstance(source, Source):  # workers elsewhere: no path relative to here
        source = os.path.abspath(source)
    src = open_source(source, task_filter=task_filter, taxonomy=taxonomy, allow_outside_paths=allow_outside_paths)
    if not any(os.path.exists(os.path.join(r, ".labelport", "manifest.sqlite")) for r in _roots(out, chosen).values()):
        src.taxonomy  # noqa: B018  (a first export reads the whole source before it creates anything)
    if scheduler is not None and isinstance(src, LocalExport) and not src.root.is_absolute():
        raise OptionError(f"a Dask cluster needs the export folder as an absolute path, not {str(src.root)!r}")
    stage = task_filter.stage or getattr(getattr(src, "filter", None), "stage", None)
    if isinstance(stage, str):
        src.check_stage(stage)
    src.images_needed = images != "reference" or any(info.spec.needs_images for info, _ in chosen)
    src.label_memory = max_label_memory
    out = os.fspath(out) if scheduler is None else os.path.abspath(out)
    check_output(out, str(src.root) if isinstance(src, LocalExport) else None)
    workers = _workers_for(src, workers, registry, scheduler)
    roots = _roots(out, chosen)
    names = list(roots)
    report = ExportReport(out=out, roots=roots, written=dict.fromkeys(names, 0),
                          unchanged=dict.fromkeys(names, 0), removed=dict.fromkeys(names, 0))
    for root in roots.values():
        if os.path.isdir(os.path.join(root, "tasks.json")):
            raise LabelportError(f"cannot write {os.path.join(root, 'tasks.json')}: tasks.json is a folder")
    if not isinstance(dry_run, bool):
        raise OptionError("dry_run must be True or False")
    report.dry_run = dry_run
    if dry_run:  # read-only: no folder, no lock, nothing recorded
        manifests = {name: Manifest(root, readonly=True) for name, root in roots.items()}
        try:
            _run(src, chosen, roots, manifests, report, Settings(unknown_labels, images), notify, workers,
                 scheduler, task_timeout, force, dry_run=True)
        finally:
            for manifest in manifests.values():
                manifest.close()
        report.warnings[:0] = src.warnings
        report.seconds = time.perf_counter() - started
        return report
    with OutputLock(out), _signals():
        manifests = {}
        for name, root in roots.items():
            os.makedirs(root, exist_ok=True)
            clear_scratch(root)
            manifests[name] = manifest = Manifest(root)
            if manifest.writer not in (None, name) and len(manifest):
                report.warnings.append(f"{root} held the output of writer {manifest.writer!r}; writer {name!r} "
                                       "replaces it (its files are removed)")
            manifest.set_writer(name)
        try:
            try:
                _run(src, chosen, roots, manifests, report, Settings(unknown_labels, images), notify, workers,
                     scheduler, task_timeout, force)
            except sqlite3.DatabaseError as exc:  # damaged after it opened (a damaged file is replaced on open)
                raise LabelportError(f"a manifest in {out} is damaged ({exc}): remove "
                                     f"{os.path.join(out, '**', '.labelport', 'manifest.sqlite')} to write every "
                                     "task again") from None
            from .review.runinfo import save_run

            for info, opts in chosen:  # for the review page (labelport report)
                save_run(roots[info.name], info.name, opts, report, src.taxonomy)
        finally:  # what a worker killed mid-file left behind (the workers are gone by now)
            for root in roots.values():
                clear_scratch(root)
            for manifest in manifests.values():
                manifest.close()
    report.warnings[:0] = src.warnings
    report.seconds = time.perf_counter() - started
    return report


def _run(src: Source, chosen: Chosen, roots: dict[str, str], manifests: dict[str, Manifest], report: ExportReport,
         settings: Settings, notify: _Notify, workers: int, scheduler: Any, timeout: float | None,
         force: bool, dry_run: bool = False) -> None:
    names = list(roots)
    versions = {info.name: f"{info.plugin.package} {info.plugin.version}" for info, _ in chosen}
    # reference mode: items are paths from each writer root to the source, so where the roots are counts
    where = {n: os.path.abspath(r) if settings.images == "reference" else "" for n, r in roots.items()}
    # the seal's key: what each writer's fingerprints depend on besides the task and the taxonomy, which the
    # source's seal_state stands for (the files it is made from)
    unkeyed = {info.name: repr((opts, settings, where[info.name], versions[info.name])) for info, opts in chosen}
    first = manifests[names[0]]
    if src.lookups is not None:
        src.lookups.digests.update(first.digests)
    export_key = seal_key(src, names, unkeyed)
    if export_key is not None and not force and first.seal_summary is not None \
            and sealed(export_key, [manifests[n] for n in names], steady_images=settings.images == "link") \
            and src.use_summary(first.seal_summary):
        _run_sealed(src, names, report, notify)
        if not dry_run:
            _end(src, chosen, roots, manifests, report, versions, _digest(src.taxonomy))
        return
    taxonomy = _digest(src.taxonomy)
    # what each writer's fingerprints depend on besides the task (the same for every task)
    context = {info.name: repr((opts, taxonomy, settings, where[info.name], versions[info.name]))
               for info, opts in chosen}
    # this export's look-ups are noted in the first writer's manifest, to seal the manifests when it ends
    seen = manifests[names[0]] if export_key is not None and not dry_run else None
    if seen is not None:
        src.start_lookups()
        seen.start_seen()
        for manifest in manifests.values():
            manifest.unseal()
    if scheduler is None:
        workers, timeout = _sendable(src, workers, timeout)
    runner: Any = _Runner(workers, timeout, src, chosen, roots, settings)
    if scheduler is not None:
        from .cluster import DaskRunner

        runner = DaskRunner(scheduler, src, names, {info.name: opts for info, opts in chosen}, roots, settings)
    # forked workers and running threads do not mix; and a first export, which writes every task, starts its
    # workers before the per-task index below exists: pages they share with this process are copied once it
    # touches their objects (a re-run starts them when the first task needs writing, if one does)
    if not dry_run and (src.uses_threads or not any(len(m) for m in manifests.values())):
        try:
            runner.start()
        except BaseException:
            runner.close(kill=True)
            raise
    folders = _Folders(src.listing(), src.streams_all, lambda: {k: f for m in manifests.values()
                                                               for k, f in m.folders().items()})
    total = src.count()
    base = str(src.root) if isinstance(src, LocalExport) else None  # however SOURCE was spelled
    pending: dict[int, _Slot] = {}
    flushed = 0

    def flush() -> None:
        nonlocal flushed
        while flushed in pending and (not pending[flushed].todo or flushed in runner.done):
            slot = pending.pop(flushed)
            done = _finish(slot, runner.done.pop(flushed, None), names, manifests, report)
            flushed += 1
            notify(flushed, total, done)

    try:
        for seq, ref in enumerate(src.refs()):
            report.tasks_seen += 1
            if seq % EVERY == EVERY - 1:
                give_back()  # (the pages freed between the keys and names kept go back to the system)
            key, folder = folders.of(ref)
            try:
                known, parsed = _inputs(src, ref, manifests[names[0]], key)
                labels, images = src.input_files(ref, known.paths)
                if seen is not None and src.lookups is not None and src.lookups.made_count() >= _SEEN_BATCH:
                    seen.add_seen(src.lookups.take())
                inputs = input_digest(known.record, labels + images, __version__,
                                      steady=set(images) if settings.images == "link" else (), base=base,
                                      stat=src.lookups.stat if seen is not None and src.lookups else os.stat)
                fps = {n: fingerprint(inputs, n, context[n], folder) for n in names}
            except Exception as exc:  # a record too malformed to even look at: this task fails, by name
                if dry_run:
                    report.failures.append(lost := failure(exc, ref.label, ref.task_id, None))
                    flushed += 1
                    notify(flushed, total, TaskDone(ref.label, ref.task_id, failed=tuple(names),
                                                    messages=(lost.message,)))
                    continue
                runner.done[seq] = Outcome(failures=[failure(exc, ref.label, ref.task_id, None)])
                pending[seq] = _Slot(ref, key, "", {}, set(), names)
                flush()
                continue
            reused = set() if force else {n for n in names if manifests[n].unchanged(key, fps[n])}
            if dry_run:  # what would happen, counted: nothing runs and nothing is recorded
                for n in names:
                    (report.unchanged if n in reused else report.written)[n] += 1
                flushed += 1
                notify(flushed, total, TaskDone(ref.label, ref.task_id, tuple(n for n in names if n not in reused),
                                                tuple(n for n in names if n in reused)))
                continue
            pending[seq] = slot = _Slot(ref, key, folder, fps, reused, [n for n in names if n not in reused],
                                        known if ref.digest else None, parsed)
            if slot.todo:
                _commit(manifests)  # what finished survives whatever happens while this task runs
                runner.submit(seq, ref, folder, slot.todo)
            runner.collect(block=False)
            flush()
        while pending:
            _commit(manifests)
            runner.collect(block=True)
            flush()
        for task_id in src.missing_task_ids():
            report.failures.append(Failure(task_id, task_id, None, f"task id {task_id!r} is not in the source"))
        keys = folders.every_key()  # the tasks that are in the source, by key or else by id
        present = keys if keys is not None else src.all_task_ids()
        if present is not None:
            for name, manifest in manifests.items():
                for key in [k for k in manifest.task_keys() if _gone(k, present, by_key=keys is not None)]:
                    if not dry_run:
                        manifest.forget(key)
                    report.removed[name] += 1
    except BaseException:
        runner.close(kill=True)
        with contextlib.suppress(Exception):  # every task recorded so far is whole: the next export keeps them
            _commit(manifests)
        raise
    runner.close()
    if dry_run:
        return
    # the keys handed out, in source order: those of this run's tasks, and for a source that lists itself those
    # of all its tasks (which were all this run's when it saw as many); no filter left one out when every task
    # of the source (by key, or by id) is one of this run's
    order = folders.keys.given
    complete = present is not None and (flushed if keys is not None else sum(key in present for key in order)
                                        ) == len(present)
    if complete:
        for manifest in manifests.values():
            manifest.reorder(order)  # a filtered run keeps the others' places; new tasks come last
    # (tasks.json and the taxonomy file must still be those the key was made from: the records were split from
    # the bytes the key's digest is now of)
    if seen is not None and export_key is not None and src.lookups is not None and complete and not report.failures \
            and not src.lookups.partial and seal_key(src, names, unkeyed) == export_key:
        seen.add_seen(src.lookups.take())
        seal = new_seal(export_key)
        for manifest in manifests.values():
            manifest.set_seal(seal, src.summary() if manifest is seen else None)
    if seen is not None and src.lookups is not None:  # (the next export's key is made from them)
        seen.set_digests(src.lookups.digests)
    _end(src, chosen, roots, manifests, report, versions, taxonomy)


def _roots(out: str | os.PathLike[str], chosen: Chosen) -> dict[str, str]:
    """Each writer's root: ``out`` for one writer, ``out/<writer>`` for several."""
    return {info.name: os.fspath(out) if len(chosen) == 1 else os.path.join(out, info.name) for info, _ in chosen}


def _run_sealed(src: Source, names: list[str], report: ExportReport, notify: _Notify) -> None:
    """An export whose manifests are sealed and whose inputs all stand (see :mod:`labelport.seal`): every
    task is unchanged."""
    count = src.count()
    if count is None:
        count = sum(1 for _ in src.listing() or ())
    if notify.on_task is not None:
        unchanged = tuple(names)
        for done, (task_id, name) in enumerate(src.listing() or (), 1):
            notify(done, count, TaskDone(name or task_id or f"#{done}", task_id, unchanged=unchanged))
    elif notify.progress is not None:  # (without reading each task's name)
        for done in range(1, count + 1):
            notify.progress(done, count, False)
    report.tasks_seen = count
    for name in names:
        report.unchanged[name] = count


def _end(src: Source, chosen: Chosen, roots: dict[str, str], manifests: dict[str, Manifest], report: ExportReport,
         versions: dict[str, str], taxonomy: str) -> None:
    """The end of an export: stale files removed, the project steps run, the manifests saved."""
    for info, opts in chosen:
        manifest = manifests[info.name]
        manifest.finish()
        ctx = ProjectContext(roots[info.name], opts, info.name, src.taxonomy)
        failures, warned = run_project(manifest, info.name, opts, info.spec.project, f"{versions[info.name]} "
                                       f"{__version__} {taxonomy}", ctx)
        report.failures += failures
        report.warnings += warned
        report.removed_files[info.name] = manifest.removed
        manifest.save()


def _inputs(src: Source, ref: TaskRef, manifest: Manifest, key: str) -> tuple[Inputs, bool]:
    """A task's :class:`~labelport.manifest.Inputs`, and whether they were worked out from its record: the
    paths a record names depend on its text alone, so a record whose text the manifest knows is not parsed."""
    known = manifest.inputs(key) if ref.digest else None
    if known is not None and known.text == ref.digest:
        return known, False
    paths = src.input_paths(ref)  # (checks the record first)
    return Inputs(ref.digest or "", record_digest(ref.record), paths), True


def _commit(manifests: Mapping[str, Manifest]) -> None:
    for manifest in manifests.values():
        manifest.commit()


def _finish(slot: _Slot, outcome: Outcome | None, names: list[str], manifests: Mapping[str, Manifest],
            report: ExportReport) -> TaskDone:
    """Record one task's results, in source order, and say what happened to it. A writer that failed on
    the task loses its earlier output of it, so that the disk, the manifest and tasks.json agree and the next
    export tries (and reports) the task again."""
    outcome = outcome or Outcome()
    report.warnings += outcome.warnings
    report.failures += outcome.failures
    written, failed = [], []
    for name in names:
        if name in slot.reused:
            report.unchanged[name] += 1
            if slot.parsed and slot.inputs:  # the record reads otherwise and means the same
                manifests[name].note_inputs(slot.key, slot.inputs)
        elif name in outcome.results:
            text, files = outcome.results[name]
            manifests[name].record(slot.key, slot.fingerprints[name], files, text, slot.folder, slot.inputs)
            report.written[name] += 1
            written.append(name)
        else:
            manifests[name].forget(slot.key)
            failed.append(name)
    if outcome.failures and not failed:  # a failure that no writer owns still fails the task
        failed = [f.writer or "" for f in outcome.failures]
    return TaskDone(slot.ref.label, slot.ref.task_id, tuple(written), tuple(n for n in names if n in slot.reused),
                    tuple(failed), tuple(f.message for f in outcome.failures))
