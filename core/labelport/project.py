"""Project steps: a writer root's files made once per export from all of its tasks.

After the tasks of an export are recorded, each writer root runs its steps in order: labelport's own, which
writes ``tasks.json``, then the writer's ``project`` function when its :class:`~labelport.WriterSpec` has one
(``dataset.json``, a COCO ``annotations.json``, ...). A step gets :class:`TaskEntries`: the tasks.json entries
of every task the root holds, written by this export or left unchanged by it, in tasks.json order. So a step
sees the whole project whatever this run wrote: a filtered run, a re-run that wrote nothing and a run after a
task left the source all give it the same view a clean export would.

The steps run again only when an entry changed, one was added or removed, their order changed, the writer, its
options or version or the taxonomy changed, or a file they wrote is missing. Their files are recorded in the
manifest; files an earlier run of the steps wrote and this one does not are removed. A step that fails is
reported as a failure of its writer (``task`` is ``"(project)"``); its files are removed, so the next export
runs it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, overload

from .context import ProjectContext
from .errors import LabelportError
from .manifest import Manifest, fingerprint
from .taskrun import Failure, Interrupted
from .tasksjson import write_tasks_json
from .warned import caught_warnings
from .writer import ProjectFunction

__all__ = ["PROJECT", "TaskEntries", "run_project"]

#: how failures of a project step name their "task"
PROJECT = "(project)"


class TaskEntries(Sequence[dict[str, Any]]):
    """The tasks.json entries of every task of a writer root, in order; each is parsed when it is read (a
    fresh dict every time, so a step may change it)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [json.loads(t) for t in self._texts[index]]
        return json.loads(self._texts[index])  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (json.loads(t) for t in self._texts)

    def texts(self) -> Iterator[str]:
        """Each entry as tasks.json holds it (indented JSON text), without parsing it."""
        return iter(self._texts)


def run_project(manifest: Manifest, writer: str, options: Any, step: ProjectFunction | None, context: str,
                ctx: ProjectContext) -> tuple[list[Failure], list[str]]:
    """Run the project steps of one writer root when anything they depend on changed (``context``: the
    writer's version and the taxonomy, as text); returns (failures, warnings)."""
    fp = fingerprint("project", writer, options, context)
    previous = manifest.project
    if (not manifest.entries_changed and previous.get("fingerprint") == fp
            and manifest.present(previous.get("files") or [])):
        return [], []
    entries = TaskEntries(manifest.entries())
    failures: list[Failure] = []
    steps: list[tuple[str, ProjectFunction]] = [("writing tasks.json", write_tasks_json)]
    if step is not None:
        steps.append(("project step", step))
    for what, function in steps:
        done = len(ctx.written)
        try:
            with caught_warnings() as caught:
                function(entries, ctx)
            for found in caught:
                ctx.warn(str(found.message))
        except BaseException as exc:  # a step's SystemExit is its failure; the user's Ctrl-C ends the export
            if isinstance(exc, KeyboardInterrupt) and Interrupted.event.is_set():
                raise
            for relpath in ctx.written[done:]:
                manifest.remove_files([relpath])
            del ctx.written[done:]
            problem = str(exc) if isinstance(exc, LabelportError) else f"{type(exc).__name__}: {exc}"
            import traceback  # (only for a failure)

            failures.append(Failure(PROJECT, "", writer, f"writer {writer!r}, {what}: {problem}",
                                    traceback.format_exc()))
    manifest.record_project(None if failures else fp, list(dict.fromkeys(ctx.written)))
    return failures, [f"{writer}, project step: {message}" for message in ctx.warnings]
