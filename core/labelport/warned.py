"""Warnings raised while a writer, a project step or a plugin runs, caught so that each becomes one line naming
where it came from."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

__all__ = ["HIDDEN", "caught_warnings"]

#: the categories Python does not show unless asked (``-W``, ``PYTHONWARNINGS``, ``-X dev``): deprecations are
#: for developers, and a ResourceWarning comes from whatever object the garbage collector finalizes at that
#: moment (an unclosed file or database of any earlier code), not from the code that is running
HIDDEN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@contextlib.contextmanager
def caught_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised in the block, each time the block runs (Python shows a warning once per
    place); the :data:`HIDDEN` categories only when Python was asked to show warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if not sys.warnoptions and not sys.flags.dev_mode:
            for category in HIDDEN:
                warnings.filterwarnings("ignore", category=category)
        yield caught
