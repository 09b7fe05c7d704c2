"""labelport.heap: freed memory scattered between kept objects goes back to the system."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_PROBE = r"""
import ctypes, sys
from labelport.heap import give_back

def anonymous_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))

ctypes.CDLL(None).mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: these blocks come from the heap, not from mmap
blocks = [bytes(1500) for _ in range(100_000)]  # 150 MB in malloc's heap (too large for Python's own allocator)
kept = blocks[::16]  # one block in 16 stays: no page is free at the heap's top, most are free below it
del blocks
before = anonymous_kb()
give_back()
print(before - anonymous_kb(), len(kept))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's")
def test_free_pages_between_kept_objects_are_given_back() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout.split()
    freed_kb, kept = int(out[0]), int(out[1])
    assert kept == 6250
    assert freed_kb > 100_000  # of the ~140 MB freed below the kept blocks
