"""A writer for the Dask tests, loaded with LABELPORT_PLUGINS=dying_plugin: the first time it meets the task named
in ``$LABELPORT_TEST_DIE`` it kills its own worker process (SIGKILL, as the out-of-memory killer would), having
already written half a file; any later time it writes normally. A task named in ``$LABELPORT_TEST_RAISE`` fails
with an exception; ``$LABELPORT_TEST_SLOW`` (seconds) slows every task down."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import labelport


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    time.sleep(float(os.environ.get("LABELPORT_TEST_SLOW", "0")))
    if task.name == os.environ.get("LABELPORT_TEST_RAISE"):
        raise ValueError("this writer refuses this task")
    entry = task.to_record()
    path = os.path.join(ctx.task_dir(), "ids.txt")
    with ctx.create(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(task.task_id[:4])  # half the file
        marker = os.path.join(os.environ.get("LABELPORT_TEST_MARKERS", "/nonexistent"), task.name)
        if task.name == os.environ.get("LABELPORT_TEST_DIE") and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        f.write(task.task_id[4:] + "\n" + "\n".join(s.name for s in task.series) + "\n")
    entry["ids"] = path
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(name="dying", description="dies once on a named task (tests)", write=write)]


def setenv(name: str, value: str | None) -> None:
    """Set (or, with None, remove) an environment variable in this process: ``client.run(setenv, ...)``."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
