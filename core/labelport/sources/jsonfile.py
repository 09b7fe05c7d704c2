"""JSON files of an export folder: read whole, with errors that name the file, the line and the column; and
the digest of a file's bytes."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..digest import blake2b
from ..errors import SourceError

__all__ = ["deep", "file_digest", "parse_json", "read_bytes", "read_json"]


@contextlib.contextmanager
def deep() -> Iterator[None]:
    """Python's json parser may follow 20,000 levels (a deeply nested record fails its own task, not the file)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def read_json(path: Path) -> Any:
    """A JSON file, parsed whole; errors name the file, the line and the column."""
    return parse_json(read_bytes(path), path)


def read_bytes(path: Path) -> bytes:
    """A file's bytes; errors name the file."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise SourceError("file not found", file=str(path)) from None
    except OSError as exc:
        raise SourceError(f"cannot read ({exc})", file=str(path)) from None


def parse_json(data: bytes, path: Path) -> Any:
    """The JSON text ``data`` (UTF-8) of the file ``path``; errors name the file, the line and the column."""
    try:
        with deep():
            return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise SourceError("holds JSON nested more than 20000 levels deep", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise SourceError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                          file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"cannot read ({exc})", file=str(path)) from None


def file_digest(path: str | os.PathLike[str]) -> str:
    """A digest of a file's bytes (BLAKE2b); OSError when it cannot be read. The records are the same while it
    is."""
    whole, buffer = blake2b(), bytearray(256 << 10)  # (a piece that stays in the CPU cache)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while size := f.readinto(buffer):
            whole.update(view[:size])
    return whole.hexdigest()
