"""What an export folder's file look-ups saw, so that a later export can tell, without looking every file up
again, that they would all see the same.

:class:`~labelport.sources.LocalExport` finds a task's files from folder listings (see its ``find``). Each
thing it learns from the disk is an observation ``(kind, path, value)``:

- ``LISTED``: a folder's files: the folder's size, modification time, inode and change time, taken before it
  was listed (any file added, removed or renamed in it changes them), or, when it changed less than
  :data:`RECENT` before, a digest of its files' names and whether each is a symbolic link (a change in the same
  tick of the file system's clock would leave its times as they were);
- ``LISTED_REAL``: the same, of a folder that is not a symbolic link itself;
- ``MISSING``: a folder that is not there (the uppermost one: nothing below it can be there either);
- ``LINK``: whether a folder is a symbolic link;
- ``LABEL``, ``IMAGE``: a file a task depends on, with its size, modification time, inode and change time,
  taken when it was found (empty when it could not be read).

:attr:`Lookups.digests` keeps, for an export folder's tasks.json and taxonomy file, the digest of their bytes
with the file's state when it was worked out (not for a file that changed within :data:`RECENT` of then): the
next export takes the digest from there while the file's state is the same, instead of reading the file.

Every result of a look-up follows from the observations made for it. So when every observation of an export
still holds, every look-up would find the same files, with the same sizes and times: the fingerprints of all
its tasks are unchanged (see :mod:`labelport.seal`). A look-up that resolved a path through symbolic links
(``realpath``) cannot be vouched for this way: it marks the observations :attr:`Lookups.partial`.
"""

from __future__ import annotations

import os
import stat
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..digest import blake2b

__all__ = ["IMAGE", "LABEL", "LINK", "LISTED", "LISTED_REAL", "MISSING", "RECENT", "Listing", "Lookups",
           "folder_files", "folder_listing", "real_folder_listing", "stat_or_none"]

LISTED, LISTED_REAL, MISSING, LINK, LABEL, IMAGE = range(6)  # (the files last: they are checked first)
Observation = tuple[int, str, bytes]
_STAT = struct.Struct("<4q")  # size, modification time, inode, change time (ns)
_UNSEEN: Any = object()


#: a folder changed less than this long (ns) before it was listed is noted by its files, not by its times
RECENT = 2_000_000_000
#: a folder's files, each with whether it is a symbolic link, and the folder's state before it was listed (see
#: :func:`_steady`)
Listing = tuple[dict[str, bool], bytes]


def _files(folder: str | int) -> dict[str, bool]:
    with os.scandir(folder) as entries:
        return {e.name: e.is_symlink() for e in entries if e.is_file()}


def _steady(st: os.stat_result) -> bytes:
    """The state of a folder (or file), taken before it is listed (or read): it vouches for the listing unless
    the folder changed within :data:`RECENT` of now (then empty)."""
    return b"" if max(st.st_mtime_ns, st.st_ctime_ns) > time.time_ns() - RECENT else _state(st)


def folder_files(folder: str) -> dict[str, bool] | None:
    """The files of a folder, each with whether it is a symbolic link (from the directory entries); None when
    the folder is not there, and no files when it cannot be listed (not a folder, not readable)."""
    try:
        return _files(folder or ".")
    except FileNotFoundError:
        return None
    except OSError:
        return {}


def folder_listing(folder: str) -> Listing | None:
    """:func:`folder_files` with the folder's state (see :data:`Listing`)."""
    try:
        before = os.stat(folder or ".")
    except FileNotFoundError:
        return None
    except OSError:
        return {}, b""
    files = folder_files(folder)
    return None if files is None else (files, _steady(before) if stat.S_ISDIR(before.st_mode) else b"")


_NO_LINK = getattr(os, "O_NOFOLLOW", 0) and getattr(os, "O_DIRECTORY", 0) and \
    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def real_folder_listing(folder: str) -> Listing | None:
    """:func:`folder_listing` of a folder that is not a symbolic link itself, learnt in the same look-up (the
    folder is opened without following a link); None when it is a link, is not there or cannot be listed, and
    where folders cannot be opened so."""
    if not _NO_LINK:
        return None
    try:
        fd = os.open(folder or ".", _NO_LINK)
    except OSError:
        return None
    try:
        before = os.fstat(fd)
        return _files(fd), _steady(before)
    except OSError:
        return None
    finally:
        os.close(fd)


def _listing_digest(files: dict[str, bool]) -> bytes:
    text = "\0".join(f"{name}\1{int(link)}" for name, link in sorted(files.items()))
    return blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).digest()


