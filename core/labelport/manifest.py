"""What an export wrote, per writer root, so that the next export into it rewrites only what changed.

``<root>/.labelport/manifest.sqlite`` (SQLite, write-ahead log) holds one row per task: the fingerprint of
everything its output depends on (see :func:`labelport.export`), its folder, the files written for it, its
place in tasks.json, its tasks.json entry (as text, copied as it is while the task is unchanged) and its
:class:`Inputs` (so that a record whose text did not change is not even parsed by the next export). A finished
task is one row written, whatever the size of the project; the pipeline commits before it waits for or runs
the next task, so an export that is interrupted (even by SIGKILL) resumes where it stopped.

After an export that left every task of its source recorded, the manifests are sealed, and the first
writer's keeps what the source's file look-ups saw (see :mod:`labelport.seal`); recording a change to a task
drops the seal.

Files a task no longer has are *stale*: they are recorded too, and removed only when the export ends, if no
task holds them by then (tasks finish out of order on workers, and one may have taken over another's folder).

A ``manifest.json`` left by an earlier labelport (and its ``journal.ndjson``) is read once into the database.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import sqlite3
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, overload

from .digest import blake2b
from .outdir import FOLDER
from .paths import safe_join
from .sources.base import Missing
from .sources.lookups import Observation, folder_files

__all__ = ["Manifest", "fingerprint", "input_digest", "record_digest"]

_AHEAD = 256  # rows read ahead (see Manifest._row)

# task_files: the output files of every task are read without the pages of the entries (a sealed re-run's check)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS task (
    key TEXT PRIMARY KEY, pos INTEGER NOT NULL, fingerprint TEXT NOT NULL, folder TEXT NOT NULL,
    files TEXT NOT NULL, entry TEXT NOT NULL, inputs TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS task_pos ON task (pos);
CREATE INDEX IF NOT EXISTS task_files ON task (files);
CREATE TABLE IF NOT EXISTS stale (path TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (kind INTEGER NOT NULL, path TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (kind, path, value)) WITHOUT ROWID;
"""
_CACHE_KB = 256  # SQLite's page cache per manifest
_LISTED_FROM = 4  # files of a task in one folder that Manifest.present lists the folder for
_VERSION = 5  # PRAGMA user_version; manifest.json was version 2; 3 had no inputs column; 4 no seal


@functools.cache
def _inputs_decoder() -> Any:
    import msgspec

    return msgspec.json.Decoder(tuple[str, str, list[str], list[str]])


def _files(text: str) -> list[str]:
    """A task's output files as the manifest records them (``json.dumps`` of their paths). Read without a JSON
    parser when no path needs an escape (most do not; nor does a sealed re-run then import one): there, every
    ``"`` ends or starts a path."""
    if text == "[]":
        return []
    if text.startswith('["') and text.endswith('"]') and "\\" not in text:
        files = text[2:-2].split('", "')
        if not any('"' in f for f in files):
            return files
    files = json.loads(text)
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError(f"not a list of paths: {text[:80]!r}")
    return files


def record_digest(record: Any) -> str:
    """A digest of a parsed record, however its JSON was spelled (white space, escapes), its keys in their order
    (which the outputs keep). What msgspec cannot encode is encoded by ``json``."""
    import msgspec

    try:
        text = msgspec.json.encode(record)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        text = json.dumps(record, default=str, allow_nan=True).encode()
    return blake2b(text, digest_size=16).hexdigest()


