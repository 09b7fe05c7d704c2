"""labelport on a machine without a display or libGL."""

from __future__ import annotations

import ctypes.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXPORT_AND_CHECK = """
import sys, labelport
report = labelport.export(sys.argv[1], sys.argv[2], ["nifti"])
assert report.ok, report.failures
assert "cv2" not in sys.modules, "labelport imported OpenCV"
print("ok")
"""


def test_opencv_from_rt_utils_imports_here() -> None:
    run = subprocess.run([sys.executable, "-c", "import cv2, rt_utils; print(cv2.__version__)"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=120)
    assert run.returncode == 0, run.stderr


def test_export_works_without_libgl(demo: Path, tmp_path: Path) -> None:
    """Mask libGL.so.1 in a private mount namespace (as on a slim container) and export."""
    lib = ctypes.util.find_library("GL")
    libgl = next((p for p in (f"/lib/x86_64-linux-gnu/{lib}", f"/usr/lib/x86_64-linux-gnu/{lib}",
                              f"/lib/aarch64-linux-gnu/{lib}", f"/usr/lib/aarch64-linux-gnu/{lib}")
                  if lib and Path(p).exists()), None)
    if shutil.which("unshare") is None or libgl is None:
        pytest.skip("needs unshare and a libGL to hide")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -m is not permitted here (needs root)")
    script = f'mount --bind /dev/null {libgl} && exec "$@"'
    masked = ["unshare", "-m", "sh", "-c", script, "sh"]
    cv2 = subprocess.run([*masked, sys.executable, "-c", "import cv2"], capture_output=True, text=True)
    assert cv2.returncode != 0  # the mask works: opencv-python cannot load without libGL
    run = subprocess.run([*masked, sys.executable, "-c", EXPORT_AND_CHECK, str(demo), str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
