"""The machine-learning libraries the training-layout tests use as oracles, and nnU-Net's own environment.

``.ci/run`` installs them all (torch, MONAI and TorchIO in the test environment, pycocotools with the test
extra, nnU-Net v2 in ``.nnunet-venv`` or ``LABELPORT_NNUNET_PYTHON``); elsewhere the tests that need one skip,
except under ``LABELPORT_REQUIRE_ML`` (set by CI when it could install them), where a missing one fails.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NNUNET_PYTHON = Path(os.environ.get("LABELPORT_NNUNET_PYTHON") or ROOT / ".nnunet-venv" / "bin" / "python")


def _missing(reason: str) -> None:
    if os.environ.get("LABELPORT_REQUIRE_ML"):
        pytest.fail(reason)
    pytest.skip(reason)


def need(module: str) -> ModuleType:
    """Import ``module`` or skip (fail in CI)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        _missing(f"{module} is not installed ({exc}); pip install {module}")
        raise


def nnunet(folder: Path) -> dict[str, Any]:
    """Run nnU-Net's own dataset integrity check on ``folder`` and read every case's label file the way nnU-Net
    does: {"ok", "output", "cases": {case: {"regions": [...], "masks": [path of a .npy per region]}}}."""
    if not NNUNET_PYTHON.is_file():
        _missing(f"nnU-Net's environment not found ({NNUNET_PYTHON}); .ci/run creates it")
    script = ROOT / "tests" / "nnunet_oracle.py"
    run = subprocess.run([str(NNUNET_PYTHON), str(script), str(folder)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "nnUNet_raw": str(folder.parent),
                                            "nnUNet_preprocessed": str(folder.parent / "pre"),
                                            "nnUNet_results": str(folder.parent / "results")})
    result = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else {"ok": False, "cases": {}}
    result["output"] = run.stdout + run.stderr
    return result


def check_in_world(image: np.ndarray, label: np.ndarray, affine: np.ndarray, source_affine: np.ndarray,
                   expected: np.ndarray, atol: float = 1e-3) -> None:
    """Judge an image and label array that a library resampled (any orientation and spacing, ``affine``: voxel
    -> RAS) against the source, voxel by voxel through world coordinates. The source image of the training
    cases has the value 20 + k on slice k, linear along k, so a (bi/tri)linear resampling of it is exact;
    labels are compared with the source's ``expected`` label array at the nearest voxel, away from half-voxel
    ties. ``atol``: 0.5 for an image the library rounded back to its integer type."""
    shape = np.array(expected.shape)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in image.shape], indexing="ij"), -1).reshape(-1, 3)
    world = affine @ np.c_[ijk, np.ones(len(ijk))].T
    src = (np.linalg.inv(source_affine) @ world).T[:, :3]
    inside = np.all((src > 0) & (src < shape - 1), axis=1)
    assert inside.sum() > 100, "the resampled volume misses the source"
    assert np.allclose(image.reshape(-1)[inside], 20 + src[inside, 2], atol=atol), "image values are misplaced"
    clear = inside & np.all(np.abs(src - np.rint(src)) < 0.45, axis=1)
    nearest = np.rint(src[clear]).astype(int)
    assert clear.sum() > 50, "too few voxels away from ties to judge the labels"
    assert np.array_equal(label.reshape(-1)[clear], expected[tuple(nearest.T)]), "labels are misplaced"
