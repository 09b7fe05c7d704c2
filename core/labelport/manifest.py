"""What an export wrote, per writer root, so that the next export into it rewrites only what changed.

``<root>/.labelport/manifest.json`` maps each task id to the fingerprint of its inputs (the task record, the
size and modification time of its label maps and images, the writer's options, labelport's version), the
files written for it and its tasks.json entry (as text, copied as it is while the task is unchanged). While
an export runs, each finished task is appended to ``journal.ndjson`` next to it, so an interrupted export
(even by SIGKILL) resumes where it stopped; the journal is folded into the manifest when the export ends.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

from .outdir import FOLDER, scratch_file
from .paths import safe_join

__all__ = ["Manifest", "existing_files", "fingerprint", "input_digest"]



def input_digest(record: Any, files: Iterable[str], version: str) -> str:
    """A digest of a task's inputs: its record and, for each of its files, the size, the modification time,
    the inode and the change time (which no tool can set back, so a file replaced by another of the same size
    and modification time, as ``cp -p`` or a restore makes it, still counts as changed)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([record, version], sort_keys=True, default=str, allow_nan=True).encode())
    for path in files:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\0{stat.st_ctime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
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
        self._journal: Any = None
        self.changed = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and data.get("version") == 2 and isinstance(data.get("tasks"), dict):
                self.tasks = data["tasks"]
        except (OSError, ValueError):
            self.tasks = {}
        try:
            with open(self.journal_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        item = json.loads(line)
                    except ValueError:
                        break  # the line being written when the export was killed
                    self.tasks[item["task"]] = item["state"]
                    self.changed = True  # an interrupted export: fold its journal in
        except OSError:
            pass

    def unchanged(self, task_id: str, fp: str) -> dict[str, Any] | None:
        """The recorded state when ``task_id`` was written from the same inputs and all its files are still
        there; None otherwise."""
        state = self.tasks.get(task_id)
        if not state or state.get("fingerprint") != fp:
            return None
        files = state.get("files", [])
        present = (all(f in self._existing for f in files) if self._existing is not None
                   else all(os.path.isfile(os.path.join(self.root, f)) for f in files))
        if not present:
            return None
        return state

    def record(self, task_id: str, fp: str, files: list[str], entry_json: str, folder: str = "") -> None:
        """Note a written task (appended to the journal at once) and remove files its previous version
        had that this one does not."""
        old = self.tasks.get(task_id, {}).get("files", [])
        self.remove_files(sorted(set(old) - set(files)), keep=task_id)
        state = {"fingerprint": fp, "files": files, "json": entry_json, "folder": folder}
        self.tasks[task_id] = state
        self._append(task_id, state)

    def reorder(self, order: list[str]) -> None:
        """Put the tasks in ``order`` (keys missing from it keep their places after it)."""
        ordered = {k: self.tasks[k] for k in order if k in self.tasks}
        ordered.update((k, v) for k, v in self.tasks.items() if k not in ordered)
        if list(ordered) != list(self.tasks):
            self.tasks = ordered
            self.changed = True

    def forget(self, task_id: str) -> None:
        """Remove a task's files and its record (the task left the source)."""
        state = self.tasks.pop(task_id, None)
        if state:
            self.remove_files(state.get("files", []), keep=task_id)
            self._append(task_id, {})

    def _append(self, task_id: str, state: dict[str, Any]) -> None:
        self.changed = True
        if self._journal is None:
            os.makedirs(self.folder, exist_ok=True)
            self._journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115
        self._journal.write(json.dumps({"task": task_id, "state": state}) + "\n")
        self._journal.flush()

    def remove_files(self, files: Iterable[str], keep: str | None = None) -> None:
        """Remove files of task ``keep`` that no other task of this root now holds (a task that took over a
        folder, say, when the task that had it left)."""
        files = list(files)
        if not files:
            return
        top = os.path.abspath(self.root)
        held = {f for k, s in self.tasks.items() if k != keep and s for f in s.get("files", [])}
        for rel in files:
            if rel in held:
                continue
            try:
                path = os.path.abspath(safe_join(self.root, rel))
            except Exception:  # a manifest edited by hand must not make us delete outside the root
                continue
            if os.path.isfile(path):
                os.remove(path)
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
            json.dump({"version": 2, "tasks": tasks}, f)
        os.replace(tmp, self.path)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if os.path.exists(self.journal_path):
            os.remove(self.journal_path)
