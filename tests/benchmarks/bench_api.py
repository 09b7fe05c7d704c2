#!/usr/bin/env python3
"""Export through the RedBrick API: labelport's prefetch and parallel downloads against a strictly sequential
fetch (what RedBrick's SDK does), on the test emulator with a latency added to every request, same run.

    python tests/benchmarks/bench_api.py                  # 200 tasks, 50 ms per request, median of 3
    python tests/benchmarks/bench_api.py --tasks 50 --latency 0.02
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from _measure import make_case  # noqa: E402
from redbrick_emulator import Emulator  # noqa: E402
from redbrick_project import serve_export  # noqa: E402

import labelport  # noqa: E402
from labelport.sources.redbrick import RedBrickProject  # noqa: E402

KEY = "b" * 43


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labelport-api-") as tmp_name:
        tmp = Path(tmp_name)
        case = make_case(tmp / "case", "--tasks", str(args.tasks), "--shape", "48", "48", "12", "--instances", "2",
                         "--no-images")
        results: dict[str, list[float]] = {"sequential": [], "labelport": []}
        with Emulator(KEY, latency=args.latency) as emulator:
            serve_export(emulator, case, page_size=50)
            for n in range(args.repeat):
                for mode, settings in (("sequential", {"lookahead": 0, "download_threads": 1}),
                                       ("labelport", {"lookahead": 8, "download_threads": 4})):
                    project = RedBrickProject("org", "project", key=KEY, url=emulator.url,
                                              cache=tmp / f"cache-{mode}-{n}", **settings)  # type: ignore[arg-type]
                    t0 = time.perf_counter()
                    report = labelport.export(project, tmp / f"out-{mode}-{n}", ["nifti"])
                    results[mode].append(time.perf_counter() - t0)
                    assert report.ok and report.written == {"nifti": args.tasks}
    seq, mine = statistics.median(results["sequential"]), statistics.median(results["labelport"])
    print(f"{args.tasks} tasks, {args.latency * 1000:.0f} ms per request, one worker, median of {args.repeat}")
    print(f"sequential fetch (as the SDK)        {seq:6.2f} s  {args.tasks / seq:6.1f} tasks/s")
    print(f"prefetch + parallel downloads        {mine:6.2f} s  {args.tasks / mine:6.1f} tasks/s")
    print(f"speedup {seq / mine:.1f}x")


if __name__ == "__main__":
    main()
