#!/usr/bin/env python3
"""Reading a 200-slice DICOM series as an array on its label grid, next to dicom2nifti (what the RedBrick SDK
uses for its image export), measured in the same run: a fresh process per run, only the read timed, peak RSS
right after it, medians.

    pip install dicom2nifti                      # the yardstick only; labelport does not use it
    python tests/benchmarks/bench_images.py      # make_case 512x512x200 CT, median of 3
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
from _measure import make_case

LABELPORT = """
import json, resource, sys, time
import labelport, SimpleITK, nibabel, pydicom  # imports are not timed
series = next(iter(labelport.open_source(sys.argv[1]))).series[0]
t0 = time.perf_counter()
volumes = labelport.load_aligned(series)
seconds = time.perf_counter() - t0
assert volumes.image.shape == volumes.labels.shape
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

DICOM2NIFTI = """
import json, resource, sys, time
import dicom2nifti, dicom2nifti.settings  # imports are not timed
dicom2nifti.settings.disable_validate_slice_increment()
t0 = time.perf_counter()
dicom2nifti.convert_dicom.dicom_series_to_nifti(sys.argv[1], sys.argv[2], reorient_nifti=True)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(code: str, args: list[str], repeat: int) -> dict[str, float]:
    runs = [json.loads(subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                                      text=True).stdout) for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in ("seconds", "peak_rss_mb")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labelport-images-") as tmp:
        case = make_case(Path(tmp) / "case", "--shape", *map(str, args.shape))
        dicom_dir = next((case / "images").iterdir()) / "CT Axial"
        mine = measure(LABELPORT, [str(case)], args.repeat)
        try:
            import dicom2nifti  # noqa: F401
        except ImportError:
            theirs = None
        else:
            theirs = measure(DICOM2NIFTI, [str(dicom_dir), str(Path(tmp) / "d2n.nii.gz")], args.repeat)
    print(f"{'x'.join(map(str, args.shape))} CT series, median of {args.repeat}")
    print(f"labelport load_aligned   {mine['seconds']:.3f} s  {mine['peak_rss_mb']:.0f} MB  (array on the label grid)")
    if theirs is None:
        print("dicom2nifti              not installed (pip install dicom2nifti)")
    else:
        print(f"dicom2nifti              {theirs['seconds']:.3f} s  {theirs['peak_rss_mb']:.0f} MB  "
              "(NIfTI file, reoriented without the labels)")
        ratio = mine["peak_rss_mb"] / theirs["peak_rss_mb"]
        print(f"speedup {theirs['seconds'] / mine['seconds']:.1f}x, memory {ratio:.2f}")


if __name__ == "__main__":
    main()
