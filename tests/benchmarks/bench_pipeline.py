#!/usr/bin/env python3
"""The export pipeline at scale: workers, several writers in one pass, memory against project size, and the
incremental re-run. Whole ``labelport export`` commands are timed; peak memory is the largest sum of the RSS of
the command and all its worker processes, sampled from /proc every 20 ms.

    python tests/benchmarks/bench_pipeline.py                     # 20 tasks of 256x256x100, then 10 vs 100
                                                                  # (worker and re-run timings: median of 3)
    python tests/benchmarks/bench_pipeline.py --tasks 8 --large 40 --shape 128 128 60   # quicker

Targets: 2 workers >= 1.6x the throughput of 1; all writers in one run <= 0.6x the sum of single-writer runs;
peak memory within 10 % from 10 to 100 tasks; a re-run with nothing changed < 5 % of the first export's time
and no file rewritten; after changing one label map exactly that task's files change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _measure import labelport_command, make_case

WRITERS = ["nifti", "semantic-nifti", "binary-mask", "overlapping", "png", "mhd", "rtstruct"]


def _tree_kb(root: int, field: str) -> int:
    """Summed ``field`` (kB) of ``root`` and its descendants, from /proc/PID/``status`` (``VmRSS``) or
    ``smaps_rollup`` (``Pss``: shared pages divided among the processes that share them)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/{'status' if field == 'VmRSS' else 'smaps_rollup'}") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith(field + ":")), 0)
        except (OSError, ValueError):
            continue
    return total


def _tree_rss_kb(root: int) -> int:
    """Summed VmRSS of ``root`` and its descendants (pages shared by forked processes count in each)."""
    return _tree_kb(root, "VmRSS")


def tree_pss_kb(root: int) -> int:
    """Summed proportional set size of ``root`` and its descendants: the memory the tree really holds."""
    return _tree_kb(root, "Pss")


def tree_anon_kb(root: int) -> int:
    """Summed proportional set size of the anonymous memory of ``root`` and its descendants: what they
    allocated, without the file pages they map (page cache, which the kernel can take back at any time)."""
    return _tree_kb(root, "Pss_Anon")


def watch(cmd: list[str], rss: Callable[[int], int] = _tree_rss_kb) -> tuple[float, float]:
    """(seconds, peak MB) of the command ``cmd``; memory is ``rss(pid)`` in kB (default: the whole process
    tree), sampled every 20 ms."""
    seconds, (peak,) = watch_all(cmd, rss)
    return seconds, peak


