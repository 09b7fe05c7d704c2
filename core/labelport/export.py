"""The export pipeline: source -> tasks -> every selected writer -> files and one tasks.json per writer.

Each task is opened once and its label maps loaded once for all writers. A task that fails (unreadable
input, a writer error) is reported and its partial output removed; the other tasks are still exported.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .context import WriterContext
from .errors import LabelportError, OptionError, PluginError
from .model import Task
from .paths import UniqueNames
from .plugins import Registry, WriterInfo
from .sources import Source, TaskFilter, TaskRef, open_source
from .tasksjson import TasksJsonWriter

__all__ = ["ExportReport", "Failure", "export"]

UnknownLabels = Literal["error", "warn"]
Progress = Callable[[int, "int | None", bool], None]


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
    """What an export did: tasks written per writer, failures with reasons, warnings, time."""

    out: str
    roots: dict[str, str]
    tasks_seen: int = 0
    written: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed_tasks(self) -> int:
        return len({(f.task_id, f.task) for f in self.failures})


def _series_stems(task: Task) -> dict[int, str]:
    names = UniqueNames()
    stems = {}
    for s in task.series:
        letter = chr(ord("A") + s.index) if s.index < 26 else f"S{s.index + 1}"
        stems[s.index] = names.take(s.name, letter)
    return stems


def _resolve_writers(
    registry: Registry, names: Sequence[str], options: Mapping[str, Mapping[str, Any]]
) -> list[tuple[WriterInfo, Any]]:
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
            raise PluginError(f"writer {name!r} needs {', '.join(missing)} "
                              f"(pip install {' '.join(missing)})")
        chosen.append((info, info.spec.parse_options(options.get(name))))
    return chosen


def _fail(exc: BaseException, task: str, task_id: str, writer: str | None) -> Failure:
    if isinstance(exc, LabelportError):
        message = str(exc.located(task=task))
    else:  # a bug or an unexpected library error: still one line, the traceback for --debug
        message = f"task {task!r}: {type(exc).__name__}: {exc}"
    return Failure(task, task_id, writer, message, traceback.format_exc())


def _export_task(
    task: Task, folder: str, writers: list[tuple[WriterInfo, Any]], roots: Mapping[str, str],
) -> list[tuple[str, dict[str, Any] | None, Failure | None]]:
    results: list[tuple[str, dict[str, Any] | None, Failure | None]] = []
    stems = _series_stems(task)
    for info, opts in writers:
        ctx = WriterContext(roots[info.name], folder, stems, opts, writer=info.name)
        try:
            entry = info.spec.write(task, ctx)
            if not isinstance(entry, dict) or entry.get("taskId") != task.task_id:
                raise PluginError(f"writer {info.name!r} returned no tasks.json entry for this task")
            try:
                json.dumps(entry)
            except (TypeError, ValueError) as exc:
                raise PluginError(f"writer {info.name!r} returned an entry that is not JSON ({exc})") from None
            results.append((info.name, entry, None))
        except Exception as exc:
            ctx.rollback()
            results.append((info.name, None, _fail(exc, task.label, task.task_id, info.name)))
    return results


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
) -> ExportReport:
    """Export ``source`` (an export folder or a :class:`Source`) with the named writers into ``out``.

    With one writer ``out`` is its root (``out/tasks.json``, ``out/segmentations/...``); with several each
    gets ``out/<writer>/``. ``options`` maps a writer name to its options (strings are converted by type).
    ``unknown_labels="warn"`` exports label maps holding values missing from the segmentMap instead of
    failing those tasks. Returns an :class:`ExportReport`; problems with single tasks never raise.
    """
    started = time.perf_counter()
    registry = registry or Registry()
    chosen = _resolve_writers(registry, writers, options or {})
    task_filter = TaskFilter.of(task_ids, stage, only_ground_truth)
    if isinstance(source, Source) and (task_filter != TaskFilter() or taxonomy is not None):
        raise OptionError("give task filters and the taxonomy to the Source itself")
    src = open_source(source, task_filter=task_filter, taxonomy=taxonomy)
    out = os.fspath(out)
    roots = {info.name: out if len(chosen) == 1 else os.path.join(out, info.name) for info, _ in chosen}
    report = ExportReport(out=out, roots=roots, written={info.name: 0 for info, _ in chosen})
    total = src.count()
    jsons = {}
    for name, root in roots.items():
        os.makedirs(root, exist_ok=True)
        jsons[name] = TasksJsonWriter(os.path.join(root, "tasks.json"))
    folders = UniqueNames()
    try:
        for ref in src.refs():
            report.tasks_seen += 1
            failed = _run_one(src, ref, folders, chosen, roots, jsons, report, unknown_labels)
            if progress is not None:
                progress(report.tasks_seen, total, failed)
        for task_id in src.missing_task_ids():
            report.failures.append(Failure(task_id, task_id, None, f"task id {task_id!r} is not in the source"))
    except BaseException:
        for writer in jsons.values():
            writer.abort()
        raise
    for writer in jsons.values():
        writer.close()
    report.warnings[:0] = src.warnings
    report.seconds = time.perf_counter() - started
    return report


def _run_one(
    src: Source, ref: TaskRef, folders: UniqueNames, chosen: list[tuple[WriterInfo, Any]],
    roots: Mapping[str, str], jsons: Mapping[str, TasksJsonWriter], report: ExportReport,
    unknown_labels: UnknownLabels,
) -> bool:
    """Export one task with every writer; returns whether anything failed."""
    try:
        task = src.open(ref)
    except Exception as exc:
        report.failures.append(_fail(exc, ref.label, ref.task_id, None))
        return True
    folder = folders.take(task.name, task.task_id)
    try:
        task.check(unknown_labels=unknown_labels == "error")
        if unknown_labels == "warn":
            for s in task.series:
                if s.unknown_values():
                    report.warnings.append(f"task {task.label!r}, series {s.name!r}: label values "
                                           f"{s.unknown_values()} are not in the segmentMap (kept as stored)")
    except Exception as exc:
        report.failures.append(_fail(exc, task.label, task.task_id, None))
        task.release()
        return True
    failed = False
    try:
        for name, entry, failure in _export_task(task, folder, chosen, roots):
            if failure is not None:
                report.failures.append(failure)
                failed = True
                continue
            jsons[name].add(entry)
            report.written[name] += 1
    finally:
        task.release()
    return failed
