"""Worker processes that run one job at a time each, so that the parent always knows which job a process holds.

That knowledge is what makes failures stay one job's failure:

- a worker that dies (the out-of-memory killer, a crash in native code, ``os._exit`` in a plugin) is replaced,
  and its job is run once more on a fresh worker; a job that kills its worker twice is reported with the
  signal or exit code that ended it;
- a job that runs longer than ``timeout`` seconds has its worker killed and replaced, and is reported;
- workers ignore Ctrl-C (the parent decides), and end when the parent process ends, however it ends (a
  parent-death signal on Linux, a watchdog thread elsewhere).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["Died", "TimedOut", "WorkerPool"]


@dataclass(frozen=True)
class Died:
    """A job whose worker process died twice while running it."""

    how: str


@dataclass(frozen=True)
class TimedOut:
    """A job that ran past the time limit (its worker was killed)."""

    seconds: float


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory, or killed)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def _die_with_parent(parent: int) -> None:
    """End this process when the parent ends: PR_SET_PDEATHSIG on Linux, else a watchdog thread."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent ended before the signal was set up
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _serve(conn: Connection, parent: int, initializer: Callable[..., None], initargs: tuple[Any, ...],
           run: Callable[..., Any]) -> None:
    """A worker's life: set up, then run jobs until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    initializer(*initargs)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            job = None
        if job is None:  # the parent is done with us (a forked worker also holds the parent's end of the pipe,
            os._exit(0)  # so it cannot wait for the pipe to close)
        job_id, args = job
        result = run(*args)
        conn.send((job_id, result))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: Any = None  # (job id, args) while busy
    started: float = 0.0


@dataclass
class WorkerPool:
    """``count`` processes running ``run(*args)`` for submitted jobs (see the module docstring).
    :meth:`results` yields ``(job id, result)``, where a result is what ``run`` returned, :class:`Died` or
    :class:`TimedOut`."""

    count: int
    initializer: Callable[..., None]
    initargs: tuple[Any, ...]
    run: Callable[..., Any]
    timeout: float | None = None
    method: str = "fork" if sys.platform == "linux" else "spawn"
    #: how replacement workers start: forking a process that runs threads (a downloading source) can deadlock
    respawn: str | None = None
    _workers: list[_Worker] = field(default_factory=list)
    _queue: list[tuple[Any, tuple[Any, ...]]] = field(default_factory=list)
    _retried: set[Any] = field(default_factory=set)

    def start(self) -> None:
        while len(self._workers) < self.count:
            self._workers.append(self._spawn(self.method))

    def _spawn(self, method: str) -> _Worker:
        import multiprocessing

        context: Any = multiprocessing.get_context(method)
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_serve, args=(child_end, os.getpid(), self.initializer, self.initargs,
                                                       self.run), daemon=True)
        # the garbage collector of a forked worker leaves the parent's objects alone, so that their memory stays
        # shared instead of being copied page by page (objects someone else froze stay frozen)
        freeze = method == "fork" and gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            process.start()
        finally:
            if freeze:
                gc.unfreeze()
        child_end.close()
        return _Worker(process, parent_end)

    @property
    def busy(self) -> int:
        return len(self._queue) + sum(1 for w in self._workers if w.job is not None)

    def submit(self, job_id: Any, args: tuple[Any, ...]) -> None:
        self._queue.append((job_id, args))
        self._dispatch()

    def _dispatch(self) -> None:
        self.start()
        for worker in self._workers:
            if not self._queue:
                return
            if worker.job is None:
                job = self._queue.pop(0)
                try:
                    worker.conn.send(job)
                except (OSError, ValueError):  # the worker died while idle: put the job back, replace it
                    self._queue.insert(0, job)
                    self._replace(worker)
                    continue
                worker.job, worker.started = job, time.monotonic()

    def _replace(self, worker: _Worker) -> None:
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        index = self._workers.index(worker)
        self._workers[index] = self._spawn(self.respawn or self.method)

    def results(self, block: bool) -> list[tuple[Any, Any]]:
        """Finished jobs; waits for at least one when ``block`` and jobs are in flight."""
        self._dispatch()
        busy = [w for w in self._workers if w.job is not None]
        if not busy:
            return []
        timeout = 0.0
        if block:
            timeout = 1.0 if self.timeout is None else max(0.0, min(
                1.0, min(w.started + self.timeout for w in busy) - time.monotonic()))
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        done: list[tuple[Any, Any]] = []
        now = time.monotonic()
        for worker in busy:
            job_id, args = worker.job
            if worker.conn in ready:
                try:
                    finished_id, result = worker.conn.recv()
                except (EOFError, OSError):
                    pass  # it died while sending: handled below
                else:
                    worker.job = None
                    done.append((finished_id, result))
                    continue
            if worker.process.sentinel in ready or not worker.process.is_alive():
                worker.process.join()
                how = _describe_exit(worker.process.exitcode)
                worker.job = None
                self._replace(worker)
                if job_id in self._retried:
                    done.append((job_id, Died(f"its worker process {how}, twice")))
                else:
                    self._retried.add(job_id)
                    self._queue.insert(0, (job_id, args))
            elif self.timeout is not None and now - worker.started > self.timeout:
                worker.job = None
                self._replace(worker)
                done.append((job_id, TimedOut(self.timeout)))
        self._dispatch()
        return done

    def close(self, kill: bool = False) -> None:
        """Stop the workers: let them finish and exit, or (``kill``) end them now."""
        for worker in self._workers:
            if kill and worker.process.is_alive():
                worker.process.kill()
            with contextlib.suppress(OSError, ValueError):
                if not kill:
                    worker.conn.send(None)
                worker.conn.close()
        for worker in self._workers:
            worker.process.join(timeout=None if not kill else 5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self._workers.clear()
        self._queue.clear()
