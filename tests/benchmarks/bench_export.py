#!/usr/bin/env python3
"""Benchmark ``labelport export`` on a make_case project: wall time and peak memory, printed.

    python tests/benchmarks/bench_export.py                       # 512x512x200 uint16, 5 instances, nifti
    python tests/benchmarks/bench_export.py --shape 256 256 100 --repeat 5 --writer nifti

Each run is a fresh process, measured the way ../shared/bench/sdk_baseline.py measures the SDK: ``seconds`` is
the export call alone (imports excluded), ``peak_rss_mb`` the child's ru_maxrss right after it, ``cli_s`` the
whole ``labelport export`` command including start-up. Medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAKE_CASE = Path(__file__).resolve().parents[3] / "shared" / "bench" / "make_case.py"

CHILD = """
import json, resource, sys, time
import labelport
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
report = labelport.export(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
seconds = time.perf_counter() - t0
assert report.ok, [str(f) for f in report.failures]
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mb": before}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", type=Path, help="existing make_case folder (default: make one)")
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200])
    ap.add_argument("--overlap", action="store_true")
    ap.add_argument("--writer", action="append", help="writer(s) to run (default: nifti)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    writers = args.writer or ["nifti"]
    with tempfile.TemporaryDirectory(prefix="labelport-bench-") as tmp:
        case = args.case
        if case is None:
            case = Path(tmp) / "case"
            extra = ["--overlap"] if args.overlap else []
            subprocess.run([sys.executable, str(MAKE_CASE), str(case), "--shape", *map(str, args.shape),
                            "--no-images", *extra], check=True, capture_output=True)
        tasks = json.loads((case / "tasks.json").read_text())
        shape = tasks[0]["series"][0]["imageHeaders"]["dimensions"]
        raw_mb = 2 * shape[0] * shape[1] * shape[2] / 2**20  # make_case writes uint16 by default
        runs, cli = [], []
        for n in range(args.repeat):
            out = Path(tmp) / f"out{n}"
            child = subprocess.run([sys.executable, "-c", CHILD, str(case), str(out), json.dumps(writers)],
                                   check=True, capture_output=True, text=True)
            runs.append(json.loads(child.stdout))
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(case), "-o", str(out) + "-cli",
                            *[a for w in writers for a in ("--writer", w)], "-q"], check=True)
            cli.append(time.perf_counter() - t0)
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = statistics.median(r["peak_rss_mb"] for r in runs)
    before = statistics.median(r["rss_before_mb"] for r in runs)
    budget = 3 * raw_mb + 200
    print(f"case: {'x'.join(map(str, shape))} uint16 ({raw_mb:.0f} MB raw), {len(tasks)} task(s), "
          f"writers: {', '.join(writers)}, median of {args.repeat}")
    each = ", ".join(f"{r['seconds']:.3f}" for r in runs)
    print(f"export call: {seconds:.3f} s   runs: {each}")
    print(f"whole CLI:   {statistics.median(cli):.3f} s")
    print(f"peak RSS:    {peak:.0f} MB (interpreter and imports {before:.0f} MB); "
          f"budget 3 x raw + 200 MB = {budget:.0f} MB -> {'within' if peak <= budget else 'OVER'}")


if __name__ == "__main__":
    main()
