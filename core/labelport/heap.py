"""Giving freed memory back to the system, so that a long export's memory does not grow with its tasks.

glibc keeps the memory a process frees for its next allocations. Over tens of thousands of tasks, the few
objects an export keeps per task (the keys and folder names it handed out) end up scattered over pages that
are otherwise free, and the process's memory grows by about as much again as what it keeps. ``malloc_trim``
returns every wholly free page to the system wherever it lies in the heap; it takes well under a millisecond
on the heap of an export. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["EVERY", "give_back"]

#: tasks between two calls of :func:`give_back` in a long run (a call takes well under a millisecond)
EVERY = 1024
_TRIM: Any = None


def give_back() -> None:
    """Return the wholly free pages of this process's heap to the system (glibc's ``malloc_trim(0)``)."""
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            import contextlib
            import ctypes

            with contextlib.suppress(OSError, AttributeError):  # not glibc (musl has no malloc_trim)
                _TRIM = ctypes.CDLL(None).malloc_trim
    if _TRIM:
        _TRIM(0)
