"""The export pipeline: source -> tasks -> every selected writer -> files and one tasks.json per writer.

Each task is opened once and its label maps loaded once for all writers, on a worker process (``workers``)
or in this one. A task that fails (unreadable input, a writer error) is reported and its partial output
removed; the other tasks are still exported. tasks.json is written in source order, atomically.

Exports are incremental: a task whose inputs and writer options did not change since the last export into the
same folder is not written again, the outputs of tasks that left the source are removed, and an interrupted
export resumes (see :mod:`labelport.manifest`). ``force=True`` rewrites everything.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._version import __version__
from .context import WriterContext
from .errors import LabelportError, OptionError, PluginError
from .manifest import Manifest, fingerprint, input_digest, sweep_temporary_files
from .model import Task
from .paths import UniqueNames
from .plugins import Registry, WriterInfo
from .sources import Source, TaskFilter, TaskRef, open_source
from .tasksjson import TasksJsonWriter, encode_entry

__all__ = ["ExportReport", "Failure", "export"]

UnknownLabels = Literal["error", "warn"]
Progress = Callable[[int, "int | None", bool], None]
Chosen = list[tuple[WriterInfo, Any]]


@dataclass(frozen=True)
class Failure:
    """A task (or, with ``writer``, one writer's part of it) that was not exported."""

    task: str
    task_id: str
    writer: str | None
    message: str
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.writer}] {self.message}" if self.writer else self.message


@dataclass
class ExportReport:
    """What an export did: per writer, tasks written, left unchanged and removed; failures; warnings."""

    out: str
    roots: dict[str, str]
    tasks_seen: int = 0
    written: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed_tasks(self) -> int:
        return len({(f.task_id, f.task) for f in self.failures})


@dataclass
class _Outcome:
    """What running one task produced: per writer (its tasks.json entry as text, files) or a failure; warnings."""

    results: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Slot:
    """A task on its way through the pipeline, kept until every earlier task is flushed."""

    ref: TaskRef
    key: str
    fingerprints: dict[str, str]
    reused: dict[str, dict[str, Any]]
    todo: list[str]


def _series_stems(task: Task) -> dict[int, str]:
    names = UniqueNames()
    return {s.index: names.take(s.name, chr(ord("A") + s.index) if s.index < 26 else f"S{s.index + 1}")
            for s in task.series}


def _resolve_writers(registry: Registry, names: Sequence[str], options: Mapping[str, Mapping[str, Any]]) -> Chosen:
    if not names:
        raise PluginError("no writer selected (use --writer NAME; `labelport writers` lists them)")
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


def _failure(exc: BaseException, task: str, task_id: str, writer: str | None) -> Failure:
    if isinstance(exc, LabelportError):
        message = str(exc.located(task=task))
    else:  # a bug or an unexpected library error: still one line, the traceback for --debug
        message = f"task {task!r}: {type(exc).__name__}: {exc}"
    return Failure(task, task_id, writer, message, traceback.format_exc())


def run_task(src: Source, ref: TaskRef, folder: str, chosen: Chosen, roots: Mapping[str, str],
             unknown_labels: UnknownLabels) -> _Outcome:
    """Open one task, check it and run the given writers on it (in this process)."""
    outcome = _Outcome()
    try:
        task = src.open(ref)
    except Exception as exc:
        outcome.failures.append(_failure(exc, ref.label, ref.task_id, None))
        return outcome
    try:
        task.check(unknown_labels=unknown_labels == "error")
        for s in task.series:
            if unknown_labels == "warn" and (unknown := s.unknown_values()):
                outcome.warnings.append(f"task {task.label!r}, series {s.name!r}: label values "
                                        f"{unknown} are not in the segmentMap (kept as stored)")
    except Exception as exc:
        outcome.failures.append(_failure(exc, task.label, task.task_id, None))
        task.release()
        return outcome
    stems = _series_stems(task)
    try:
        for info, opts in chosen:
            ctx = WriterContext(roots[info.name], folder, stems, opts, writer=info.name)
            try:
                entry = info.spec.write(task, ctx)
                if not isinstance(entry, dict) or entry.get("taskId") != task.task_id:
                    raise PluginError(f"writer {info.name!r} returned no tasks.json entry for this task")
                try:
                    text = encode_entry(entry)  # here, on the worker: the parent only writes text
                except (TypeError, ValueError) as exc:
                    raise PluginError(f"writer {info.name!r} returned an entry that is not JSON ({exc})") from None
                outcome.results[info.name] = (text, list(ctx.written))
            except Exception as exc:
                ctx.rollback()
                outcome.failures.append(_failure(exc, task.label, task.task_id, info.name))
    finally:
        task.release()
    return outcome