def input_digest(record: str, files: Iterable[str], version: str, steady: Collection[str] = (),
                 base: str | None = None, stat: Callable[[str], os.stat_result] = os.stat) -> str:
    """A digest of a task's inputs: its record (its :func:`record_digest`) and, for each of its files, the size,
    the modification time, the inode and the change time (which no tool can set back, so a file replaced by
    another of the same size and modification time, as ``cp -p`` or a restore makes it, still counts as
    changed). The ``steady`` files are judged without their change time: every hard link made to a file
    changes it. Files under ``base`` (the source folder, as its files' paths spell it) are named relative to
    it, so that the digest does not depend on how its path was typed. A
    :class:`~labelport.sources.base.Missing` file counts as missing, unlooked. ``stat`` is ``os.stat``, or
    what stands for it."""
    digest = blake2b(digest_size=16)
    digest.update(f"{record} {version}\n".encode())
    prefix = os.path.join(base, "") if base else "\0"  # (no path starts with NUL)
    cut = len(prefix)
    lines = []
    for path in files:
        name = path[cut:] if path.startswith(prefix) else path
        if type(path) is not Missing:
            try:
                st = stat(path)
            except OSError:
                pass
            else:
                changed = 0 if path in steady else st.st_ctime_ns
                lines.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{changed}\n")
                continue
        lines.append(f"{name}\0missing\n")
    digest.update("".join(lines).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def fingerprint(inputs: str, writer: str, options: Any, *context: Any) -> str:
    """What one writer's output of a task depends on: the task's inputs, the writer and its options, and the
    rest of the ``context`` (the task's folder, the taxonomy, the export's settings, versions)."""
    text = "\0".join(map(repr, (inputs, writer, options, *context)))
    return blake2b(text.encode(), digest_size=16).hexdigest()


class Inputs(NamedTuple):
    """What an incremental export needs of a task's record: the digest of its text (the source's
    :attr:`~labelport.sources.base.TaskRef.digest`), its :func:`record_digest` and the paths of the files it
    names (:meth:`~labelport.sources.base.Source.input_paths`)."""

    text: str
    record: str
    paths: tuple[list[str], list[str]]


def _inputs_text(inputs: Inputs) -> str:
    return json.dumps([inputs.text, inputs.record, *inputs.paths])


class EntryTexts(Sequence[str]):
    """The tasks.json entries of a manifest's tasks, in tasks.json order, read from the database as they are
    used (a project's entries are never all in memory at once)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._rows = array("q", (row for (row,) in db.execute("SELECT rowid FROM task ORDER BY pos")))

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._text(row) for row in self._rows[index]]
        return self._text(self._rows[index])

    def _text(self, row: int) -> str:
        (text,) = self._db.execute("SELECT entry FROM task WHERE rowid = ?", (row,)).fetchone()
        return text  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._rows), 500):
            chunk = self._rows[start:start + 500].tolist()
            marks = ",".join("?" * len(chunk))
            texts = dict(self._db.execute(f"SELECT rowid, entry FROM task WHERE rowid IN ({marks})", chunk))
            yield from (texts[row] for row in chunk)


class Manifest:
    """The manifest of one writer root (see the module docstring). ``readonly`` opens it for a dry run, which
    records nothing: the file is neither written nor locked."""

    def __init__(self, root: str, readonly: bool = False) -> None:
        self.root = root
        self._root_slash = os.path.join(root, "")
        self.folder = os.path.join(root, FOLDER)
        self.path = os.path.join(self.folder, "manifest.sqlite")
        #: files removed this run
        self.removed = 0
        self._ahead: dict[str, tuple[str, str, str]] = {}  # see _row
        self._next = 0
        self._db = self._open(readonly)
        meta = dict(self._db.execute("SELECT name, value FROM meta"))
        #: the writer whose output the root holds (from the last export into it)
        self.writer: str | None = meta.get("writer")
        #: what the project steps wrote last (see :mod:`labelport.project`): ``{"fingerprint", "files"}``
        self.project: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            project = json.loads(meta.get("project", "{}"))
            if isinstance(project, dict) and isinstance(project.get("files", []), list):
                self.project = project
        #: whether the task entries (or their order) changed since the project steps last ran
        self.entries_changed = meta.get("entries_changed") == "1"
        #: the seal of the export that left every task as recorded here (see :mod:`labelport.seal`), until a
        #: task's record changes
        self.seal: str | None = meta.get("seal")
        #: the source's summary kept with the seal (see :meth:`set_seal`)
        self.seal_summary: str | None = meta.get("seal_summary")
        #: the source's file digests by file state (see :attr:`labelport.sources.lookups.Lookups.digests`)
        self.digests: dict[str, tuple[bytes, str]] = {}
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            self.digests = {path: (bytes.fromhex(state), digest)
                            for path, (state, digest) in json.loads(meta.get("digests", "{}")).items()
                            if type(path) is str and type(digest) is str}

    def _open(self, readonly: bool) -> sqlite3.Connection:
        db = self._recorded_readonly() if readonly else None
        if db is not None:
            return db
        if readonly:  # nothing recorded yet, or not readable: a dry run works on an empty copy in memory
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(_SCHEMA)
        else:
            os.makedirs(self.folder, exist_ok=True)
            try:
                db = self._connect()
            except sqlite3.DatabaseError:  # not a database (a truncated or foreign file): start again
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(self.path + suffix)
                db = self._connect()
        legacy = os.path.join(self.folder, "manifest.json")
        if os.path.isfile(legacy):
            self._import(db, legacy)
            db.commit()
            if not readonly:
                for name in ("manifest.json", "journal.ndjson"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(self.folder, name))
        return db

    def _recorded_readonly(self) -> sqlite3.Connection | None:
        """The database opened read-only for a dry run, or None when there is none (or it cannot be read)."""
        if not os.path.isfile(self.path):
            return None
        with contextlib.suppress(sqlite3.Error):
            # immutable: no lock file and no shared-memory file is made; a write-ahead log left by an
            # interrupted export needs them, to be read
            wal = os.path.isfile(self.path + "-wal")
            uri = Path(os.path.abspath(self.path)).as_uri() + ("?mode=ro" if wal else "?immutable=1")
            db = sqlite3.connect(uri, uri=True, isolation_level=None)
            if db.execute("PRAGMA user_version").fetchone()[0] in (4, _VERSION):  # (4: the same, without a seal)
                return db
            db.close()
        return None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a commit survives the process; power loss may undo the last
            # a few pages suffice: rows are written in key order batches and read once each, and the kernel
            # caches the file; SQLite's default (2 MB) made memory grow with the project
            db.execute(f"PRAGMA cache_size = -{_CACHE_KB}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 3:
                db.execute("ALTER TABLE task ADD COLUMN inputs TEXT NOT NULL DEFAULT ''")
            if version in (3, 4):  # (the seal's table is made below)
                db.execute(f"PRAGMA user_version = {_VERSION}")
            elif version != _VERSION:
                db.executescript("DROP TABLE IF EXISTS task; DROP TABLE IF EXISTS stale; DROP TABLE IF EXISTS meta;")
                db.execute(f"PRAGMA user_version = {_VERSION}")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _import(self, db: sqlite3.Connection, path: str) -> None:
        """Read an earlier labelport's manifest.json and its journal into ``db``."""
        tasks: dict[str, Any] = {}
        stale: set[str] = set()
        meta: dict[str, str] = {}
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and data.get("version") == 2 and isinstance(data.get("tasks"), dict):
                tasks = data["tasks"]
                stale = {p for p in data.get("stale") or [] if isinstance(p, str)}
                if isinstance(data.get("writer"), str):
                    meta["writer"] = data["writer"]
                project = data.get("project")
                if isinstance(project, dict) and isinstance(project.get("files"), list):
                    meta["project"] = json.dumps(project)
        except (OSError, ValueError):
            pass
        with contextlib.suppress(OSError), open(os.path.join(self.folder, "journal.ndjson"), encoding="utf-8") as f:
            for line in f:
                try:
                    item = json.loads(line)
                except ValueError:
                    break  # the line being written when the export was killed
                if not isinstance(item, dict):
                    break
                if isinstance(item.get("stale"), list):
                    stale.update(p for p in item["stale"] if isinstance(p, str))
                elif isinstance(item.get("task"), str):
                    tasks[item["task"]] = item.get("state")
                meta["entries_changed"] = "1"
        # entries that are not as labelport wrote them are left out: those tasks are written again
        rows: list[tuple[str, int, str, str, str, str]] = []
        for key, state in tasks.items():
            if isinstance(state, dict) and isinstance(state.get("fingerprint"), str) and \
                    isinstance(state.get("json"), str) and isinstance(state.get("files", []), list):
                rows.append((key, len(rows), state["fingerprint"], str(state.get("folder") or ""),
                             json.dumps([f for f in state.get("files", []) if isinstance(f, str)]), state["json"]))
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO task VALUES (?, ?, ?, ?, ?, ?, '')", rows)
        db.executemany("INSERT OR IGNORE INTO stale VALUES (?)", [(p,) for p in stale])
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    # -- reading ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM task").fetchone()[0])

    def task_keys(self) -> Iterator[str]:
        """The tasks' keys, in tasks.json order, read as they are used (change nothing until they all are)."""
        return (key for (key,) in self._db.execute("SELECT key FROM task ORDER BY pos"))

    def folders(self) -> dict[str, str]:
        """Each task's folder (tasks that have one)."""
        return dict(self._db.execute("SELECT key, folder FROM task WHERE folder != ''"))

    def entries(self) -> EntryTexts:
        """The tasks.json entries, in order, as text."""
        return EntryTexts(self._db)

    def _row(self, task_id: str) -> tuple[str, str, str] | None:
        """A task's fingerprint, files and inputs. Tasks mostly come in their tasks.json order: a task that is
        next in that order brings the rows of the tasks after it too, in one query."""
        row = self._ahead.get(task_id)
        if row is None:
            found = self._db.execute("SELECT pos, fingerprint, files, inputs FROM task WHERE key = ?",
                                     (task_id,)).fetchone()
            if found is None:
                return None
            row = found[1:]
            if self._next <= found[0] < self._next + _AHEAD:  # the next task in order (give or take gaps)
                rows = self._db.execute("SELECT pos, key, fingerprint, files, inputs FROM task WHERE pos >= ? "
                                        f"ORDER BY pos LIMIT {_AHEAD}", (found[0],)).fetchall()
                self._ahead = {key: (fp, files, inputs) for _, key, fp, files, inputs in rows}
                self._next = rows[-1][0] + 1
        return row  # type: ignore[no-any-return]

    def inputs(self, task_id: str) -> Inputs | None:
        """What a task's record said when the task was written (see :meth:`record`), or None."""
        row = self._row(task_id)
        try:
            text, record, labels, images = _inputs_decoder().decode(row[2])  # type: ignore[index]
        except (TypeError, ValueError):  # none (or not as labelport wrote it; msgspec's errors are ValueErrors)
            return None
        return Inputs(text, record, (labels, images))

    def unchanged(self, task_id: str, fp: str) -> bool:
        """Whether ``task_id`` was written from the same inputs and all its files are still there (its entry
        text is not read)."""
        row = self._row(task_id)
        return row is not None and row[0] == fp and self.present(_files(row[1]))

    def outputs_present(self) -> bool:
        """Whether every file of every task is on disk."""
        return all(self.present(_files(files)) for (files,) in self._db.execute("SELECT files FROM task"))

    def seen(self) -> Iterator[Observation]:
        """The observations of the sealed export's look-ups (see :mod:`labelport.sources.lookups`), the files'
        sizes and times first (edited files are the most common change)."""
        return iter(self._db.execute("SELECT kind, path, value FROM seen ORDER BY kind DESC, path DESC, value DESC"))

    def held(self) -> set[str]:
        """Every file a task holds."""
        return {f for (files,) in self._db.execute("SELECT files FROM task") for f in json.loads(files)}

    def present(self, files: Collection[str]) -> bool:
        """Whether all these files (relative to the root) are on disk: one listing for a folder that holds
        several of them (a task's PNG slices), one ``stat`` for each other file."""
        root, isfile = self._root_slash, os.path.isfile
        if len(files) < _LISTED_FROM:  # (most tasks: no folder can hold enough of them to be listed)
            return all(isfile(root + f) for f in files)
        by_folder: dict[str, list[str]] = {}
        for file in files:
            by_folder.setdefault(file.rpartition("/")[0], []).append(file)
        for folder, group in by_folder.items():
            if len(group) >= _LISTED_FROM:
                listed = folder_files(root + folder) or {}
                group = [f for f in group if f.rpartition("/")[2] not in listed]  # (the rest: as isfile says)
            if not all(isfile(root + f) for f in group):
                return False
        return True

    # -- changing -----------------------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")

    def _entries_changed(self) -> None:
        self.unseal()
        if not self.entries_changed:
            self.entries_changed = True
            self._set("entries_changed", "1")

    def unseal(self) -> None:
        """Drop the seal: a task's record changes."""
        self._begin()
        if self.seal is not None:
            self.seal = self.seal_summary = None
            self._db.execute("DELETE FROM meta WHERE name IN ('seal', 'seal_summary')")

    def start_seen(self) -> None:
        """Drop the seal and the observations it stood on: the observations of this export come next."""
        self.unseal()
        self._db.execute("DELETE FROM seen")

    def add_seen(self, observations: list[Observation]) -> None:
        if observations:
            self._begin()
            self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", observations)

    def set_seal(self, seal: str, summary: str | None = None) -> None:
        """Seal the manifest: every task of the source is recorded as written from its current inputs; with
        the source's :meth:`~labelport.sources.Source.summary`."""
        self.seal, self.seal_summary = seal, summary
        self._set("seal", seal)
        if summary is not None:
            self._set("seal_summary", summary)
        else:
            self._db.execute("DELETE FROM meta WHERE name = 'seal_summary'")

    def set_digests(self, digests: dict[str, tuple[bytes, str]]) -> None:
        """Keep the source's file digests (see :attr:`digests`)."""
        if digests != self.digests:
            self.digests = dict(digests)
            self._set("digests", json.dumps({path: [state.hex(), digest] for path, (state, digest)
                                             in digests.items()}))

    def _set(self, name: str, value: str) -> None:
        self._begin()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def set_writer(self, name: str) -> None:
        """Note the writer whose output the root holds."""
        if self.writer != name:
            self.writer = name
            self._set("writer", name)

    def record(self, task_id: str, fp: str, files: list[str], entry_json: str, folder: str = "",
               inputs: Inputs | None = None) -> None:
        """Note a written task; files its previous version had that this one does not become stale. The next
        export takes the task's ``inputs`` from here while its record's text is the same."""
        self._entries_changed()
        self._ahead.pop(task_id, None)
        old = self._db.execute("SELECT files, pos FROM task WHERE key = ?", (task_id,)).fetchone()
        if old is None:  # a new task comes last
            pos = self._db.execute("SELECT coalesce(max(pos) + 1, 0) FROM task").fetchone()[0]  # by the index
        else:
            pos = old[1]
            self._stale(set(json.loads(old[0])) - set(files))
        self._db.execute("INSERT OR REPLACE INTO task VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (task_id, pos, fp, folder, json.dumps(files), entry_json,
                          _inputs_text(inputs) if inputs else ""))

    def note_inputs(self, task_id: str, inputs: Inputs) -> None:
        """Note the inputs of a task whose output stands (its record reads otherwise, and means the same)."""
        self.unseal()
        self._ahead.pop(task_id, None)
        self._db.execute("UPDATE task SET inputs = ? WHERE key = ?", (_inputs_text(inputs), task_id))

    def forget(self, task_id: str) -> None:
        """Drop a task's record; its files become stale (the task left the source, or failed)."""
        row = self._db.execute("SELECT files FROM task WHERE key = ?", (task_id,)).fetchone()
        if row is not None:
            self._ahead.pop(task_id, None)
            self._entries_changed()
            self._stale(json.loads(row[0]))
            self._db.execute("DELETE FROM task WHERE key = ?", (task_id,))

    def reorder(self, order: Collection[str]) -> None:
        """Put the tasks in ``order`` (keys missing from it keep their places after it)."""
        if all(a == b for a, b in itertools.zip_longest(order, self.task_keys())):  # as they are (looked at one by one)
            return
        keys = list(self.task_keys())
        place = {key: n for n, key in enumerate(order)}
        wanted = sorted(keys, key=lambda k: (0, place[k]) if k in place else (1, 0))
        if wanted != keys:
            self._entries_changed()
            self._db.executemany("UPDATE task SET pos = ? WHERE key = ?", ((n, k) for n, k in enumerate(wanted)))

    def _stale(self, files: Iterable[str]) -> None:
        files = list(files)
        if files:
            self.unseal()
            self._db.executemany("INSERT OR IGNORE INTO stale VALUES (?)", ((f,) for f in files))

    def commit(self) -> None:
        """Make what was recorded so far survive the process (cheap when nothing was)."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def finish(self) -> None:
        """Remove the stale files that no task holds now. Files are only removed here, after every task of the
        run was recorded: a task that took over another's folder keeps the files it wrote there."""
        stale = {path for (path,) in self._db.execute("SELECT path FROM stale")}
        if not stale:
            return
        self.remove_files(sorted(stale - self.held()))
        self._begin()
        self._db.execute("DELETE FROM stale")

    def record_project(self, fp: str | None, files: list[str]) -> None:
        """Note what the project steps wrote; files they wrote before and not now are removed (unless a task
        holds them). ``fp`` None makes the next export run them again. The entries count as unchanged again."""
        old = set(self.project.get("files") or [])
        self.remove_files(sorted(old - set(files) - self.held()))
        self.project = {"fingerprint": fp, "files": files}
        self._set("project", json.dumps(self.project))
        self.entries_changed = False
        self._set("entries_changed", "0")

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
        """Commit and close."""
        self.commit()
        self.close()

    def close(self) -> None:
        """Close the database; what was not committed is dropped (its tasks are written again next time)."""
        self._db.close()
