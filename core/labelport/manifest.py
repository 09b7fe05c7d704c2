"""What an export wrote, per writer root, so that the next export into it rewrites only what changed.

``<root>/.labelport/manifest.json`` maps each task id to the fingerprint of everything its output depends on
(see :func:`labelport.export`), its folder, the files written for it and its tasks.json entry (as text, copied
as it is while the task is unchanged). While an export runs, each finished task is appended to
``journal.ndjson`` next to it, so an interrupted export (even by SIGKILL) resumes where it stopped; the journal
is folded into the manifest when the export ends.

Files a task no longer has are *stale*: they are journalled too, and removed only when the export ends, if no
task holds them by then (tasks finish out of order on workers, and one may have taken over another's folder).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable
from typing import Any

from .outdir import FOLDER, scratch_file
from .paths import safe_join

__all__ = ["Manifest", "existing_files", "fingerprint", "input_digest"]



def _encode(value: Any) -> bytes:
    """Canonical JSON (keys sorted) of a record, fast; what msgspec cannot encode falls back to ``json``."""
    import msgspec

    try:
        return msgspec.json.encode(value, order="sorted")
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return json.dumps(value, sort_keys=True, default=str, allow_nan=True).encode()


def input_digest(record: Any, files: Iterable[str], version: str, steady: Collection[str] = (),
                 base: str | None = None) -> str:
    """A digest of a task's inputs: its record and, for each of its files, the size, the modification time,
    the inode and the change time (which no tool can set back, so a file replaced by another of the same size
    and modification time, as ``cp -p`` or a restore makes it, still counts as changed). The ``steady`` files
    are judged without their change time: every hard link made to a file changes it. Files under ``base`` (the
    source folder, as its files' paths spell it) are named relative to it, so that the digest does not depend
    on how its path was typed."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(_encode([record, version]))
    prefix = None if base is None else os.path.join(base, "")
    for path in files:
        name = path[len(prefix):] if prefix is not None and path.startswith(prefix) else path
        try:
            stat = os.stat(path)
            changed = 0 if path in steady else stat.st_ctime_ns
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\0{changed}\n".encode())
        except OSError:
            digest.update(f"{name}\0missing\n".encode())
    return digest.hexdigest()


def fingerprint(inputs: str, writer: str, options: Any, *context: Any) -> str:
    """What one writer's output of a task depends on: the task's inputs, the writer and its options, and the
    rest of the ``context`` (the task's folder, the taxonomy, the export's settings, versions)."""
    text = "\0".join(map(repr, (inputs, writer, options, *context)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def existing_files(root: str) -> set[str]:
    """The files under ``root`` (relative paths with ``/``), labelport's own folder left out: one pass over the
    tree, so that checking a task's files costs no more file system calls."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        if rel == ".":
            dirs[:] = [d for d in dirs if d != FOLDER]
        prefix = "" if rel == "." else rel + "/"
        found.update(prefix + name for name in files)
    return found


class Manifest:
    """The manifest of one writer root (see the module docstring)."""

    def __init__(self, root: str, existing: set[str] | None = None) -> None:
        """``existing``: the files under ``root`` if already listed (else each is checked on disk)."""
        self.root = root
        self._existing = existing
        self.folder = os.path.join(root, FOLDER)
        self.path = os.path.join(self.folder, "manifest.json")
        self.journal_path = os.path.join(self.folder, "journal.ndjson")
        self.tasks: dict[str, dict[str, Any]] = {}
        #: files that a task had before and has no more: removed by :meth:`finish` unless a task holds them again
        self.stale: set[str] = set()
        #: what the project steps wrote last (see :mod:`labelport.project`): ``{"fingerprint", "files"}``
        self.project: dict[str, Any] = {}
        self._journal: Any = None
        self.changed = False
        #: whether the task entries (or their order) changed since the project steps last ran
        self.entries_changed = False
        #: the writer whose output the root holds (from the last export into it), and files removed this run
        self.writer: str | None = None
        self.removed = 0
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and data.get("version") == 2 and isinstance(data.get("tasks"), dict):
                self.tasks = data["tasks"]
                self.stale = {p for p in data.get("stale") or [] if isinstance(p, str)}
                self.writer = data.get("writer") if isinstance(data.get("writer"), str) else None
                project = data.get("project")
                if isinstance(project, dict) and isinstance(project.get("files"), list):
                    self.project = project
        except (OSError, ValueError):
            self.tasks = {}
        try:
            with open(self.journal_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        item = json.loads(line)
                    except ValueError:
                        break  # the line being written when the export was killed
                    if "stale" in item:
                        self.stale.update(item["stale"])
                    else:
                        self.tasks[item["task"]] = item["state"]
                    self.changed = self.entries_changed = True  # an interrupted export: fold its journal in
        except OSError:
            pass

    def unchanged(self, task_id: str, fp: str) -> dict[str, Any] | None:
        """The recorded state when ``task_id`` was written from the same inputs and all its files are still
        there; None otherwise."""
        state = self.tasks.get(task_id)
        if not state or state.get("fingerprint") != fp:
            return None
        return state if self.present(state.get("files", [])) else None

    def record(self, task_id: str, fp: str, files: list[str], entry_json: str, folder: str = "") -> None:
        """Note a written task (appended to the journal at once); files its previous version had that this one
        does not become stale."""
        old = self.tasks.get(task_id, {}).get("files", [])
        self._stale(set(old) - set(files))
        state = {"fingerprint": fp, "files": files, "json": entry_json, "folder": folder}
        self.tasks[task_id] = state
        self.entries_changed = True
        self._append(task_id, state)

    def reorder(self, order: list[str]) -> None:
        """Put the tasks in ``order`` (keys missing from it keep their places after it)."""
        ordered = {k: self.tasks[k] for k in order if k in self.tasks}
        ordered.update((k, v) for k, v in self.tasks.items() if k not in ordered)
        if list(ordered) != list(self.tasks):
            self.tasks = ordered
            self.changed = self.entries_changed = True

    def forget(self, task_id: str) -> None:
        """Drop a task's record; its files become stale (the task left the source, or failed)."""
        state = self.tasks.pop(task_id, None)
        if state:
            self._stale(state.get("files", []))
            self.entries_changed = True
            self._append(task_id, {})

    def _stale(self, files: Iterable[str]) -> None:
        new = sorted(set(files) - self.stale)
        if new:
            self.stale.update(new)
            self._write_journal({"stale": new})

    def finish(self) -> None:
        """Remove the stale files that no task holds now. Files are only removed here, after every task of the
        run was recorded: a task that took over another's folder keeps the files it wrote there."""
        if not self.stale:
            return
        self.remove_files(sorted(self.stale - self.held()))
        self.stale.clear()
        self.changed = True

    def held(self) -> set[str]:
        """Every file a task holds."""
        return {f for state in self.tasks.values() if state for f in state.get("files", [])}

    def present(self, files: Iterable[str]) -> bool:
        """Whether all these files (relative to the root) are on disk."""
        if self._existing is not None:
            return all(f in self._existing for f in files)
        return all(os.path.isfile(os.path.join(self.root, f)) for f in files)

    def record_project(self, fp: str | None, files: list[str]) -> None:
        """Note what the project steps wrote; files they wrote before and not now are removed (unless a task
        holds them). ``fp`` None makes the next export run them again."""
        old = set(self.project.get("files") or [])
        self.remove_files(sorted(old - set(files) - self.held()))
        self.project = {"fingerprint": fp, "files": files}
        self.changed = True

    def _append(self, task_id: str, state: dict[str, Any]) -> None:
        self._write_journal({"task": task_id, "state": state})

    def _write_journal(self, item: dict[str, Any]) -> None:
        self.changed = True
        if self._journal is None:
            os.makedirs(self.folder, exist_ok=True)
            self._journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115
        self._journal.write(json.dumps(item) + "\n")
        self._journal.flush()

    def remove_files(self, files: Iterable[str]) -> None:
        top = os.path.abspath(self.root)
        for rel in files:
            try:
                path = os.path.abspath(safe_join(self.root, rel))
            except Exception:  # a manifest edited by hand must not make us delete outside the root
                continue
            if os.path.isfile(path):
                os.remove(path)
                self.removed += 1
                parent = os.path.dirname(path)
                while parent != top and parent.startswith(top + os.sep):
                    try:
                        os.rmdir(parent)  # only when empty
                    except OSError:
                        break
                    parent = os.path.dirname(parent)

    def save(self) -> None:
        """Write the manifest atomically (when something changed) and drop the journal."""
        if not self.changed:
            return
        os.makedirs(self.folder, exist_ok=True)
        tasks = {k: v for k, v in self.tasks.items() if v}
        tmp = scratch_file(self.root, self.path)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 2, "writer": self.writer, "tasks": tasks, "stale": sorted(self.stale),
                       "project": self.project}, f)
        os.replace(tmp, self.path)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if os.path.exists(self.journal_path):
            os.remove(self.journal_path)
