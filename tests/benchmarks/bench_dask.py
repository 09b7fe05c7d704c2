#!/usr/bin/env python3
"""labelport on a Dask cluster against its local process pool, on this machine, in one run.

    pip install -e ".[dask]"
    python tests/benchmarks/bench_dask.py                         # 200 tasks, 3 rounds, 1,000 and 10,000 small
    python tests/benchmarks/bench_dask.py --tasks 100 --repeat 1 --small 1000

Prints, as medians over interleaved rounds of whole ``labelport export --force`` commands:
  1. throughput (tasks/s) of ``-j 2`` and of ``--scheduler tcp://...`` on a running scheduler with two one-thread
     workers (``dask worker --nworkers 2 --nthreads 1``), and of ``--scheduler local:2`` (cluster start
     included), whole commands and marginal (start-up left out); the ratio Dask / process pool (target >= 0.9);
  2. the scheduler's own cost per task: trivial tasks through the same client code path (two in flight per
     worker thread, results collected as they complete), in ms;
  3. the client process's peak memory (the workers not counted) at 1,000 and 10,000 small tasks, for the running
     cluster and for ``-j 2`` (the parent process).
Synthetic cases come from tests/casegen.py (CT-sized label maps, no images).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import casegen
from _measure import labelport_command
from bench_pipeline import watch


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def export(case: Path, out: Path, *args: str) -> tuple[float, float]:
    """(seconds, peak MB of the labelport process itself) of one ``labelport export --force`` command."""
    return watch([*labelport_command(), "export", str(case), "-o", str(out), "-q", "--force",
                  "--writer", "nifti", "--writer", "png", *args], rss=rss_kb)


class Cluster:
    """``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` as separate processes."""

    def __init__(self, workers: int) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        dask = str(Path(sys.executable).parent / "dask")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                        "--no-dashboard"], **quiet)]  # type: ignore[call-overload]
        self.procs.append(subprocess.Popen([dask, "worker", self.address, "--nworkers", str(workers), "--nthreads",
                                            "1", "--no-dashboard"], **quiet))  # type: ignore[call-overload]
        import distributed

        with distributed.Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait()


def _noop(n: int) -> int:
    return n


def scheduler_cost(address: str, count: int, threads: int) -> tuple[float, float]:
    """(ms per trivial task with 2 per thread in flight, ms per task with all submitted at once)."""
    import distributed

    with distributed.Client(address) as client:
        client.submit(_noop, -1).result()
        t0 = time.perf_counter()
        window = distributed.as_completed()
        for n in range(count):
            while window.count() >= 2 * threads:
                next(window)
            window.add(client.submit(_noop, n, pure=False))
        for _ in window:
            pass
        bounded = (time.perf_counter() - t0) / count * 1000
        t0 = time.perf_counter()
        client.gather(client.map(_noop, range(count), pure=False))
        unbounded = (time.perf_counter() - t0) / count * 1000
    return bounded, unbounded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 128, 48])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    cluster = Cluster(2)
    try:
        with tempfile.TemporaryDirectory(prefix="labelport-dask-") as tmp:
            half = args.tasks // 2
            cases = {n: casegen.make_case(Path(tmp) / f"case{n}", n, args.shape, images=False, overlap=True)
                     for n in (half, args.tasks)}
            modes = {"-j 2": ("-j", "2"), "running cluster": ("--scheduler", cluster.address),
                     "local:2": ("--scheduler", "local:2")}
            times: dict[tuple[str, int], list[float]] = {(m, n): [] for m in modes for n in cases}
            for _ in range(args.repeat):
                for n, case in cases.items():
                    for mode, flags in modes.items():
                        times[mode, n].append(export(case, Path(tmp) / f"out-{n}-{mode[:2]}", *flags)[0])
            shape = "x".join(map(str, args.shape))
            print(f"{args.tasks} tasks of {shape} (5 instances, an overlap), writers nifti + png, whole commands, "
                  f"median of {args.repeat} interleaved rounds; 'marginal' is ({args.tasks} - {half}) tasks / "
                  "(seconds for them - seconds for half), which leaves start-up out")
            median = {key: statistics.median(values) for key, values in times.items()}
            pool = args.tasks / median["-j 2", args.tasks]
            pool_marginal = (args.tasks - half) / (median["-j 2", args.tasks] - median["-j 2", half])
            for mode in modes:
                seconds = median[mode, args.tasks]
                marginal = (args.tasks - half) / (seconds - median[mode, half])
                rate = args.tasks / seconds
                print(f"  {mode:<16} {seconds:6.2f} s  {rate:6.1f} tasks/s ({rate / pool:4.2f}x the pool)  "
                      f"marginal {marginal:6.1f} tasks/s ({marginal / pool_marginal:4.2f}x the pool)")
        bounded, unbounded = scheduler_cost(cluster.address, 2000, 2)
        print(f"scheduler cost per trivial task: {bounded:.2f} ms (2 in flight per worker thread, as labelport "
              f"submits), {unbounded:.2f} ms (2,000 submitted at once)")
        print("client peak memory (labelport's own process; workers not counted), nifti + png:")
        for count in args.small:
            with tempfile.TemporaryDirectory(prefix="labelport-dask-") as tmp:
                case = casegen.make_case(Path(tmp) / "case", count, (16, 16, 8), k=1, images=False)
                seconds, dask_mb = export(case, Path(tmp) / "dask", "--scheduler", cluster.address)
                pool_seconds, pool_mb = export(case, Path(tmp) / "pool", "-j", "2")
                print(f"  {count:>6} tasks: cluster {dask_mb:6.0f} MB ({seconds:5.1f} s), -j 2 {pool_mb:6.0f} MB "
                      f"({pool_seconds:5.1f} s)")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
