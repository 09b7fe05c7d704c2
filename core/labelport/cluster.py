"""Running an export's tasks on a Dask cluster (``export(scheduler=...)``, ``--scheduler``).

One Dask task per labelport task. The client (the process that called :func:`labelport.export`) reads the
source, decides which tasks to run, and records every result: tasks.json and the manifest are only
ever written here, so incremental exports, the output lock and resumption behave exactly as on the local
process pool. Workers read the source and write their files into the output folder themselves, through a
filesystem they share with the client; each file is written aside and moved into place when complete.

The export's shared state (the source, the writers' names and options, the output roots) is pickled once into
one Dask task that every labelport task depends on, sealed so that its repr is a label: a RedBrick API key
inside the source never appears in a task's key, its arguments' repr, the dashboard or the logs, and a worker
that dies holding it loses nothing (Dask runs that task again). Each worker process unpickles it once per
export, and two exports sharing a cluster keep their states apart. At most two tasks per worker thread are in
flight, so the client's memory does not grow with the number of tasks. A worker that dies mid-task has its task
run again on another worker (Dask's ``allowed-failures``); a task that kills workers that often fails alone, by
name.
"""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from collections import OrderedDict
from typing import Any

from .errors import LabelportError, OptionError
from .sources import TaskRef
from .taskrun import Failure, Outcome, Settings

__all__ = ["DaskRunner", "connect"]

#: per export (its token): the worker state of the exports this process has run tasks for, the latest few; two
#: exports sharing a cluster (and a worker's threads) never see each other's source, writers or output roots
_STATES: OrderedDict[str, dict[str, Any]] = OrderedDict()
_STATES_LOCK = threading.Lock()


def connect(scheduler: Any) -> tuple[Any, Any]:
    """(client, cluster started here or None) for ``scheduler``: ``"local:N"`` starts a LocalCluster of N worker
    processes (one thread each), a ``tcp://HOST:PORT`` (or any Dask address) joins a running scheduler, and a
    ``distributed.Client`` is used as it is."""
    # Dask's INFO lines (workers joining and leaving) would drown the export's own output; its warnings stay.
    # Set before the import, and inherited by the processes of a local cluster.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    try:
        import distributed
    except ImportError:
        raise OptionError("--scheduler needs Dask distributed: pip install 'labelport[dask]'") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, None
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise OptionError(f"scheduler must be 'local:N', a Dask scheduler address or a Client, not {scheduler!r}")
    if scheduler.startswith("local:"):
        count = scheduler.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise OptionError(f"--scheduler {scheduler}: expected local:N with N >= 1 worker processes")
        cluster = distributed.LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
        return distributed.Client(cluster), cluster
    try:
        return distributed.Client(scheduler, timeout="30s"), None
    except (OSError, TimeoutError) as exc:
        raise LabelportError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None


class _Sealed:
    """The export's pickled state, shown by repr as a label only (a task's arguments appear in reprs)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return "<labelport export state>"


def _hold(state: _Sealed) -> _Sealed:
    """The task whose result every labelport task reads: if the worker holding it dies, Dask runs it again."""
    return state


def _run_on_worker(state: _Sealed, token: str, ref: TaskRef, folder: str, names: list[str]) -> Outcome:
    """The Dask task: set this worker process up for the export once (``token``), then run one task."""
    from .taskrun import run_with, worker_state

    with _STATES_LOCK:
        if token not in _STATES:
            _STATES[token] = worker_state(*pickle.loads(state.data))
            while len(_STATES) > 4:
                _STATES.popitem(last=False)
        mine = _STATES[token]
    return run_with(mine, ref, folder, names)


class DaskRunner:
    """The interface of the export's local runner (submit, collect, done, close) on a Dask cluster."""

    def __init__(self, scheduler: Any, src: Any, names: list[str], options: dict[str, Any], roots: dict[str, str],
                 settings: Settings) -> None:
        self.scheduler, self.state = scheduler, (src, names, options, roots, settings)
        self.done: dict[int, Outcome] = {}
        self.pending: dict[str, tuple[Any, int, TaskRef]] = {}  # future key -> (future, seq, ref)
        self.futures: Any = None
        self.client: Any = None
        self.cluster: Any = None
        self.shared: Any = None
        self.token = uuid.uuid4().hex
        self.limit = 2

    def start(self) -> None:
        """Connect (or start the local cluster) and send the export's state to every worker."""
        if self.client is not None:
            return
        self.client, self.cluster = connect(self.scheduler)
        import distributed

        threads = sum(self.client.nthreads().values()) or 1
        self.limit = 2 * threads
        # pickled here, so that a worker unpickles it only once and nothing in it is ever shown by repr; a task
        # rather than scattered data, so that losing the worker that holds it loses nothing
        self.shared = self.client.submit(_hold, _Sealed(pickle.dumps(self.state)), key=f"labelport-state-{self.token}",
                                         pure=False)
        # results come back with the futures, gathered in the background (not one round trip per task)
        self.futures = distributed.as_completed(with_results=True, raise_errors=False)

    def submit(self, seq: int, ref: TaskRef, folder: str, names: list[str]) -> None:
        self.start()
        while self.futures.count() >= self.limit:
            self.collect(block=True)
        future = self.client.submit(_run_on_worker, self.shared, self.token, ref, folder, names,
                                    key=f"labelport-task-{seq}-{self.token[:8]}", pure=False)
        self.pending[future.key] = (future, seq, ref)
        self.futures.add(future)

    def collect(self, block: bool) -> None:
        """Move finished tasks into :attr:`done` (waiting for at least one when ``block``)."""
        if self.futures is None or self.futures.is_empty():
            return
        batch = [next(self.futures)] if block else []
        batch += self.futures.next_batch(block=False) if self.futures.has_ready() else []
        for future, result in batch:
            _, seq, ref = self.pending.pop(future.key)
            self.done[seq] = result if isinstance(result, Outcome) else self._outcome(future, ref)

    def _outcome(self, future: Any, ref: TaskRef) -> Outcome:
        """The outcome of a task whose future did not bring one back."""
        import distributed

        if future.status == "cancelled" or self.client.status in ("closing", "closed"):
            raise LabelportError(f"lost the Dask scheduler {self.client.scheduler.address} while task "
                                 f"{ref.label!r} ran: what finished is kept, and the next export resumes")
        try:
            future.result()
        except distributed.KilledWorker:
            message = (f"task {ref.label!r}: its worker died each time it ran (Dask's allowed-failures); a "
                       "crash in a library or the memory limit, most likely")
        except Exception as exc:  # the task function itself never raises: a worker that cannot unpickle, say
            message = f"task {ref.label!r}: failed on the Dask worker ({type(exc).__name__}: {exc})"
        return Outcome(failures=[Failure(ref.label, ref.task_id, None, message)])

    def close(self, kill: bool = False) -> None:
        if self.client is None:
            return
        if kill and self.pending and self.client.status == "running":
            self.client.cancel([future for future, _, _ in self.pending.values()], force=True)
        self.pending.clear()
        if self.shared is not None and self.client.status == "running":
            self.client.cancel([self.shared], force=True)
        if isinstance(self.scheduler, str):  # a client of our own (a caller's Client stays open)
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.futures = self.shared = None
