"""A series' image as an array on the same voxel grid as its label map.

DICOM series are decoded by SimpleITK (GDCM: uncompressed, JPEG, JPEG-LS, JPEG 2000 and RLE transfer
syntaxes), in the order of their positions along the slice normal, with the rescale slope and intercept
applied; a NIfTI image is read with nibabel. The image is then put in the label map's voxel order by world
geometry (LPS or LAS storage, flipped axes), never by array order. When the grids differ the label map can be
resampled onto the image grid (nearest neighbour), otherwise the mismatch is refused with both grids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .dicomseries import align_grids, describe_grid, read_dicom_series
from .errors import SourceError
from .model import Series

__all__ = ["AlignedVolumes", "load_aligned", "read_image"]

_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class AlignedVolumes:
    """An image and a label array on one voxel grid (``affine``: voxel -> RAS+ mm)."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))


def _is_nifti(path: str) -> bool:
    return path.endswith((".nii", ".nii.gz"))


def read_image(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """(image array in voxel order (i, j, k), RAS affine) of a series, from its image files."""
    files = series.image_files
    if not files:
        raise SourceError("no image files for this series (export it with images)", series=series.name)
    if len(files) == 1 and _is_nifti(files[0]):
        import nibabel as nib

        img: Any = nib.load(files[0])
        data = np.asanyarray(img.dataobj)
        while data.ndim > 3 and data.shape[-1] == 1:
            data = data[..., 0]
        return (data[..., None] if data.ndim == 2 else data), img.affine
    import SimpleITK as sitk

    try:
        dicom = read_dicom_series(files, require_uids=False)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames([im.path for im in dicom.images])  # our order: by position along the normal
        image = reader.Execute()
    except SourceError as exc:
        raise exc.located(series=series.name) from None
    except RuntimeError as exc:
        raise SourceError(f"cannot decode the DICOM images ({str(exc).strip().splitlines()[-1]})",
                          series=series.name) from None
    return _pixels(image).T, dicom.ras_affine  # ITK's (k, j, i) -> (i, j, k)


class _Pixels:
    """An ITK image's pixel buffer as NumPy sees it (``__array_interface__``), holding the image: the array made
    from it keeps the image alive, so the pixels are never copied."""

    def __init__(self, image: Any) -> None:
        import SimpleITK as sitk

        self.image = image
        interface = dict(sitk.GetArrayViewFromImage(image).__array_interface__)  # (its view makes it unique)
        interface["data"] = (interface["data"][0], False)  # writable, as a copy would be: the image is ours
        self.__array_interface__ = interface


def _pixels(image: Any) -> np.ndarray:
    """The pixels of an ITK image in ITK's (k, j, i) order, without a copy (see :class:`_Pixels`)."""
    return np.asarray(_Pixels(image))


def load_aligned(series: Series, resample: bool = False) -> AlignedVolumes:
    """The series' image and label map on one grid: the label map's, or with ``resample`` the image's when
    the two differ."""
    if series.label_map is None:
        raise SourceError("the series has no label map", series=series.name)
    labels, label_affine = series.label_map.array, series.label_map.affine
    image, image_affine = read_image(series)
    found = align_grids(image.shape, image_affine, labels.shape, label_affine)
    if found is not None:
        return AlignedVolumes(np.asarray(found.array(image)), labels, label_affine)
    if not resample:
        raise SourceError(f"the image grid differs from the label map's: image "
                          f"{describe_grid(image.shape, _LPS_FROM_RAS @ image_affine)}; label map "
                          f"{describe_grid(labels.shape, _LPS_FROM_RAS @ label_affine)} "
                          "(resample=True puts the labels on the image grid)", series=series.name)
    return AlignedVolumes(image, regrid(labels, label_affine, image.shape, image_affine), image_affine)


def itk_image(array: np.ndarray, ras_affine: np.ndarray) -> Any:
    """A SimpleITK image of ``array`` (voxel order i, j, k) on the grid of ``ras_affine``."""
    import SimpleITK as sitk

    lps = _LPS_FROM_RAS @ ras_affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.T))
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    image.SetDirection((lps[:3, :3] / spacing).flatten().tolist())
    return image


def regrid(array: np.ndarray, ras_affine: np.ndarray, shape: tuple[int, ...], target: np.ndarray,
           nearest: bool = True) -> np.ndarray:
    """``array`` (on the grid of ``ras_affine``) on the grid (``shape``, ``target``), through world coordinates:
    nearest neighbour (labels and masks keep their type), or linear (as float32)."""
    if array.shape == tuple(shape) and np.allclose(ras_affine, target, atol=1e-4):
        return array
    import SimpleITK as sitk

    reference = itk_image(np.zeros(shape, dtype=np.uint8), target)
    moving = array.astype(np.uint8) if array.dtype == bool else array if nearest else array.astype(np.float32)
    moved = sitk.Resample(itk_image(moving, ras_affine), reference, sitk.Transform(),
                          sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear, 0)
    out = np.asarray(sitk.GetArrayFromImage(moved).T)
    return out.astype(bool) if array.dtype == bool else out
