#!/usr/bin/env python3
"""Every built-in writer next to the reference SDK's matching step, measured in the same run.

    python tests/benchmarks/bench_writers.py                  # 512x512x200 uint16, 5 instances, +/- overlap
    python tests/benchmarks/bench_writers.py --shape 256 256 100 --repeat 5

For each case (without and with ``--overlap``) it runs ../shared/bench/sdk_baseline.py (which installs
redbrick-sdk 2.35.4 in its own venv on first use) and labelport's writers the same way: fresh process per run,
only the conversion timed, peak RSS right after it, medians. ``speedup`` is SDK seconds / labelport seconds,
``memory`` labelport peak / SDK peak. PNG writes every slice; the SDK writes one 2D slice only, so PNG is
also compared with the SDK's binary step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import make_case, measure, sdk

# labelport writer (and options) -> SDK step it replaces
PAIRS = [
    ("semantic-nifti", {}, "semantic"),
    ("binary-mask", {}, "binary"),
    ("binary-mask", {"per": "class"}, "semantic_binary"),
    ("png", {}, "binary"),
    ("mhd", {}, "mhd"),
    ("rtstruct", {}, "rtstruct"),
    ("nifti", {}, None),
    ("overlapping", {}, None),
]
# the floor of a label-map writer on this machine: labelport's own primitives alone, with no task, record,
# check or pipeline around them (read_label_nifti: ISA-L gunzip into the array; one fastremap pass from
# instance ids to class ids; write_nifti: ISA-L gzip level 1)
FLOOR = """
import json, sys, time
import fastremap
from labelport.niftiio import read_label_nifti, write_nifti
path, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
volume = read_label_nifti(path)
t1 = time.perf_counter()
classes = fastremap.remap(volume.array, {v: v % 3 + 1 for v in range(1, 17)}, preserve_missing_labels=True)
t2 = time.perf_counter()
write_nifti(out, classes, affine=volume.affine, header=volume.header, compresslevel=1, gzip=True)
t3 = time.perf_counter()
print(json.dumps({"read": t1 - t0, "remap": t2 - t1, "write": t3 - t2}))
"""
FLOOR_TARGETS = {"nifti": ("read", "write", 1.5), "semantic-nifti": ("read", "remap", "write", 2.0)}
TARGETS = {"semantic": 3.0, "binary": 3.0, "semantic_binary": 3.0, "rtstruct": 3.0, "mhd": 3.0}
MEMORY_TARGETS = {"rtstruct": 1 / 3}  # peak memory at most this fraction of the SDK's (1.0 elsewhere)


def _floor(case: Path, out: Path, repeat: int) -> dict[str, float]:
    """Median seconds of each step of :data:`FLOOR` on the case's first label map, fresh processes."""
    label = next(case.rglob("segmentations/**/*.nii.gz"))
    runs = [json.loads(subprocess.run([sys.executable, "-c", FLOOR, str(label), str(out)], check=True,
                                      capture_output=True, text=True).stdout) for _ in range(repeat)]
    return {step: statistics.median(r[step] for r in runs) for step in ("read", "remap", "write")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--writers", nargs="*", help="only these labelport writers (default: all)")
    args = ap.parse_args()
    pairs = [p for p in PAIRS if not args.writers or p[0] in args.writers]
    steps = sorted({s for _, _, s in pairs if s} | {"png_slice"})
    verdicts = []
    floors: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="labelport-bench-") as tmp:
        for overlap in (False, True):
            name = "overlap" if overlap else "plain"
            case = make_case(Path(tmp) / name, "--shape", *map(str, args.shape),  # with its DICOM series
                             *(["--overlap"] if overlap else []))
            base = sdk(case, steps, args.repeat)
            print(f"\n{'x'.join(map(str, args.shape))} uint16, 5 instances, {'with' if overlap else 'no'} overlap "
                  f"(median of {args.repeat}; SDK png_slice, one slice: {base['png_slice']['seconds']:.3f} s)")
            print(f"{'labelport writer':<28}{'s':>7}{'MB':>7}   {'SDK step':<16}{'s':>7}{'MB':>7}"
                  f"{'speedup':>9}{'memory':>8}")
            floor = _floor(case, Path(tmp) / f"{name}-floor.nii.gz", args.repeat)
            print("floor on this machine: " + ", ".join(f"{k} {v:.3f} s" for k, v in floor.items()))
            for writer, options, step in pairs:
                label = writer + "".join(f" {k}={v}" for k, v in options.items())
                mine = measure(case, Path(tmp) / f"{name}-{writer}-{len(options)}", [writer], {writer: options},
                               args.repeat)
                row = f"{label:<28}{mine['seconds']:>7.3f}{mine['peak_rss_mb']:>7.0f}   "
                if step is None:
                    print(row + "-")
                    if writer in FLOOR_TARGETS:
                        floors[(name, writer)] = mine["seconds"]
                    continue
                ref = base[step]
                speedup, memory = ref["seconds"] / mine["seconds"], mine["peak_rss_mb"] / ref["peak_rss_mb"]
                print(row + f"{step:<16}{ref['seconds']:>7.3f}{ref['peak_rss_mb']:>7.0f}{speedup:>8.1f}x"
                      f"{memory:>8.2f}")
                if writer in FLOOR_TARGETS:
                    floors[(name, writer)] = mine["seconds"]
                if writer == "png":
                    verdicts.append((f"{name}: png (all slices) faster than SDK binary", speedup > 1.0))
                elif step in TARGETS:
                    verdicts.append((f"{name}: {label} >= {TARGETS[step]:.0f}x faster than SDK {step}",
                                     speedup >= TARGETS[step]))
                    limit = MEMORY_TARGETS.get(step, 1.0)
                    verdicts.append((f"{name}: {label} peak memory <= {limit:.2g} x SDK {step}", memory <= limit))
            for writer, (*parts, limit) in FLOOR_TARGETS.items():
                if (name, writer) in floors:
                    least = sum(floor[p] for p in parts)
                    ratio = floors[(name, writer)] / least
                    print(f"{writer}: {floors[(name, writer)]:.3f} s = {ratio:.2f}x its floor ({' + '.join(parts)} "
                          f"{least:.3f} s)")
                    verdicts.append((f"{name}: {writer} within {limit:g}x of its floor", ratio <= limit))
    print()
    for text, ok in verdicts:
        print(f"{'met ' if ok else 'MISSED'}  {text}")


if __name__ == "__main__":
    main()
