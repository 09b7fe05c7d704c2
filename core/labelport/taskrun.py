"""Running one task: open it, check it, and run each selected writer on its own copy of it.

A writer can only fail its own part of one task. Whatever it raises, ``sys.exit`` and ``KeyboardInterrupt``
included, becomes a :class:`Failure` naming the writer and the task, and the files it wrote for the task are
removed; the other writers still run. A writer gets a copy of the task's records, so changing them changes
nothing for the next writer. Its tasks.json entry must be strict JSON (no NaN or Infinity).
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .context import WriterContext
from .errors import LabelportError, PluginError
from .heap import EVERY, give_back
from .imageitems import ImagesMode, place_images
from .model import Task
from .paths import UniqueNames
from .plugins import WriterInfo
from .sources import Source, TaskRef
from .tasksjson import encode_entry
from .warned import caught_warnings

__all__ = ["Failure", "Outcome", "Settings", "run_task"]

UnknownLabels = Literal["error", "warn"]
Chosen = list[tuple[WriterInfo, Any]]


@dataclass(frozen=True)
class Settings:
    """What every task of one export runs with, besides its writers and their options."""

    #: label values missing from the segmentMap fail the task ("error") or are kept with a warning ("warn")
    unknown_labels: UnknownLabels = "error"
    #: where the output's ``items`` point (see :mod:`labelport.imageitems`)
    images: ImagesMode = "reference"


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
class Outcome:
    """What running one task produced: per writer (its tasks.json entry as text, files) or a failure; warnings."""

    results: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Interrupted:
    """Whether Ctrl-C (SIGINT) or SIGTERM really arrived, so that a ``KeyboardInterrupt`` a writer raises by
    itself is told apart from the user's. The export installs :meth:`handler` for its duration."""

    event = threading.Event()

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.event.set()
        raise KeyboardInterrupt(signal.Signals(signum).name)


def quiet_library_logs() -> None:
    """pydicom logs each warning it also raises: the warning reaches the report (once, named), the log line
    would only repeat it. Called by a process before it runs tasks."""
    import logging

    logging.getLogger("pydicom").setLevel(logging.ERROR)


def series_stems(task: Task) -> dict[int, str]:
    names = UniqueNames()
    return {s.index: names.take(s.name, chr(ord("A") + s.index) if s.index < 26 else f"S{s.index + 1}")
            for s in task.series}


def failure(exc: BaseException, task: str, task_id: str, writer: str | None) -> Failure:
    """One line naming the task (and the file, where known); the traceback is kept for ``--debug``."""
    if isinstance(exc, LabelportError):
        message = str(exc.located(task=task))
    elif isinstance(exc, MemoryError):
        message = f"task {task!r}: out of memory"
    elif isinstance(exc, RecursionError):
        message = f"task {task!r}: the task record nests too deeply to be read"
    elif isinstance(exc, PermissionError):
        message = f"task {task!r}: permission denied: {exc.filename or exc}"
    elif isinstance(exc, (SystemExit, KeyboardInterrupt)) or not isinstance(exc, Exception):
        message = f"task {task!r}: the writer raised {type(exc).__name__}({exc}), which labelport treats as " \
                  "a failure of this task"
    else:  # a bug or an unexpected library error: still one line, the traceback for --debug
        message = f"task {task!r}: {type(exc).__name__}: {exc}"
    import traceback  # (here: an export that fails nothing never needs it)

    return Failure(task, task_id, writer, message, traceback.format_exc())


def _own(exc: BaseException) -> bool:
    """Whether an exception belongs to the task (not a Ctrl-C or SIGTERM for the whole export)."""
    return not (isinstance(exc, KeyboardInterrupt) and Interrupted.event.is_set())


def run_task(src: Source, ref: TaskRef, folder: str, chosen: Chosen, roots: Mapping[str, str],
             settings: Settings) -> Outcome:
    """Open one task, check it and run the given writers on it (in this process)."""
    outcome = Outcome()
    try:
        task = src.open(ref)
    except BaseException as exc:
        if not _own(exc):
            raise
        outcome.failures.append(failure(exc, ref.label, ref.task_id, None))
        return outcome
    try:
        task.check(unknown_labels=settings.unknown_labels == "error")
        for s in task.series:
            if settings.unknown_labels == "warn" and (unknown := s.unknown_values()):
                outcome.warnings.append(f"task {task.label!r}, series {s.name!r}: label values "
                                        f"{unknown} are not in the segmentMap (kept as stored)")
    except BaseException as exc:
        task.release()
        if not _own(exc):
            raise
        outcome.failures.append(failure(exc, task.label, task.task_id, None))
        return outcome
    stems = series_stems(task)
    try:
        for info, opts in chosen:
            ctx = WriterContext(roots[info.name], folder, stems, opts, writer=info.name)
            try:
                with caught_warnings() as caught:  # library warnings: once each, named
                    entry = info.spec.write(task.copy(), ctx)
                for found in caught:
                    ctx.warn(str(found.message))
                if not isinstance(entry, dict) or entry.get("taskId") != task.task_id:
                    raise PluginError(f"writer {info.name!r} returned no tasks.json entry for this task")
                place_images(task, entry, ctx, settings.images, src.local_images)
                outcome.warnings += [f"task {task.label!r}, {info.name}: {message}" for message in ctx.warnings]
                try:
                    text = encode_entry(entry)  # here, on the worker: the parent only writes text
                except (TypeError, ValueError, RecursionError) as exc:
                    raise PluginError(f"writer {info.name!r} returned an entry that is not strict JSON ({exc})") \
                        from None
                outcome.results[info.name] = (text, list(ctx.written))
            except BaseException as exc:
                ctx.rollback()
                if not _own(exc):
                    raise
                outcome.failures.append(failure(exc, task.label, task.task_id, info.name))
    finally:
        task.release()
    return outcome


# -- on a worker process --------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def worker_state(src: Source, names: list[str], options: dict[str, Any], roots: dict[str, str],
                 settings: Settings) -> dict[str, Any]:
    """What a worker process needs to run an export's tasks: its own copy of the source, the writers (from its
    own plugin registry) with their options, the output roots and the settings."""
    import pickle

    from .plugins import Registry

    src = pickle.loads(pickle.dumps(src))  # a forked worker must not share the parent's connections
    quiet_library_logs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the parent process already reported broken plugins
        registry = Registry()
    return {"src": src, "chosen": [(registry.writer(n), options[n]) for n in names], "roots": roots,
            "settings": settings, "pid": os.getpid()}


def run_with(state: dict[str, Any], ref: TaskRef, folder: str, names: list[str]) -> Outcome:
    """Run one task with a :func:`worker_state`, with the writers in ``names``."""
    chosen = [(info, opts) for info, opts in state["chosen"] if info.name in names]
    return run_task(state["src"], ref, folder, chosen, state["roots"], state["settings"])


def worker_init(src: Source, names: list[str], options: dict[str, Any], roots: dict[str, str],
                settings: Settings) -> None:
    _WORKER.update(worker_state(src, names, options, roots, settings))
    # (a forked worker also holds the parent's source, which it never uses: let go of its pages)
    src.release()
    give_back()


def worker_run(ref: TaskRef, folder: str, names: list[str]) -> Outcome:
    _WORKER["ran"] = ran = _WORKER.get("ran", 0) + 1
    if ran % EVERY == 0:
        give_back()
    return run_with(_WORKER, ref, folder, names)
