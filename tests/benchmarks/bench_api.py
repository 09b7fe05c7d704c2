#!/usr/bin/env python3
"""Export through the RedBrick API: labelport's prefetch and parallel downloads against a strictly sequential
fetch (what RedBrick's SDK does), and against RedBrick's SDK itself when its environment is given, on the test
emulator with a latency added to every request, in the same run. Labels are served the way RedBrick stores
them by default: a labels file behind ``labelsDataPath`` (one more download per task).

    python tests/benchmarks/bench_api.py                  # 200 tasks, 50 ms per request, median of 3
    python tests/benchmarks/bench_api.py --sdk .sdk-venv/bin/python --repeat 1
    python tests/benchmarks/bench_api.py --tasks 50 --latency 0.02 --labels inline
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from _measure import make_case  # noqa: E402
from redbrick_emulator import Emulator  # noqa: E402
from redbrick_project import ORG, PROJECT, serve_export  # noqa: E402

import labelport  # noqa: E402
from labelport.sources.redbrick import RedBrickProject  # noqa: E402

KEY = "b" * 43
SDK_RUN = """
import os, sys, time, warnings
warnings.simplefilter("ignore")
import redbrick
project = redbrick.get_project(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
os.chdir(sys.argv[5])
t0 = time.perf_counter()
count = sum(1 for _ in project.export.export_tasks(binary_mask=False, destination="out"))
print(time.perf_counter() - t0, count, file=sys.stderr)
"""


def _sdk(python: str, emulator: Emulator, folder: Path, tasks: int) -> float:
    folder.mkdir(parents=True)
    env = {**os.environ, "HOME": str(folder), "REDBRICK_DISABLE_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    run = subprocess.run([python, "-c", SDK_RUN, ORG, PROJECT, KEY, emulator.base_url, str(folder)],
                         capture_output=True, text=True, env=env, check=True)
    seconds, count = run.stderr.strip().splitlines()[-1].split()
    assert int(count) == tasks, run.stderr[-2000:]
    return float(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--labels", choices=["path", "inline", "mixed"], default="path")
    ap.add_argument("--sdk", metavar="PYTHON", help="the Python of an environment with redbrick-sdk installed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labelport-api-") as tmp_name:
        tmp = Path(tmp_name)
        case = make_case(tmp / "case", "--tasks", str(args.tasks), "--shape", "48", "48", "12", "--instances", "2",
                         "--no-images")
        results: dict[str, list[float]] = {"sequential": [], "labelport": [], "sdk": []}
        with Emulator(KEY, latency=args.latency) as emulator:
            serve_export(emulator, case, labels=args.labels, page_size=50)
            for n in range(args.repeat):
                for mode, settings in (("sequential", {"lookahead": 0, "download_threads": 1}),
                                       ("labelport", {"lookahead": 8, "download_threads": 4})):
                    project = RedBrickProject(ORG, PROJECT, key=KEY, url=emulator.url,
                                              cache=tmp / f"cache-{mode}-{n}", **settings)  # type: ignore[arg-type]
                    t0, before = time.perf_counter(), len(emulator.requests)
                    report = labelport.export(project, tmp / f"out-{mode}-{n}", ["nifti"])
                    results[mode].append(time.perf_counter() - t0)
                    gets = sum(1 for method, name in emulator.requests[before:]
                               if method == "GET" and name.startswith("labels/"))
                    assert report.ok and report.written == {"nifti": args.tasks}
                if args.sdk:
                    results["sdk"].append(_sdk(args.sdk, emulator, tmp / f"sdk-{n}", args.tasks))
            assert emulator.rejected == []
    seq, mine = statistics.median(results["sequential"]), statistics.median(results["labelport"])
    print(f"{args.tasks} tasks, {args.latency * 1000:.0f} ms per request, labels {args.labels} "
          f"({gets} labels files downloaded per export), one worker, median of {args.repeat}")
    if results["sdk"]:
        sdk = statistics.median(results["sdk"])
        print(f"redbrick-sdk export_tasks               {sdk:6.2f} s  {args.tasks / sdk:6.1f} tasks/s")
    print(f"sequential fetch (as the SDK)           {seq:6.2f} s  {args.tasks / seq:6.1f} tasks/s")
    print(f"labelport: prefetch + parallel downloads {mine:6.2f} s  {args.tasks / mine:6.1f} tasks/s")
    print(f"speedup {seq / mine:.1f}x against the sequential fetch"
          + (f", {statistics.median(results['sdk']) / mine:.1f}x against the SDK" if results["sdk"] else ""))
    print(json.dumps({k: [round(v, 3) for v in vs] for k, vs in results.items() if vs}))


if __name__ == "__main__":
    main()