def watch_all(cmd: list[str], *meters: Callable[[int], int]) -> tuple[float, list[float]]:
    """(seconds, the peak MB of each meter) of the command ``cmd``; each meter gives kB for a pid, sampled
    every 20 ms."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peaks = [0] * len(meters)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for n, meter in enumerate(meters):
                peaks[n] = max(peaks[n], meter(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = proc.wait()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"export failed ({code}): {' '.join(cmd)}")
    return seconds, [peak / 1024 for peak in peaks]


def export_command(case: Path, out: Path, writers: list[str], workers: int, *extra: str) -> list[str]:
    return [*labelport_command(), "export", str(case), "-o", str(out), "-q", "-j", str(workers),
            *[a for w in writers for a in ("--writer", w)], *extra]


def run(case: Path, out: Path, writers: list[str], workers: int, *extra: str) -> tuple[float, float]:
    """(seconds, peak MB of the whole process tree) of one ``labelport export`` command."""
    return watch(export_command(case, out, writers, workers, *extra))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and ".labelport" not in p.parts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--small", type=int, default=10, help="tasks in the small project of the memory test")
    ap.add_argument("--large", type=int, default=100, help="tasks in the large project of the memory test")
    ap.add_argument("--shape", type=int, nargs=3, default=[256, 256, 100])
    ap.add_argument("--repeat", type=int, default=3, help="runs of the worker and re-run timings (median)")
    args = ap.parse_args()
    shape = [str(n) for n in args.shape]
    rows = []
    with tempfile.TemporaryDirectory(prefix="labelport-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        case = make_case(tmp / "case", "--tasks", str(args.tasks), "--overlap", "--shape", *shape)
        label = f"{args.tasks} tasks of {'x'.join(shape)}"
        firsts = {1: [], 2: []}  # fresh exports, alternating so that drift hits both alike
        for n in range(args.repeat):
            for workers in (1, 2):
                firsts[workers].append(run(case, tmp / f"w{workers}-{n}", WRITERS, workers))
        t1, m1 = statistics.median(t for t, _ in firsts[1]), max(m for _, m in firsts[1])
        t2, m2 = statistics.median(t for t, _ in firsts[2]), max(m for _, m in firsts[2])
        for workers, seconds, memory in ((1, t1, m1), (2, t2, m2)):
            rows.append((f"all writers, {workers} worker(s) ({label})", f"{seconds:.1f} s",
                         f"{args.tasks / seconds:.2f} tasks/s", f"{memory:.0f} MB"))
        separate = sum(run(case, tmp / f"one-{w}", [w], 2)[0] for w in WRITERS)
        rows.append(("the same writers in separate runs, 2 workers", f"{separate:.1f} s", "", ""))
        before = snapshot(tmp / "w2-0")
        t_again = statistics.median(run(case, tmp / "w2-0", WRITERS, 2)[0] for _ in range(args.repeat))
        rewritten = sum(1 for k, v in snapshot(tmp / "w2-0").items() if before.get(k) != v)
        rows.append(("re-run, nothing changed", f"{t_again:.2f} s", f"{rewritten} files rewritten", ""))
        seg = next((case / "segmentations").iterdir()) / "CT Axial.nii.gz"
        img = nib.load(str(seg))
        data = np.asanyarray(img.dataobj).copy()
        data[data == 3] = 0
        nib.save(nib.Nifti1Image(data, img.affine, img.header), str(seg))
        before = snapshot(tmp / "w2-0")
        t_one, _ = run(case, tmp / "w2-0", WRITERS, 2)
        changed = {k for k, v in snapshot(tmp / "w2-0").items() if before.get(k) != v}
        other = {k for k in changed if seg.parent.name not in k and not k.endswith("tasks.json")}
        rows.append(("re-run after changing one label map", f"{t_one:.2f} s", f"{len(changed)} files changed",
                     f"{len(other)} of other tasks"))
        small = make_case(tmp / "small", "--tasks", str(args.small), "--overlap", "--shape", *shape)
        large = make_case(tmp / "large", "--tasks", str(args.large), "--overlap", "--shape", *shape)
        ts, ms = run(small, tmp / "s", WRITERS, 2)
        tl, ml = run(large, tmp / "l", WRITERS, 2)
        rows.append((f"{args.small} tasks, all writers, 2 workers", f"{ts:.1f} s", "", f"{ms:.0f} MB"))
        rows.append((f"{args.large} tasks, all writers, 2 workers", f"{tl:.1f} s", "", f"{ml:.0f} MB"))
    width = max(len(r[0]) for r in rows)
    for row in rows:
        print(f"{row[0]:<{width}}  {row[1]:>9}  {row[2]:>20}  {row[3]:>14}")
    print()
    checks = [
        (f"2 workers / 1 worker throughput = {t1 / t2:.2f}x (target >= 1.6x)", t1 / t2 >= 1.6),
        (f"all writers in one run / separate runs = {t2 / separate:.2f} (target <= 0.6)", t2 / separate <= 0.6),
        (f"peak memory {args.large} vs {args.small} tasks = {ml / ms:.2f} (target within 10 %)", ml / ms <= 1.10),
        (f"unchanged re-run / first export = {t_again / t2:.3f} (target < 0.05), {rewritten} files rewritten",
         t_again / t2 < 0.05 and rewritten == 0),
        (f"after one changed label map, {len(other)} files of other tasks changed (target 0)", not other and changed),
    ]
    for text, ok in checks:
        print(f"{'met ' if ok else 'MISSED'}  {text}")


if __name__ == "__main__":
    main()
