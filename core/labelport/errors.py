"""labelport's exceptions: one clear message a user can act on, naming the task, series and file."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LabelError", "LabelportError", "OptionError", "PluginError", "SourceError", "UnknownWriterError",
           "WriterError"]


class LabelportError(Exception):
    """Base class. ``task``, ``series`` and ``file`` say where the problem is; ``str()`` names them."""

    def __init__(
        self, reason: str, *, task: str | None = None, series: str | None = None, file: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task = task
        self.series = series
        self.file = file

    def located(
        self, *, task: str | None = None, series: str | None = None, file: str | None = None
    ) -> LabelportError:
        """Fill in whatever location is still unknown (inner code knows the file, outer code the task)."""
        self.task = self.task or task
        self.series = self.series or series
        self.file = self.file or file
        return self

    def __str__(self) -> str:
        where = []
        if self.task is not None:
            where.append(f"task {self.task!r}")
        if self.series is not None:
            where.append(f"series {self.series!r}")
        if self.file is not None:
            where.append(f"file {self.file}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class SourceError(LabelportError):
    """The input (export folder, tasks.json, a label map file, the API) is missing or malformed."""


class LabelError(SourceError):
    """A label map disagrees with its segmentMap (a voxel value no instance or overlap group explains)."""


class PluginError(LabelportError):
    """A plugin failed to load or declares something invalid (a duplicate writer name, a bad spec)."""


class OptionError(LabelportError):
    """A writer option is unknown or has the wrong type."""


class UnknownWriterError(PluginError, OptionError):
    """A writer name that no installed plugin provides (or none given): a wrong command line."""


class WriterError(LabelportError):
    """A writer could not write a task."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``name`` (ignoring case), or an empty string."""
    import difflib

    options = {c.casefold(): c for c in choices}
    close = difflib.get_close_matches(name.casefold(), list(options), n=1, cutoff=0.6)
    return f" (did you mean {options[close[0]]!r}?)" if close else ""
