"""The output folder: the checks made before an export touches it, its lock, and the scratch space where files
are written before they are renamed into place.

Files being written live in ``<root>/.labelport/tmp/`` (on the same file system as their final place, so the
rename is atomic). Nothing else ever holds a labelport temporary file, so cleaning up after an interrupted
export means emptying that one folder; no file of anyone else is ever removed by its name.

One export at a time writes into a folder: :class:`OutputLock` holds ``OUT/.labelport/lock`` (an advisory
lock that the system releases when the process ends, however it ends) and names its holder to a second export.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import threading
import time
from typing import IO, Any

from .errors import LabelportError

__all__ = ["OutputLock", "check_output", "clear_scratch", "remove_folder", "scratch_file", "scratch_folder"]

FOLDER = ".labelport"
_counter = itertools.count()
_counter_lock = threading.Lock()


def scratch_folder(root: str) -> str:
    return os.path.join(root, FOLDER, "tmp")


def scratch_file(root: str, name: str) -> str:
    """A fresh path in ``root``'s scratch folder for a file that will become ``name``."""
    with _counter_lock:
        n = next(_counter)
    folder = scratch_folder(root)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{os.getpid()}-{threading.get_ident()}-{n}-{os.path.basename(name)[:100]}")


def clear_scratch(root: str) -> None:
    """Remove what an interrupted export left in ``root``'s scratch folder (call it holding the lock)."""
    remove_folder(scratch_folder(root))


def remove_folder(path: str) -> None:
    """Remove a folder and all it holds, where there is one (``shutil``, which loads the compression modules,
    is imported only then)."""
    if os.path.lexists(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def move_into_place(tmp: str, final: str) -> None:
    """Rename a finished scratch file to its final path (copying when the two are on different file systems)."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not os.path.exists(tmp):
            raise
        import shutil

        shutil.move(tmp, final)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output(out: str, source: str | None) -> None:
    """Refuse an output folder that is, or is inside, or contains the source export folder, and one that cannot
    be a folder at all; nothing has been written when this raises."""
    real_out = os.path.realpath(out)
    if source is not None:
        real_source = os.path.realpath(source)
        if _inside(real_out, real_source) or _inside(real_source, real_out):
            relation = "is" if real_out == real_source else "is inside" if _inside(real_out, real_source) else \
                "contains"
            raise LabelportError(f"the output folder {out} {relation} the source folder {source}; choose an output "
                                 "folder outside it (an export never writes into its source)")
    probe = real_out
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise LabelportError(f"cannot use {out} as the output folder: {probe} is not a folder")
    if os.path.isdir(probe) and not os.access(probe, os.W_OK | os.X_OK):
        raise LabelportError(f"cannot write into {probe}: permission denied")


class OutputLock:
    """Exclusive use of an output folder for one export (see the module docstring)."""

    def __init__(self, out: str) -> None:
        self.path = os.path.join(out, FOLDER, "lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        except OSError as exc:
            raise LabelportError(f"cannot lock the output folder ({exc.strerror or exc}): {self.path}") from None
        if not _try_lock(handle) and not _after_dead_holder(handle):
            handle.seek(0)
            holder = _holder(handle.read())
            handle.close()
            raise LabelportError(f"another export is writing into {os.path.dirname(os.path.dirname(self.path))} "
                                 f"({holder}); wait for it to finish, or stop it")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": " ".join(sys.argv)[:300]}))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.seek(0)
                self._file.truncate()
            _unlock(self._file)
            self._file.close()
            self._file = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


_ORPHANS_WAIT = 5.0  # seconds (see _after_dead_holder)


def _after_dead_holder(handle: IO[str]) -> bool:
    """Lock ``handle`` once the worker processes of an export that was killed let go: they hold its lock until
    they notice that it ended, which takes them a moment. False when the export that holds the lock is alive
    (or when that cannot be told)."""
    handle.seek(0)
    try:
        pid = int(json.loads(handle.read())["pid"])
    except (ValueError, KeyError, TypeError):
        return False
    deadline = time.monotonic() + _ORPHANS_WAIT
    while os.name == "posix" and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # gone: its workers end with it
            time.sleep(0.05)
            if _try_lock(handle):
                return True
        except OSError:
            return False
        else:
            return False
    return False


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"process {info['pid']}, since {info['since']}: {info['command']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not said who it is"


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: IO[str]) -> bool:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(handle: IO[str]) -> None:
        with contextlib.suppress(OSError):
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(handle: IO[str]) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
