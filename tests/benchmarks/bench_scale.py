#!/usr/bin/env python3
"""labelport at project scale: many small tasks, whole ``labelport export`` commands (start-up included), peak
memory of the process tree (the command and its workers, sampled every 20 ms).

For each project size: the first export, a re-run with nothing changed, and a re-run after one label map
changed; then the memory per task.

    python tests/benchmarks/bench_scale.py                          # 1,000, 10,000 and 50,000 tasks
    python tests/benchmarks/bench_scale.py --tasks 1000 5000 --workers 2

Targets (issue "fast at 50,000 tasks"): a no-op re-run within start-up + 0.05 ms per task and under 5 % of the
first export at 1,000 tasks; memory flat (+-10 %) in the number of tasks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _measure import MAKE_CASE
from bench_pipeline import _tree_rss_kb, export_command, tree_pss_kb, watch_all


def startup() -> float:
    """Seconds of ``labelport --version``, the floor of any command."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "labelport.cli", "--version"], check=True, capture_output=True)
    return time.perf_counter() - t0


def run(case: Path, out: Path, writer: str, workers: int) -> tuple[float, float, float]:
    """(seconds, peak RSS MB, peak PSS MB) of the process tree of one export."""
    seconds, (rss, pss) = watch_all(export_command(case, out, [writer], workers), _tree_rss_kb, tree_pss_kb)
    return seconds, rss, pss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--writer", default="nifti")
    args = ap.parse_args()
    floor = min(startup() for _ in range(3))
    print(f"start-up (labelport --version): {floor * 1000:.0f} ms; writer {args.writer}, -j {args.workers}; "
          "tasks of 48x48x12 with one instance, no images")
    print("memory: peak of the process tree (the command and its workers), RSS (pages shared by forked workers "
          "count in each) and PSS (shared pages divided among the processes sharing them)")
    print(f"{'tasks':>7}{'first s':>9}{'tasks/s':>9}{'RSS MB':>8}{'PSS MB':>8}{'no-op s':>9}{'% first':>9}"
          f"{'ms/task':>9}{'PSS MB':>8}{'touch-1 s':>11}")
    rows = []
    for count in args.tasks:
        with tempfile.TemporaryDirectory(prefix="labelport-scale-") as tmp:
            case = Path(tmp) / "case"
            subprocess.run([sys.executable, str(MAKE_CASE), str(case), "--tasks", str(count), "--shape", "48", "48",
                            "12", "--instances", "1", "--no-images"], check=True, capture_output=True)
            out = Path(tmp) / "out"
            first, first_rss, first_pss = run(case, out, args.writer, args.workers)
            noop, _, noop_pss = run(case, out, args.writer, args.workers)
            label = next((case / "segmentations").iterdir()) / "CT Axial.nii.gz"
            if not label.exists():
                label = next(p for p in (case / "segmentations").rglob("*.nii.gz"))
            img = nib.load(str(label))
            data = np.asarray(img.dataobj).copy()  # type: ignore[attr-defined]
            data[0, 0, 0] = 1
            nib.save(nib.Nifti1Image(data, img.affine, img.header), str(label))  # type: ignore[attr-defined]
            os.utime(label)
            touch, _, _ = run(case, out, args.writer, args.workers)
        per_task = max(0.0, noop - floor) / count * 1000
        rows.append((count, first_rss, first_pss))
        print(f"{count:>7}{first:>9.2f}{count / first:>9.0f}{first_rss:>8.0f}{first_pss:>8.0f}{noop:>9.2f}"
              f"{100 * noop / first:>8.1f}%{per_task:>9.3f}{noop_pss:>8.0f}{touch:>11.2f}", flush=True)
    if len(rows) > 1:
        (small, small_rss, small_pss), (large, large_rss, large_pss) = rows[0], rows[-1]
        print(f"peak memory of the first export from {small:,} to {large:,} tasks: RSS {large_rss / small_rss:.2f}x, "
              f"PSS {large_pss / small_pss:.2f}x")

if __name__ == "__main__":
    main()
