"""The review page: what an export wrote, read back from its files and shown as pictures (``labelport report``).

Every export records what :mod:`.runinfo` keeps for the page, so the package loads its page code (and numpy)
only when a page is written."""

from __future__ import annotations

from typing import Any

__all__ = ["ReportSummary", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import page

        return getattr(page, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
