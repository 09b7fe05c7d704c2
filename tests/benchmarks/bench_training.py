#!/usr/bin/env python3
"""Training input, measured in the same run:

1. labelport.Dataset against MONAI's own Dataset (LoadImaged + EnsureChannelFirstd) on the same NIfTI export
   (the images-nifti writer's output of make_case tasks): time to the first batch and items per second over
   one epoch, with 0 and 2 DataLoader workers, batch size 1; medians of the rounds.
2. The nnunet writer on make_case 512x512x200 with its DICOM CT series (one fresh process per run, imports not
   timed, peak RSS), next to images-nifti, which reads and writes the same volumes.

    pip install torch monai          # the yardsticks only; labelport does not depend on them
    python tests/benchmarks/bench_training.py [--tasks 12] [--shape 256 256 64] [--rounds 3]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _measure import make_case, measure

EPOCH = """
import json, sys, time
import torch, monai, numpy, labelport  # imports are not timed
from monai import transforms as mt
kind, root, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
if kind == "labelport":
    ds = labelport.Dataset(root, target="semantic")
    collate = labelport.collate
else:
    tasks = json.load(open(f"{root}/tasks.json"))
    files = [{"image": f"{root}/{s['items']}", "label": f"{root}/{s['segmentations']}"}
             for t in tasks for s in t["series"] if s.get("segmentations")]
    ds = monai.data.Dataset(files, transform=mt.Compose([mt.LoadImaged(["image", "label"]),
                                                         mt.EnsureChannelFirstd(["image", "label"])]))
    collate = None
loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=workers, collate_fn=collate)
first, count = None, 0
for batch in loader:
    count += 1
    if first is None:
        first = time.perf_counter() - t0
total = time.perf_counter() - t0
print(json.dumps({"first": first, "total": total, "items": count}))
"""


def epoch(kind: str, root: Path, workers: int) -> dict[str, Any]:
    run = subprocess.run([sys.executable, "-c", EPOCH, kind, str(root), str(workers)], capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--shape", type=int, nargs=3, default=[256, 256, 64])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big", type=int, nargs=3, default=[512, 512, 200], help="the nnunet writer's case")
    args = ap.parse_args()
    import labelport

    with tempfile.TemporaryDirectory(prefix="labelport-training-") as tmp:
        case = make_case(Path(tmp) / "case", "--tasks", str(args.tasks), "--shape", *map(str, args.shape),
                         "--overlap")
        nifti = Path(tmp) / "nifti"
        assert labelport.export(case, nifti, "images-nifti", allow_outside_paths=True).ok
        results: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for _ in range(args.rounds):  # interleaved rounds
            for workers in (0, 2):
                for kind in ("labelport", "monai"):
                    results.setdefault((kind, workers), []).append(epoch(kind, nifti, workers))
        print(f"Dataset over {args.tasks} NIfTI image/label pairs of {'x'.join(map(str, args.shape))}, batch size 1, "
              f"median of {args.rounds}")
        print(f"{'':34}{'first batch':>12}{'epoch':>10}{'items/s':>10}")
        for (kind, workers), runs in results.items():
            first = statistics.median(r["first"] for r in runs)
            total = statistics.median(r["total"] for r in runs)
            name = f"{'labelport.Dataset' if kind == 'labelport' else 'monai Dataset'}, {workers} workers"
            print(f"{name:34}{first:>11.3f}s{total:>9.2f}s{runs[0]['items'] / total:>10.1f}")

        big = make_case(Path(tmp) / "big", "--shape", *map(str, args.big), "--overlap")
        started = time.perf_counter()
        nnunet = measure(big, Path(tmp) / "nnunet", ["nnunet"], repeat=args.rounds)
        images = measure(big, Path(tmp) / "images", ["images-nifti"], repeat=args.rounds)
        print(f"\nnnunet writer, make_case {'x'.join(map(str, args.big))} with its DICOM series, median of "
              f"{args.rounds} ({time.perf_counter() - started:.0f} s in all)")
        for name, found in (("nnunet", nnunet), ("images-nifti", images)):
            print(f"{name:14}{found['seconds']:>8.2f} s {found['peak_rss_mb']:>7.0f} MB peak  runs {found['runs_s']}")
        voxels = args.big[0] * args.big[1] * args.big[2]
        print(f"nnunet throughput {voxels / nnunet['seconds'] / 1e6:.1f} Mvoxel/s (image and labels), "
              f"{nnunet['seconds'] / images['seconds']:.2f}x the images-nifti time")


if __name__ == "__main__":
    main()
