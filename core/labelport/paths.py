"""Safe file names from user-chosen task and series names, and paths that cannot leave an output root."""

from __future__ import annotations

import os
import re

from .errors import WriterError
from .textset import TextSet

__all__ = ["UniqueNames", "safe_join", "safe_name"]

# RedBrick's rule: each run of characters outside this set becomes "-".
_UNSAFE = re.compile(r"[^\w.\s#@+(),=\[\]{}!~-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}
MAX_NAME_BYTES = 120  # leaves room for suffixes such as "-0123.png" and "instance-12.nii.gz" under 255


def safe_name(name: str, fallback: str) -> str:
    """A single path component derived from ``name`` the way RedBrick's export names folders, made safe
    on every platform: no separators, no control characters, no ``.``/``..``, no leading ``.`` or ``~``,
    no Windows reserved names,
    at most 120 UTF-8 bytes (a long name keeps a hash of the full name, so distinct names stay distinct).
    An empty result gives ``fallback`` (itself made safe)."""
    text = _CONTROL.sub("-", _UNSAFE.sub("-", name or "")).strip().rstrip(". ")
    if text.startswith((".", "~")):  # hidden, or a home folder to tools that expand "~"
        text = "_" + text
    if not text:
        return safe_name(fallback, "unnamed") if fallback != name else "unnamed"
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        import hashlib  # (only for long names)

        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
        text = encoded[: MAX_NAME_BYTES - 11].decode("utf-8", "ignore").rstrip(". ") + "-" + digest
    return text


class UniqueNames:
    """Hands out safe names that are unique case-insensitively (for case-insensitive file systems), in
    order: a repeat gets ``-2``, ``-3``, ..."""

    def __init__(self) -> None:
        self._used = TextSet()  # casefolded (one per task of a project: kept compact)

    def take(self, name: str, fallback: str) -> str:
        base = safe_name(name, fallback)
        candidate, n = base, 1
        while not self._used.add(candidate.casefold()):
            n += 1
            candidate = f"{base}-{n}"
        return candidate


def safe_join(root: str, relpath: str) -> str:
    """``root/relpath`` after checking that it stays inside ``root`` (no absolute path, no ``..``)."""
    parts = relpath.replace("\\", "/").split("/")
    if os.path.isabs(relpath) or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise WriterError(f"refusing output path {relpath!r}: it must be relative and stay inside the output")
    full = os.path.join(root, *parts)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(full)]) != real_root:
        raise WriterError(f"refusing output path {relpath!r}: it leaves the output folder")
    return full