def _state(st: os.stat_result | None) -> bytes:
    return b"" if st is None else _STAT.pack(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def stat_or_none(path: str | os.PathLike[str]) -> os.stat_result | None:
    """``os.stat``, or None when it fails."""
    try:
        return os.stat(path)
    except OSError:
        return None


class Lookups:
    """The observations of one process's look-ups, from :meth:`start` on, kept until :meth:`take` hands them
    on. Nothing is kept before, nor by worker processes forked later (they look files up for the tasks they
    run, which the export does not need): a source used on its own does not grow."""

    def __init__(self) -> None:
        self.made: list[Observation] | None = None
        self._pid = 0  # the process that started
        self._stats: dict[str, os.stat_result | None] = {}  # of the last task's files (see stat)
        #: a look-up followed symbolic links: the observations do not vouch for every result
        self.partial = False
        #: file path -> (its state, the digest of its bytes) (see :meth:`digest`)
        self.digests: dict[str, tuple[bytes, str]] = {}

    def start(self) -> None:
        self.made, self.partial, self._stats, self._pid = [], False, {}, os.getpid()

    def _kept(self) -> list[Observation] | None:
        return self.made if self._pid == os.getpid() else None

    def listed(self, folder: str, listing: Listing, real: bool = False) -> None:
        """A folder's files; ``real``: the folder is not a symbolic link (:func:`real_folder_listing`)."""
        made = self._kept()
        if made is not None:
            files, state = listing
            made.append((LISTED_REAL if real else LISTED, folder, state or _listing_digest(files)))

    def missing(self, folder: str) -> None:
        made = self._kept()
        if made is not None:
            made.append((MISSING, folder, b""))

    def link(self, folder: str, is_link: bool) -> None:
        made = self._kept()
        if made is not None:
            made.append((LINK, folder, b"\1" if is_link else b"\0"))

    def found(self, labels: Iterable[str], images: Iterable[str]) -> None:
        """The files found for a task: its label maps and images."""
        made = self._kept()
        if made is None:
            return
        self._stats = stats = {}
        for kind, paths in ((LABEL, labels), (IMAGE, images)):
            for path in paths:
                stats[path] = st = stat_or_none(path)
                made.append((kind, path, _state(st)))

    def stat(self, path: str) -> os.stat_result:
        """``os.stat``, answered for the last task's files from what :meth:`found` saw (so that what a task's
        fingerprint is made from and what is observed of it are the same)."""
        st = self._stats.get(path, _UNSEEN)
        if st is _UNSEEN:
            return os.stat(path)
        if st is None:
            raise FileNotFoundError(path)
        return st  # type: ignore[no-any-return]

    def digest(self, path: str, digest: Callable[[str], str]) -> str:
        """``digest(path)`` (of the file's bytes), or the digest :attr:`digests` holds for the file while its
        state is the one noted with it; OSError when the file cannot be read."""
        before = os.stat(path)  # (before the file is read: a change while it is read changes its state)
        state, known = _steady(before), self.digests.get(path)
        if state and known is not None and known[0] == state:
            return known[1]
        value = digest(path)
        self.note(path, before, value)
        return value

    def note(self, path: str, before: os.stat_result | None, digest: str) -> None:
        """Keep the digest of a file's bytes in :attr:`digests`, with its state ``before`` they were read."""
        state = b"" if before is None else _steady(before)
        if state:
            self.digests[path] = (state, digest)

    def made_count(self) -> int:
        return len(self.made or ())

    def take(self) -> list[Observation]:
        """The observations made since the last call."""
        made = self.made or []
        if self.made is not None:
            self.made = []
        return made


def still_hold(observations: Iterable[Observation], steady_images: bool = False) -> bool:
    """Whether every observation still holds. With ``steady_images``, an image's change time is not compared
    (every hard link made to a file changes it)."""
    isdir, islink, lstat = os.path.isdir, os.path.islink, os.lstat
    for kind, path, value in observations:
        if kind >= LABEL:
            now = _state(stat_or_none(path))
            if now != value and not (steady_images and kind == IMAGE and now[:24] == value[:24] and now):
                return False
        elif kind in (LISTED, LISTED_REAL):
            if len(value) == _STAT.size:  # the folder's state (a link's own differs from any folder's)
                try:
                    st = lstat(path) if kind == LISTED_REAL else os.stat(path)
                except OSError:
                    return False
                if _state(st) != value:
                    return False
                continue
            listing = (real_folder_listing if kind == LISTED_REAL else folder_listing)(path)
            if listing is None or _listing_digest(listing[0]) != value:
                return False
        elif kind == MISSING:
            if isdir(path):
                return False
        elif kind == LINK:
            if islink(path) != (value == b"\1"):
                return False
        else:  # written by another version
            return False
    return True
