#!/usr/bin/env python3
"""Benchmark ``labelport export`` on a make_case project: wall time and peak memory, printed.

    python tests/benchmarks/bench_export.py                       # 512x512x200 uint16, 5 instances, nifti
    python tests/benchmarks/bench_export.py --shape 256 256 100 --repeat 5 --writer nifti
    python tests/benchmarks/bench_export.py --shape 512 512 600 --writer images-nifti   # with its DICOM series

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

import labelport

sys.path.insert(0, str(Path(__file__).parent))
from _measure import labelport_command, make_case, measure


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
        registry = labelport.Registry()  # (a writer that reads the images gets a case with its DICOM series)
        images = any(registry.writer(name).spec.needs_images for name in writers)
        case = args.case or make_case(Path(tmp) / "case", "--shape", *map(str, args.shape),
                                      *([] if images else ["--no-images"]), *(["--overlap"] if args.overlap else []))
        tasks = json.loads((case / "tasks.json").read_text())
        shape = tasks[0]["series"][0]["imageHeaders"]["dimensions"]
        raw_mb = 2 * shape[0] * shape[1] * shape[2] / 2**20  # make_case writes uint16 by default
        result = measure(case, Path(tmp) / "out", writers, repeat=args.repeat)
        cli = []
        for n in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([*labelport_command(), "export", str(case), "-o", f"{tmp}/cli{n}",
                            *[a for w in writers for a in ("--writer", w)], "-q"], check=True)
            cli.append(time.perf_counter() - t0)
    seconds, peak, before = result["seconds"], result["peak_rss_mb"], result["rss_before_mb"]
    budget = 3 * raw_mb + 200
    print(f"case: {'x'.join(map(str, shape))} uint16 ({raw_mb:.0f} MB raw), {len(tasks)} task(s), "
          f"writers: {', '.join(writers)}, median of {args.repeat}")
    print(f"export call: {seconds:.3f} s   runs: {result['runs_s']}")
    print(f"whole CLI:   {statistics.median(cli):.3f} s")
    print(f"peak RSS:    {peak:.0f} MB (interpreter and imports {before:.0f} MB); "
          f"budget 3 x raw + 200 MB = {budget:.0f} MB -> {'within' if peak <= budget else 'OVER'}")


if __name__ == "__main__":
    main()
