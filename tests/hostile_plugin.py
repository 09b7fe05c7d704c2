"""A writer plugin that misbehaves on purpose, installed for the tests as a package with an entry point (so that
worker processes load it too). What it does to a task depends on the start of the task's name:

    exit:      sys.exit(3)                    keyboard:  raises KeyboardInterrupt
    base:      raises a custom BaseException  kill:      SIGKILL to its own process (as the OOM killer does)
    oom:       os._exit(137)                  once:      dies half way through a file, the first time only
    hang:      sleeps for a minute            mutate:    changes the task's records and segments
    nan:       returns an entry holding NaN   slow:      sleeps 0.3 s, then writes as usual
    memory:    raises MemoryError

Any other task gets ``segmentations/<task>/note.txt`` and an entry with ``"hostile": "ok"``.
"""

from __future__ import annotations

from pathlib import Path

PLUGIN = '''
import os, signal, sys, time
from pathlib import Path
import labelport


class Custom(BaseException):
    pass


def write(task, ctx):
    how = task.name.split(":")[0]
    if how == "exit":
        sys.exit(3)
    if how == "keyboard":
        raise KeyboardInterrupt
    if how == "base":
        raise Custom("a custom BaseException")
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "oom":
        os._exit(137)
    if how == "once":
        marker = Path(os.environ["HOSTILE_MARKERS"]) / task.task_id
        if not marker.exists():
            marker.write_text("died once")
            with ctx.create(ctx.task_dir() + "/note.txt") as tmp:
                Path(tmp).write_bytes(b"half")
                os._exit(1)
    if how == "hang":
        time.sleep(60)
    if how == "memory":
        raise MemoryError()
    if how == "slow":
        time.sleep(0.3)
    if how == "mutate":
        task.record["name"] = "changed by a writer"
        task.series[0].record["segmentMap"].clear()
        task.series[0].segments.clear()
    entry = task.to_record()
    if how == "nan":
        entry["score"] = float("nan")
        return entry
    ctx.write_bytes(ctx.task_dir() + "/note.txt", task.name.encode())
    entry["hostile"] = "ok"
    return entry


@labelport.hookimpl
def register_writers():
    return [labelport.WriterSpec(name="hostile", description="misbehaves on purpose", write=write)]
'''


def install(folder: Path) -> Path:
    """Write the plugin as an installed distribution into ``folder`` (to be put on ``sys.path``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hostile_writer.py").write_text(PLUGIN)
    info = folder / "hostile_writer-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-writer\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[labelport]\nhostile = hostile_writer\n")
    return folder
