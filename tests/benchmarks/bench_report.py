#!/usr/bin/env python3
"""The review page against the export it shows, in one run: ``labelport export`` of N synthetic CT tasks (DICOM
images, five instances with an overlap, a vessel and a ring), then ``labelport report`` of its output; whole
commands, medians.

    python tests/benchmarks/bench_report.py                       # 500 tasks of 64x56x24, nifti, median of 3
    python tests/benchmarks/bench_report.py --tasks 100 --writer dicom-seg

Target: the report takes at most a quarter of the export's time.
"""

from __future__ import annotations

import argparse
import shutil
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


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([*labelport_command(), *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--shape", type=int, nargs=3, default=[64, 56, 24])
    ap.add_argument("--writer", default="nifti")
    ap.add_argument("--workers", default="2")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labelport-report-") as tmp:
        case = casegen.make_case(Path(tmp) / "case", args.tasks, args.shape, overlap=True, thin=True)
        exports, reports = [], []
        for _ in range(args.repeat):
            out = Path(tmp) / "out"
            shutil.rmtree(out, ignore_errors=True)
            exports.append(timed("export", str(case), "-o", str(out), "-w", args.writer, "-q", "-j", args.workers))
            reports.append(timed("report", str(out), "-q"))
        pictures = len(list((out / "report" / "img").rglob("*.png")))
        export_s, report_s = statistics.median(exports), statistics.median(reports)
        print(f"{args.tasks} tasks of {'x'.join(map(str, args.shape))} with DICOM images, writer {args.writer}, "
              f"export -j {args.workers}, median of {args.repeat}")
        print(f"  export {export_s:6.2f} s   report {report_s:6.2f} s ({pictures} pictures)   report / export "
              f"{report_s / export_s:.2f} (target <= 0.25)")


if __name__ == "__main__":
    main()
