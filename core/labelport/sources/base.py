"""What every source provides: a filtered stream of task references, each opened into a :class:`Task`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import OptionError, did_you_mean
from ..model import Task, Taxonomy
from .lookups import Lookups

__all__ = ["Missing", "Source", "TaskFilter", "TaskRef"]


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks to take: by id, by current stage, or only ground truth (stage ``END``)."""

    task_ids: frozenset[str] = frozenset()
    stage: str | None = None
    only_ground_truth: bool = False

    @classmethod
    def of(cls, task_ids: Iterable[str] = (), stage: str | None = None,
           only_ground_truth: bool = False) -> TaskFilter:
        return cls(frozenset(task_ids), stage, only_ground_truth)

    def accepts(self, task_id: Any, stage: Any) -> bool:
        if self.task_ids and task_id not in self.task_ids:
            return False
        if self.only_ground_truth and stage != "END":
            return False
        return not (self.stage is not None and stage != self.stage)


class Missing(str):
    """The path of a file that a task names and that is not there."""


class TaskRef:
    """A task before it is opened: its position in the source, id, name and raw record. ``digest`` tells the
    record's text from any other (None when the source has no text of it); a source may give the record as a
    function that reads it, called when the record is first used."""

    __slots__ = ("_load", "_record", "digest", "index", "name", "task_id")

    def __init__(self, index: int, task_id: str, name: str, record: Any = None, digest: str | None = None,
                 load: Callable[[], Any] | None = None) -> None:
        self.index, self.task_id, self.name, self.digest = index, task_id, name, digest
        self._record, self._load = record, load

    @property
    def record(self) -> Any:
        if self._load is not None:
            self._record, self._load = self._load(), None
        return self._record

    @property
    def label(self) -> str:
        return self.name or self.task_id or f"#{self.index + 1}"

    def __reduce__(self) -> tuple[Any, ...]:  # the record travels with the reference (to worker processes)
        return TaskRef, (self.index, self.task_id, self.name, self.record, self.digest)

    def __repr__(self) -> str:
        return f"TaskRef(index={self.index!r}, task_id={self.task_id!r}, name={self.name!r})"


class Source(ABC):
    """A project to export. Iterating a source opens its tasks one at a time (label maps stay lazy)."""

    #: the project's taxonomy (derived from the tasks when the source has none)
    taxonomy: Taxonomy
    #: problems that do not stop an export (shown in the summary)
    warnings: list[str]
    #: set by the export when a selected writer reads image files (sources that download them then do)
    images_needed: bool = False
    #: image files found on disk are the user's own (a local export), not a download cache: the output's
    #: ``items`` may point at them
    local_images: bool = False
    #: the source runs threads while :meth:`refs` iterates; worker processes then start before it does
    uses_threads: bool = False
    #: the bytes one task's label maps may take at once (None: no limit); set by the export
    label_memory: int | None = 4 << 30
    #: what the source's file look-ups saw (see :meth:`seal_state`), for sources that can tell
    lookups: Lookups | None = None

    @abstractmethod
    def refs(self) -> Iterator[TaskRef]:
        """The selected tasks, in source order."""

    @abstractmethod
    def open(self, ref: TaskRef) -> Task:
        """Turn a reference into a :class:`Task`; raises :class:`SourceError` naming the task."""

    def stage_names(self) -> set[str] | None:
        """The stage names a ``stage`` filter can match, when known (a filter naming another one is refused)."""
        return None

    def check_stage(self, stage: str) -> None:
        """Raise :class:`OptionError`, with the closest known name, when ``stage`` is not one of
        :meth:`stage_names` (nothing is checked when they are unknown)."""
        known = self.stage_names()
        if known is not None and stage not in known:
            raise OptionError(f"no task is in stage {stage!r}{did_you_mean(stage, known)} "
                              f"(the stages: {', '.join(sorted(known)) or 'none'})")

    def input_paths(self, ref: TaskRef) -> tuple[list[str], list[str]]:
        """The files a task's record names, as it names them: its label maps and its images (for incremental
        export; they depend on the record alone)."""
        return [], []

    def input_files(self, ref: TaskRef, paths: tuple[list[str], list[str]] | None = None) -> \
            tuple[list[str], list[str]]:
        """The files a task's output depends on, for incremental export: its label maps and its images, found
        from ``paths`` (its :meth:`input_paths`, worked out when not given); one that is not there is a
        :class:`Missing`."""
        return [], []

    def seal_state(self) -> str | None:
        """For an export that can skip looking at each task when nothing changed (see :mod:`labelport.seal`): a
        text that tells this source's task list (every record, in order) and where its files are looked up
        from any other; the source then notes what its look-ups see in :attr:`lookups` after
        :meth:`start_lookups`. None (the default): every export looks at every task."""
        return None

    def summary(self) -> str | None:
        """What an export needs of the whole source besides its tasks (such as how many there are and the
        categories that derive the taxonomy), as text kept with the seal, for :meth:`use_summary`; None (the
        default): nothing."""
        return None

    def use_summary(self, summary: str) -> bool:
        """Take :meth:`summary`'s facts from an export that saw the same :meth:`seal_state`, instead of reading
        the whole source; whether they were taken."""
        return False

    def start_lookups(self) -> None:
        """Note every file look-up from now on in :attr:`lookups` (see :meth:`seal_state`)."""
        self.lookups = None  # (a source that can tell sets up its own)

    def release(self) -> None:  # noqa: B027  (optional: a source that keeps nothing has nothing to do)
        """Let go of what this object keeps about the whole source (such as an index of every record). Called on
        the parent's source that a forked worker process inherits: the worker runs its tasks with a copy of its
        own, so that otherwise it would keep pages it never reads for as long as it runs. The default keeps
        nothing to let go of."""

    def all_task_ids(self) -> Collection[str] | None:
        """Every task id in the source, filters ignored, when known (after :meth:`refs` ran): outputs of
        tasks missing from it are removed by an incremental export."""
        return None

    def listing(self) -> Iterable[tuple[str, str]] | None:
        """(task id, name) of every task in source order, filters ignored, when known before :meth:`refs`
        runs: task folders are then named from the whole source, so that a filter never changes them. It is
        read once, alongside :meth:`refs` (whose references' ``index`` is their place in it)."""
        return None

    @property
    def streams_all(self) -> bool:
        """Whether :meth:`refs` yields every task of the source (no filter)."""
        return False

    def count(self) -> int | None:
        """How many tasks :meth:`refs` yields, when known in advance."""
        return None

    def missing_task_ids(self) -> list[str]:
        """Task ids that were asked for but are not in the source (known after :meth:`refs` ran)."""
        return []

    def __iter__(self) -> Iterator[Task]:
        for ref in self.refs():
            yield self.open(ref)
