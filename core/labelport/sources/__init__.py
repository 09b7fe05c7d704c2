"""Where tasks come from. :func:`open_source` picks the source for a location string."""

from __future__ import annotations

import os

from .base import Source, TaskFilter, TaskRef
from .local import LocalExport

__all__ = ["LocalExport", "Source", "TaskFilter", "TaskRef", "open_source"]


def open_source(
    location: str | os.PathLike[str] | Source,
    *,
    task_filter: TaskFilter | None = None,
    taxonomy: str | os.PathLike[str] | None = None,
) -> Source:
    """A source for ``location``: an export folder on disk (a :class:`Source` passes through)."""
    if isinstance(location, Source):
        return location
    return LocalExport(location, taxonomy=taxonomy, task_filter=task_filter)
