#!/usr/bin/env python3
"""The dicom-seg writer next to the reference SDK's DICOM SEG step, measured in the same run.

    python tests/benchmarks/bench_dicomseg.py                 # 512x512x200 uint16, 5 instances, with its CT
    python tests/benchmarks/bench_dicomseg.py --repeat 5 --overlap

Both run the same way (see _measure.py): a fresh process per run, only the conversion timed, peak RSS right
after it, medians. ``speedup`` is SDK seconds / labelport seconds, ``memory`` labelport peak / SDK peak, and
``size`` SDK file / labelport file. Targets: at least 3x faster, a file at least 10x smaller, at most a third
of the SDK's peak memory. Speed and memory are judged for the default (deflated) and for ``compression=none``,
the file's size for the default only. The SDK refuses overlapping labels, so with ``--overlap`` only labelport
runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import make_case, measure, sdk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--overlap", action="store_true", help="also time an overlapping case (labelport only)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labelport-bench-") as tmp:
        case = make_case(Path(tmp) / "plain", "--shape", *map(str, args.shape))
        base = sdk(case, ["dicom_seg"], args.repeat)["dicom_seg"]
        rows = [("sdk dicom_seg", base["seconds"], base["peak_rss_mb"], base.get("file_mb", float("nan")))]
        cases = [("plain", case, {}), ("plain, uncompressed", case, {"compression": "none"})]
        if args.overlap:
            overlap = make_case(Path(tmp) / "overlap", "--shape", *map(str, args.shape), "--overlap")
            cases.append(("overlap", overlap, {}))
        mine = {}
        for n, (name, folder, options) in enumerate(cases):
            out = Path(tmp) / f"out-{n}"
            mine[name] = measure(folder, out, ["dicom-seg"], {"dicom-seg": options}, args.repeat)
            entry = json.loads((Path(f"{out}-0") / "tasks.json").read_text())[0]
            path = Path(f"{out}-0") / entry["series"][0]["segmentations"]
            mine[name]["file_mb"] = path.stat().st_size / 1e6
            rows.append((f"labelport dicom-seg ({name})", mine[name]["seconds"], mine[name]["peak_rss_mb"],
                         mine[name]["file_mb"]))
    print(f"\n{'x'.join(map(str, args.shape))} uint16, 5 instances, median of {args.repeat}")
    print(f"{'':<40}{'s':>8}{'peak MB':>9}{'file MB':>9}")
    for label, seconds, peak, size in rows:
        print(f"{label:<40}{seconds:>8.3f}{peak:>9.0f}{size:>9.2f}")
    print()
    for name in ("plain", "plain, uncompressed"):
        mine_ = mine[name]
        speedup = base["seconds"] / mine_["seconds"]
        memory = mine_["peak_rss_mb"] / base["peak_rss_mb"]
        size = base["file_mb"] / mine_["file_mb"]
        print(f"{name}: speedup {speedup:.1f}x, memory {memory:.2f} of the SDK's, file {size:.0f}x smaller "
              f"(labelport runs: {mine_['runs_s']})")
        checks = [("at least 3x faster", speedup >= 3), ("peak memory at most 1/3 of the SDK's", memory <= 1 / 3)]
        if name == "plain":  # (the size target is the deflated file's; compression=none is shown for scale)
            checks.insert(1, ("file at least 10x smaller", size >= 10))
        for text, ok in checks:
            print(f"  {'met ' if ok else 'MISSED'}  {text}")


if __name__ == "__main__":
    main()
