"""Loading a command's modules with Python's cyclic garbage collector paused.

Loading labelport's command line and its export pipeline makes about a hundred thousand objects (functions,
classes and their dictionaries) that last as long as the process, and next to no garbage. While they load,
the collector goes through them some thirty times: 5-10 ms of a 100-150 ms re-export that finds nothing
changed, and every later full pass would go through them again. :func:`load` imports modules with the
collector paused, then leaves everything made so far out of its later passes (``gc.freeze``).
"""

from __future__ import annotations

import gc
import importlib
import sys
from types import ModuleType

__all__ = ["load"]


def load(*names: str) -> list[ModuleType]:
    """Import these modules (absolute names). When one is not loaded yet, they are imported with the collector
    paused, and every object made until then is frozen (``gc.freeze``): never collected, never looked at again
    (what a process loads once lasts as long as it)."""
    if all(name in sys.modules for name in names):
        return [sys.modules[name] for name in names]
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
