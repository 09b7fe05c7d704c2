#!/usr/bin/env python3
"""labelport at project scale: many small tasks, whole ``labelport export`` commands (start-up included), peak
memory of the process tree (the command and its workers, sampled every 20 ms).

For each project size: the first export, re-runs with nothing changed (the median of ``--noops``), and a
re-run after one label map changed; then the memory per task.

    python tests/benchmarks/bench_scale.py                          # 1,000, 10,000 and 50,000 tasks
    python tests/benchmarks/bench_scale.py --tasks 1000 5000 --workers 2

Targets: a no-op re-run within start-up + 0.05 ms per task and under 5 % of the first export at 1,000 tasks;
memory flat (+-10 %) in the number of tasks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _measure import MAKE_CASE, compile_bytecode, labelport_command
from bench_pipeline import _tree_rss_kb, export_command, tree_anon_kb, tree_pss_kb, watch_all


def startup(*command: str) -> float:
    """Seconds of ``labelport COMMAND`` (``--version``: the floor of any command)."""
    t0 = time.perf_counter()
    subprocess.run([*labelport_command(), *(command or ["--version"])], check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def run(case: Path, out: Path, writer: str, workers: int) -> tuple[float, float, float, float]:
    """(seconds, peak RSS MB, peak PSS MB, peak anonymous PSS MB) of the process tree of one export."""
    seconds, (rss, pss, anon) = watch_all(export_command(case, out, [writer], workers), _tree_rss_kb, tree_pss_kb,
                                          tree_anon_kb)
    return seconds, rss, pss, anon


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--writer", default="nifti")
    ap.add_argument("--noops", type=int, default=5, help="no-op re-runs per size (their median is shown)")
    args = ap.parse_args()
    compile_bytecode()
    floor = min(startup() for _ in range(3))
    version = statistics.median(startup() for _ in range(7))
    writers = statistics.median(startup("writers") for _ in range(7))
    print(f"start-up, median of 7: labelport --version {version * 1000:.0f} ms, labelport writers "
          f"{writers * 1000:.0f} ms")
    print(f"writer {args.writer}, -j {args.workers}; tasks of 48x48x12 with one instance, no images; per task: "
          f"(no-op - {floor * 1000:.0f} ms) / tasks")
    print("memory: peak of the process tree (the command and its workers) in MB: RSS (pages shared by forked "
          "workers count in each), PSS (shared pages divided among the processes sharing them), anon (PSS without "
          "mapped files, which are page cache)")
    print(f"{'tasks':>7}{'first s':>9}{'tasks/s':>9}{'RSS':>6}{'PSS':>6}{'anon':>6}{'no-op s':>9}{'% first':>9}"
          f"{'ms/task':>9}{'PSS':>6}{'anon':>6}{'touch-1 s':>11}")
    rows = []
    for count in args.tasks:
        with tempfile.TemporaryDirectory(prefix="labelport-scale-") as tmp:
            case = Path(tmp) / "case"
            subprocess.run([sys.executable, str(MAKE_CASE), str(case), "--tasks", str(count), "--shape", "48", "48",
                            "12", "--instances", "1", "--no-images"], check=True, capture_output=True)
            out = Path(tmp) / "out"
            first, first_rss, first_pss, first_anon = run(case, out, args.writer, args.workers)
            noops = [run(case, out, args.writer, args.workers) for _ in range(args.noops)]
            noop = statistics.median(seconds for seconds, *_ in noops)
            noop_pss, noop_anon = max(pss for _, _, pss, _ in noops), max(anon for *_, anon in noops)
            label = next((case / "segmentations").iterdir()) / "CT Axial.nii.gz"
            if not label.exists():
                label = next(p for p in (case / "segmentations").rglob("*.nii.gz"))
            img = nib.load(str(label))
            data = np.asarray(img.dataobj).copy()  # type: ignore[attr-defined]
            data[0, 0, 0] = 1
            nib.save(nib.Nifti1Image(data, img.affine, img.header), str(label))  # type: ignore[attr-defined]
            os.utime(label)
            touch, *_ = run(case, out, args.writer, args.workers)
        per_task = max(0.0, noop - floor) / count * 1000
        rows.append((count, first_rss, first_pss, first_anon))
        print(f"{count:>7}{first:>9.2f}{count / first:>9.0f}{first_rss:>6.0f}{first_pss:>6.0f}{first_anon:>6.0f}"
              f"{noop:>9.3f}{100 * noop / first:>8.1f}%{per_task:>9.3f}{noop_pss:>6.0f}{noop_anon:>6.0f}"
              f"{touch:>11.2f}", flush=True)
    if len(rows) > 1:
        (small, *low), (large, *high) = rows[0], rows[-1]
        print(f"peak memory of the first export from {small:,} to {large:,} tasks: " + ", ".join(
            f"{what} {b / a:.2f}x" for what, a, b in zip(("RSS", "PSS", "anon"), low, high)))

if __name__ == "__main__":
    main()
