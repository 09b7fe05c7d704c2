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
                     task_filter: TaskFilter | None = None, profile: str | None = None,
                     ca_bundle: str | None = None) -> RedBrickProject:
    """The live project named ``redbrick:ORG_ID/PROJECT_ID`` (or ``redbrick:PROJECT_ID``, in the profile's
    organization). The key, organization and endpoint come from ``url``, ``REDBRICK_API_KEY``/``REDBRICK_URL``
    or the RedBrick CLI's credentials (``profile``); see :mod:`labelport.sources.credentials`."""
    from .redbrick import RedBrickProject

    path = location.removeprefix(REDBRICK_PREFIX)
    org, _, project = path.rpartition("/")
    if not location.startswith(REDBRICK_PREFIX) or not project or "/" in org or (path.startswith("/")):
        raise SourceError(f"expected redbrick:ORG_ID/PROJECT_ID, not {location!r}")
    return RedBrickProject(org or None, project, url=url, since=since, task_filter=task_filter, profile=profile,
                           ca_bundle=ca_bundle)


def open_source(
    location: str | os.PathLike[str] | Source,
    *,
    task_filter: TaskFilter | None = None,
    taxonomy: str | os.PathLike[str] | None = None,
    allow_outside_paths: bool = False,
) -> Source:
    """A source for ``location``: ``redbrick:ORG_ID/PROJECT_ID`` (a live project; key and endpoint from
    ``REDBRICK_API_KEY``/``REDBRICK_URL`` or the RedBrick CLI's credentials) or an export folder on disk. A
    :class:`Source` passes through."""
    if isinstance(location, Source):
        return location
    if isinstance(location, str) and location.startswith(REDBRICK_PREFIX):
        return redbrick_project(location, task_filter=task_filter)
    return LocalExport(location, taxonomy=taxonomy, task_filter=task_filter, allow_outside_paths=allow_outside_paths)
