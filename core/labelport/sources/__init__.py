"""Where tasks come from. :func:`open_source` picks the source for a location string."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import SourceError
from .base import Source, TaskFilter, TaskRef
from .local import LocalExport

if TYPE_CHECKING:
    from .redbrick import RedBrickProject

REDBRICK_PREFIX = "redbrick:"

__all__ = ["LocalExport", "Source", "TaskFilter", "TaskRef", "open_source", "redbrick_project"]


def redbrick_project(location: str, *, url: str | None = None, since: str | None = None,
                     task_filter: TaskFilter | None = None) -> RedBrickProject:
    """The live project named ``redbrick:ORG_ID/PROJECT_ID``; ``url`` defaults to ``REDBRICK_URL``, else
    RedBrick's endpoint."""
    from .redbrick import DEFAULT_URL, RedBrickProject

    org, _, project = location.removeprefix(REDBRICK_PREFIX).partition("/")
    if not location.startswith(REDBRICK_PREFIX) or not org or not project or "/" in project:
        raise SourceError(f"expected redbrick:ORG_ID/PROJECT_ID, not {location!r}")
    return RedBrickProject(org, project, url=url or os.environ.get("REDBRICK_URL") or DEFAULT_URL, since=since,
                           task_filter=task_filter)


def open_source(
    location: str | os.PathLike[str] | Source,
    *,
    task_filter: TaskFilter | None = None,
    taxonomy: str | os.PathLike[str] | None = None,
) -> Source:
    """A source for ``location``: ``redbrick:ORG_ID/PROJECT_ID`` (a live project; the API key comes from
    ``REDBRICK_API_KEY`` and the endpoint from ``REDBRICK_URL``, if set) or an export folder on disk. A
    :class:`Source` passes through."""
    if isinstance(location, Source):
        return location
    if isinstance(location, str) and location.startswith(REDBRICK_PREFIX):
        return redbrick_project(location, task_filter=task_filter)
    return LocalExport(location, taxonomy=taxonomy, task_filter=task_filter)