# -- running tasks here or on worker processes ----------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(src: Source, names: list[str], options: dict[str, Any], roots: dict[str, str],
                 unknown_labels: UnknownLabels) -> None:
    import pickle

    src = pickle.loads(pickle.dumps(src))  # a forked worker must not share the parent's connections
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the parent process already reported broken plugins
        registry = Registry()
    _WORKER.update(src=src, chosen=[(registry.writer(n), options[n]) for n in names], roots=roots,
                   unknown_labels=unknown_labels)


def _worker_run(ref: TaskRef, folder: str, names: list[str]) -> _Outcome:
    chosen = [(info, opts) for info, opts in _WORKER["chosen"] if info.name in names]
    return run_task(_WORKER["src"], ref, folder, chosen, _WORKER["roots"], _WORKER["unknown_labels"])


class _Runner:
    """Runs tasks in this process (``workers == 1``) or on a pool of worker processes, keeping at most two
    tasks per worker in flight so that memory is bounded by the workers, not by the project."""

    def __init__(self, workers: int, src: Source, chosen: Chosen, roots: dict[str, str],
                 unknown_labels: UnknownLabels) -> None:
        self.src, self.chosen, self.roots, self.unknown_labels = src, chosen, roots, unknown_labels
        self.done: dict[int, _Outcome] = {}
        self.pool: Any = None
        self.futures: dict[Any, int] = {}
        self.limit = 2 * workers
        self.workers = workers

    def _start_pool(self) -> Any:
        """The worker processes, started when the first task needs them (a no-op re-export starts none)."""
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            names = [info.name for info, _ in self.chosen]
            options = {info.name: opts for info, opts in self.chosen}
            # fork starts a worker in milliseconds with labelport already loaded; spawn elsewhere (macOS, Windows)
            method = "fork" if sys.platform == "linux" else "spawn"
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                            initializer=_worker_init,
                                            initargs=(self.src, names, options, self.roots, self.unknown_labels))
        return self.pool

    def start(self) -> None:
        """Start the worker processes now (all at once), before the caller starts any thread."""
        if self.workers > 1:
            self._start_pool().submit(int).result()

    def submit(self, seq: int, ref: TaskRef, folder: str, names: list[str]) -> None:
        if self.workers == 1:
            chosen = [(info, opts) for info, opts in self.chosen if info.name in names]
            self.done[seq] = run_task(self.src, ref, folder, chosen, self.roots, self.unknown_labels)
            return
        while len(self.futures) >= self.limit:
            self.collect(block=True)
        self.futures[self._start_pool().submit(_worker_run, ref, folder, names)] = seq

    def collect(self, block: bool) -> None:
        """Move finished tasks into :attr:`done` (waiting for at least one when ``block``)."""
        if not self.futures:
            return
        from concurrent.futures import FIRST_COMPLETED, wait

        finished, _ = wait(list(self.futures), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in finished:
            seq = self.futures.pop(future)
            try:
                self.done[seq] = future.result()
            except Exception as exc:  # a worker process died (out of memory, a crash in native code)
                outcome = _Outcome()
                outcome.failures.append(Failure("?", "?", None, f"a worker process failed: {exc!r}"))
                self.done[seq] = outcome

    def close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


# -- the export ----------------------------------------------------------------------------------------------


def export(
    source: str | os.PathLike[str] | Source,
    out: str | os.PathLike[str],
    writers: Sequence[str],
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    task_ids: Iterable[str] = (),
    stage: str | None = None,
    only_ground_truth: bool = False,
    taxonomy: str | os.PathLike[str] | None = None,
    unknown_labels: UnknownLabels = "error",
    registry: Registry | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    force: bool = False,
) -> ExportReport:
    """Export ``source`` (an export folder or a :class:`Source`) with the named writers into ``out``.

    With one writer ``out`` is its root (``out/tasks.json``, ``out/segmentations/...``); with several each
    gets ``out/<writer>/``. ``options`` maps a writer name to its options (strings are converted by type).
    ``unknown_labels="warn"`` exports label maps holding values missing from the segmentMap instead of
    failing those tasks. ``workers`` > 1 runs tasks on that many processes. Only tasks whose inputs or
    options changed since the last export into ``out`` are written, unless ``force``. Returns an
    :class:`ExportReport`; problems with single tasks never raise.
    """
    started = time.perf_counter()
    registry = registry or Registry()
    chosen = _resolve_writers(registry, writers, options or {})
    task_filter = TaskFilter.of(task_ids, stage, only_ground_truth)
    if isinstance(source, Source) and (task_filter != TaskFilter() or taxonomy is not None):
        raise OptionError("give task filters and the taxonomy to the Source itself")
    if workers < 1:
        raise OptionError(f"workers must be at least 1, not {workers}")
    if workers > 1 and registry.in_process:
        warnings.warn("plugins registered in this process cannot run on worker processes; using one",
                      stacklevel=2)
        workers = 1
    src = open_source(source, task_filter=task_filter, taxonomy=taxonomy)
    src.images_needed = any(info.spec.needs_images for info, _ in chosen)
    if workers > 1:
        import pickle

        try:
            pickle.dumps(src)
        except Exception as exc:  # a Source holding a connection or a lock, say
            warnings.warn(f"the source cannot be sent to worker processes ({exc}); using one", stacklevel=2)
            workers = 1
    out = os.fspath(out)
    roots = {info.name: out if len(chosen) == 1 else os.path.join(out, info.name) for info, _ in chosen}
    names = list(roots)
    report = ExportReport(out=out, roots=roots, written=dict.fromkeys(names, 0),
                          unchanged=dict.fromkeys(names, 0), removed=dict.fromkeys(names, 0))
    manifests, jsons = {}, {}
    for name, root in roots.items():
        os.makedirs(root, exist_ok=True)
        manifests[name] = Manifest(root, existing=sweep_temporary_files(root))
        jsons[name] = TasksJsonWriter(os.path.join(root, "tasks.json"))
    total = src.count()
    runner = _Runner(workers, src, chosen, roots, unknown_labels)
    if src.uses_threads:
        runner.start()  # fork and running threads do not mix
    pending: dict[int, _Slot] = {}
    flushed = 0

    def flush() -> None:
        nonlocal flushed
        while flushed in pending and (not pending[flushed].todo or flushed in runner.done):
            slot = pending.pop(flushed)
            failed = _finish(slot, runner.done.pop(flushed, None), names, manifests, jsons, report)
            flushed += 1
            if progress is not None:
                progress(flushed, total, failed)

    try:
        folders, seen = UniqueNames(), dict[str, int]()
        for seq, ref in enumerate(src.refs()):
            report.tasks_seen += 1
            folder = folders.take(ref.name, ref.task_id)
            base = ref.task_id or f"record {ref.index}"
            seen[base] = seen.get(base, 0) + 1
            key = base if seen[base] == 1 else f"{base}\0{seen[base]}"  # a repeated task id is its own task
            inputs = input_digest(ref.record, src.input_files(ref), __version__)
            fps = {info.name: fingerprint(inputs, info.name, opts) for info, opts in chosen}
            reused = {} if force else {n: s for n in names if (s := manifests[n].unchanged(key, fps[n])) is not None}
            pending[seq] = slot = _Slot(ref, key, fps, reused, [n for n in names if n not in reused])
            if slot.todo:
                runner.submit(seq, ref, folder, slot.todo)
            runner.collect(block=False)
            flush()
        while pending:
            runner.collect(block=True)
            flush()
        for task_id in src.missing_task_ids():
            report.failures.append(Failure(task_id, task_id, None, f"task id {task_id!r} is not in the source"))
        present = src.all_task_ids()
        if present is not None:
            for name, manifest in manifests.items():
                for key in [k for k in manifest.tasks if k.split("\0")[0] not in present]:
                    manifest.forget(key)
                    report.removed[name] += 1
    except BaseException:
        runner.close(cancel=True)
        for writer in jsons.values():
            writer.abort()
        raise
    runner.close()
    for name in names:
        jsons[name].close()
        manifests[name].save()
    report.warnings[:0] = src.warnings
    report.seconds = time.perf_counter() - started
    return report


def _finish(slot: _Slot, outcome: _Outcome | None, names: list[str], manifests: Mapping[str, Manifest],
            jsons: Mapping[str, TasksJsonWriter], report: ExportReport) -> bool:
    """Record one task's results, in source order; returns whether anything failed."""
    outcome = outcome or _Outcome()
    report.warnings += outcome.warnings
    report.failures += [f if f.task != "?" else Failure(slot.ref.label, slot.ref.task_id, f.writer, f.message)
                        for f in outcome.failures]
    for name in names:
        if name in slot.reused:
            jsons[name].add_text(slot.reused[name]["json"])
            report.unchanged[name] += 1
        elif name in outcome.results:
            text, files = outcome.results[name]
            manifests[name].record(slot.key, slot.fingerprints[name], files, text)
            jsons[name].add_text(text)
            report.written[name] += 1
    return bool(outcome.failures)
