"""Measure labelport the way ../shared/bench/sdk_baseline.py measures the SDK: a fresh process per run, only
the export call timed (imports excluded), peak RSS (ru_maxrss) read right after it; medians of the runs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

SHARED_BENCH = Path(__file__).resolve().parents[3] / "shared" / "bench"
MAKE_CASE = SHARED_BENCH / "make_case.py"
SDK_BASELINE = SHARED_BENCH / "sdk_baseline.py"

CHILD = """
import json, resource, sys, time
# imports are not timed, as in sdk_baseline.py: labelport's own (the pipeline and, through it, the sources, the
# manifest and sqlite3; the modules an export imports when it first needs them: the tasks.json splitter with
# msgspec, the review page's run record, the thread pool), the writers' plugin modules and their libraries
import concurrent.futures.thread, fastremap, scipy.ndimage
import labelport, labelport.labels, labelport.niftiio, labelport.pipeline, labelport.review.runinfo
import labelport.contours, labelport.deflate, labelport.dicomseries, labelport.images
import labelport.sources.recordfile, labelport.sources.schema
if "dicom-seg" in sys.argv[3]:
    import highdicom, pydicom
if "images-nifti" in sys.argv[3]:  # (reads the DICOM series with SimpleITK)
    import SimpleITK
registry = labelport.Registry()
for name in json.loads(sys.argv[3]):
    registry.writer(name)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
modules = set(sys.modules)
t0 = time.perf_counter()
report = labelport.export(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), options=json.loads(sys.argv[4]),
                          registry=registry)
seconds = time.perf_counter() - t0
assert report.ok, [str(f) for f in report.failures]
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mb": before, "imported": sorted(set(sys.modules) - modules)}))
"""


def labelport_command() -> list[str]:
    """How a user runs labelport: its console script next to this Python, else ``python -m labelport``."""
    script = Path(sys.executable).with_name("labelport")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "labelport"]


def compile_bytecode() -> None:
    """Compile labelport's modules once, as installing a package does: with PYTHONDONTWRITEBYTECODE set (or a
    source tree that cannot be written) every command would otherwise compile them again, which is not what an
    installed labelport does."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "core"), str(root / "plugins")],
                   check=True, capture_output=True)


def make_case(out: Path, *args: str) -> Path:
    subprocess.run([sys.executable, str(MAKE_CASE), str(out), *args], check=True, capture_output=True)
    return out


def measure(case: Path, out: Path, writers: list[str], options: dict[str, Any] | None = None,
            repeat: int = 3) -> dict[str, Any]:
    """Median seconds and peak RSS of ``labelport.export(case, out, writers)`` over fresh processes."""
    runs = []
    for n in range(repeat):
        child = subprocess.run([sys.executable, "-c", CHILD, str(case), f"{out}-{n}", json.dumps(writers),
                                json.dumps(options or {})], capture_output=True, text=True)
        if child.returncode != 0:
            raise SystemExit(f"the export of {case} with {writers} failed:\n{child.stderr[-3000:]}")
        runs.append(json.loads(child.stdout))
    # labelport's own modules imported on first use belong with the imports above (a library's own lazy imports,
    # such as Pillow's image plugins on the first save, happen within the SDK's timed steps too)
    imported = sorted({m for r in runs for m in r["imported"] if m.split(".")[0] in ("labelport", "msgspec")})
    if imported:  # (then the figure includes their import, which the SDK's does not)
        print(f"warning: {writers} imported during the timed export: {', '.join(imported)}", file=sys.stderr)
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "rss_before_mb": statistics.median(r["rss_before_mb"] for r in runs),
            "runs_s": [round(r["seconds"], 3) for r in runs]}


def sdk(case: Path, steps: list[str], repeat: int = 3) -> dict[str, Any]:
    """The reference SDK's figures for ``steps`` on ``case`` (sdk_baseline.py creates its venv on first use)."""
    run = subprocess.run([sys.executable, str(SDK_BASELINE), "--case", str(case), "--steps", ",".join(steps),
                          "--repeat", str(repeat)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"sdk_baseline.py failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout)["steps"]  # type: ignore[no-any-return]
