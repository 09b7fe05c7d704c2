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
TARGETS = {"semantic": 3.0, "binary": 3.0, "semantic_binary": 3.0, "rtstruct": 3.0, "mhd": 3.0}
MEMORY_TARGETS = {"rtstruct": 1 / 3}  # peak memory at most this fraction of the SDK's (1.0 elsewhere)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--writers", nargs="*", help="only these labelport writers (default: all)")
    args = ap.parse_args()
    pairs = [p for p in PAIRS if not args.writers or p[0] in args.writers]
    steps = sorted({s for _, _, s in pairs if s} | {"png_slice"})
    verdicts = []
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
            for writer, options, step in pairs:
                label = writer + "".join(f" {k}={v}" for k, v in options.items())
                mine = measure(case, Path(tmp) / f"{name}-{writer}-{len(options)}", [writer], {writer: options},
                               args.repeat)
                row = f"{label:<28}{mine['seconds']:>7.3f}{mine['peak_rss_mb']:>7.0f}   "
                if step is None:
                    print(row + "-")
                    continue
                ref = base[step]
                speedup, memory = ref["seconds"] / mine["seconds"], mine["peak_rss_mb"] / ref["peak_rss_mb"]
                print(row + f"{step:<16}{ref['seconds']:>7.3f}{ref['peak_rss_mb']:>7.0f}{speedup:>8.1f}x"
                      f"{memory:>8.2f}")
                if writer == "png":
                    verdicts.append((f"{name}: png (all slices) faster than SDK binary", speedup > 1.0))
                elif step in TARGETS:
                    verdicts.append((f"{name}: {label} >= {TARGETS[step]:.0f}x faster than SDK {step}",
                                     speedup >= TARGETS[step]))
                    limit = MEMORY_TARGETS.get(step, 1.0)
                    verdicts.append((f"{name}: {label} peak memory <= {limit:.2g} x SDK {step}", memory <= limit))
    print()
    for text, ok in verdicts:
        print(f"{'met ' if ok else 'MISSED'}  {text}")


if __name__ == "__main__":
    main()
