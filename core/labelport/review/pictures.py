"""Pictures for the review page: a series turned to the patient's axes (from its affine), three orthogonal slices
through a point, the image in a window and the labels over it in their colours, as a radiologist's viewer shows
them: the patient's right on the left of axial and coronal slices, anterior at the top of axial slices and on
the left of sagittal ones, superior at the top of coronal and sagittal ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["VIEWS", "Oriented", "orient", "picture", "window"]

#: view -> (the RAS axis it cuts, letters at its left, right, top and bottom edges)
VIEWS: dict[str, tuple[int, tuple[str, str, str, str]]] = {
    "axial": (2, ("R", "L", "A", "P")),
    "coronal": (1, ("R", "L", "S", "I")),
    "sagittal": (0, ("A", "P", "S", "I")),
}
_AXIS_NAMES = "xyz"


@dataclass
class Oriented:
    """Arrays whose voxel axes run along x, y, z of RAS+ (towards the patient's right, anterior, superior:
    nibabel's canonical orientation), with their affine."""

    image: np.ndarray | None
    masks: dict[str, np.ndarray]
    affine: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return np.asarray(np.linalg.norm(self.affine[:3, :3], axis=0))

    def position(self, view: str, index: int) -> str:
        """Where a slice lies, in mm along its world axis: ``z = -587.5 mm``."""
        axis = VIEWS[view][0]
        point = np.zeros(4)
        point[axis], point[3] = index, 1.0
        return f"{_AXIS_NAMES[axis]} = {(self.affine @ point)[axis]:.1f} mm"


def orient(image: np.ndarray | None, masks: dict[str, np.ndarray], affine: np.ndarray) -> Oriented:
    """Permute and flip the voxel axes to the closest RAS+ order (nibabel's io_orientation)."""
    from nibabel import orientations

    ornt = orientations.io_orientation(affine)
    shape = next(iter(masks.values())).shape if masks else image.shape if image is not None else (1, 1, 1)
    new_affine = affine @ orientations.inv_ornt_aff(ornt, shape)
    return Oriented(None if image is None else orientations.apply_orientation(image, ornt),
                    {k: orientations.apply_orientation(m, ornt) for k, m in masks.items()}, new_affine)


def _plane(volume: np.ndarray, view: str, index: int) -> np.ndarray:
    """(rows, columns) of one slice, in display orientation (see the module docstring)."""
    if view == "axial":
        return np.asarray(volume[::-1, ::-1, index].T)
    if view == "coronal":
        return np.asarray(volume[::-1, index, ::-1].T)
    return np.asarray(volume[index, ::-1, ::-1].T)


def _pixel_mm(spacing: np.ndarray, view: str) -> tuple[float, float]:
    """(row height, column width) in mm of a slice of ``view``."""
    rows, columns = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}[view]
    return float(spacing[rows]), float(spacing[columns])


def window(image: np.ndarray | None, modality: str | None) -> tuple[float, float]:
    """The grey range: CT in a soft-tissue window (W 400, L 40), anything else its 1st-99th percentiles."""
    if image is None:
        return 0.0, 1.0
    if modality == "CT":
        return -160.0, 240.0
    sample = np.asarray(image[:: max(1, image.shape[0] // 64), :: max(1, image.shape[1] // 64)], float)
    low, high = np.percentile(sample, [1, 99]) if sample.size else (0.0, 1.0)
    return float(low), float(high if high > low else low + 1)


def picture(oriented: Oriented, view: str, point: Sequence[int], colors: dict[str, tuple[int, int, int]],
            grey: tuple[float, float], size: int = 256, alpha: float = 0.5) -> Any:
    """A PIL image of the ``view`` slice through voxel ``point``: the image in the ``grey`` window, each mask
    filled in its colour at ``alpha`` with an opaque outline, scaled so that its longer side is ``size``
    pixels and its pixels have their true aspect."""
    from PIL import Image

    index = int(point[VIEWS[view][0]])
    cuts = {name: _plane(mask, view, index) for name, mask in oriented.masks.items()}
    if oriented.image is not None:
        low, high = grey
        plane = np.clip((_plane(oriented.image, view, index).astype(float) - low) / (high - low), 0, 1) * 255
    else:
        plane = np.zeros(next(iter(cuts.values())).shape)
    rgb = np.repeat(plane[..., None], 3, axis=2)
    for name, cut in cuts.items():
        if not cut.any():
            continue
        color = np.array(colors.get(name, (255, 255, 0)), float)
        rgb[cut] = (1 - alpha) * rgb[cut] + alpha * color
        rgb[_outline(cut)] = color
    height_mm, width_mm = _pixel_mm(oriented.spacing, view)
    rows, columns = plane.shape
    scale = size / max(rows * height_mm, columns * width_mm)
    out = Image.fromarray(np.round(rgb).astype(np.uint8), "RGB")
    return out.resize((max(1, round(columns * width_mm * scale)), max(1, round(rows * height_mm * scale))),
                      Image.Resampling.NEAREST)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (or on the picture's edge)."""
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return np.asarray(mask & ~inner)
