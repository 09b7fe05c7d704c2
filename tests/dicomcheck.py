"""DICOM conformance of a file labelport wrote, judged by dicom3tools against the images it derives from:
dciodvfy may report in our file only the errors the source images report themselves (a value we copied byte
for byte, such as a 17-character StudyID, keeps its error; anything we add or leave out does not), and
dcentvfy must report nothing about our file (one patient, one study, one frame of reference)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import labelport


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        reason = f"{name} not installed (Debian: dicom3tools, plastimatch; segimage2itkimage: pip install dcmqi)"
        if os.environ.get("LABELPORT_REQUIRE_TOOLS"):  # CI installs them: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def readable(path: Path | str) -> Path:
    """``path``, or for a deflated file the same dataset written uncompressed next to it (dicom3tools cannot
    inflate)."""
    path = Path(path)
    if pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99":
        plain = pydicom.dcmread(path)
        plain.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        path = path.with_suffix(".inflated.dcm")
        plain.save_as(path, enforce_file_format=True)
    return path


def dciodvfy_errors(path: Path | str) -> set[str]:
    """dciodvfy's error lines for a file."""
    run = subprocess.run([tool("dciodvfy"), str(readable(path))], capture_output=True, text=True)
    return {line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")} - {
        "Error - Dicom dataset contains invalid data values for Value Representations"}  # a summary of the others


def assert_conformant(ours: Path | str, images: list[str], added: tuple[str, ...] = ()) -> None:
    """No dciodvfy error of ours that the images do not have; no dcentvfy finding about our file, except that
    it holds the ``added`` attributes, which the images lack and we had to add."""
    inherited = set().union(*(dciodvfy_errors(image) for image in images[:3]))
    extra = sorted(dciodvfy_errors(ours) - inherited)
    assert not extra, extra
    ours = readable(ours)
    run = subprocess.run([tool("dcentvfy"), str(ours), *images], capture_output=True, text=True)
    about_ours = [line for line in (run.stdout + run.stderr).splitlines()
                  if line.startswith(("Error", "Warning")) and str(ours) in line
                  and not any(f"Attribute present in one instance but not the other - Element=<{name}>" in line
                              for name in added)]
    assert not about_ours, about_ours


def dicom_checks(rt: Path, images: list[str], added: tuple[str, ...] = ()) -> None:
    """dciodvfy: no error the images do not have themselves; dcentvfy: nothing about our file; pydicom strict
    reading."""
    assert_conformant(rt, images, added)
    ds = pydicom.dcmread(rt)
    head = pydicom.dcmread(images[0], stop_before_pixels=True)
    ours = rt.with_suffix(".ours.dcm")  # what labelport wrote itself: all but the values copied from the images
    own = pydicom.dcmread(rt)
    for elem in list(own):
        if elem.tag in head and head[elem.tag].value == elem.value and elem.tag.group in (0x0010, 0x0020, 0x0008):
            del own[elem.tag]
    own.save_as(ours, enforce_file_format=True)
    with pydicom.config.strict_reading():
        for elem in pydicom.dcmread(ours).iterall():
            _ = elem.value
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3" and ds.Modality == "RTSTRUCT"
    for roi in ds.ROIContourSequence:
        for contour in roi.get("ContourSequence", []):
            raw = contour["ContourData"].value
            assert len(contour.ContourData) == 3 * contour.NumberOfContourPoints >= 9
            assert all(len(str(v)) <= 16 for v in raw)
            assert len(contour.ContourImageSequence) == 1


def plastimatch_masks(rt: Path, image_dir: Path, out: Path, xor: bool = True,
                      images: list[str] | None = None) -> dict[str, sitk.Image]:
    """plastimatch's rasterisation of every ROI on the image grid: contours combined by XOR (even-odd), or
    without ``--xor-contours`` by union, as many planning systems combine them."""
    reference = ["--referenced-ct", str(image_dir)]
    if len(images or []) == 1:  # plastimatch makes up its own grid for a one-slice CT: give it the image's
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(images)
        sitk.WriteImage(reader.Execute(), str(out) + "-reference.mha")
        reference = ["--fixed", str(out) + "-reference.mha"]
    run = subprocess.run([tool("plastimatch"), "convert", *(["--xor-contours"] if xor else []), "--input", str(rt),
                          *reference, "--output-prefix", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return {p.stem: sitk.ReadImage(str(p)) for p in out.glob("*.mha")}


def dice_in_world(mask: np.ndarray, ras_affine: np.ndarray, image: sitk.Image) -> tuple[float, float]:
    """Dice and volume ratio of a label-grid mask against plastimatch's image, the mask resampled onto the
    image through world coordinates (nearest neighbour; the grids coincide, so nothing is interpolated)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras_affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    source = sitk.GetImageFromArray(np.ascontiguousarray(mask.astype(np.uint8).T))
    source.SetSpacing(spacing.tolist())
    source.SetOrigin(lps[:3, 3].tolist())
    source.SetDirection((lps[:3, :3] / spacing).flatten().tolist())
    resampled = sitk.Resample(source, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    a, b = sitk.GetArrayFromImage(image) > 0, sitk.GetArrayFromImage(resampled) > 0
    assert b.sum() == mask.sum(), "the source mask must fall entirely on the image grid"
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum()), float(a.sum()) / float(b.sum())


def check_rois(project: Path, out: Path, entry: dict[str, Any], task: labelport.Task, tmp: Path,
               xor: bool = True, added: tuple[str, ...] = ()) -> int:
    """Every ROI rasterised by plastimatch (``xor``: contours combined by the even-odd rule, else by union)
    against the source instance (or class) mask: Dice >= 0.999, volume within 1 %. Returns the number of ROIs
    checked."""
    checked = 0
    for series, record in zip(task.series, entry["series"]):
        if series.label_map is None:
            continue
        rt = out / record["segmentations"]
        image_dir = Path(series.image_files[0]).parent
        dicom_checks(rt, series.image_files, added)
        masks = plastimatch_masks(rt, image_dir, tmp / f"pm-{series.index}-{xor}", xor, series.image_files)
        views = labelport.views(series)
        for name, roi in record["segmentMap"].items():
            mask = np.zeros(views.array.shape, bool)
            for n in roi["instances"]:
                found = views.instance_mask(n)
                if found is not None:
                    mask[found[0]] |= found[1]
            if not mask.any():
                continue
            dice, ratio = dice_in_world(mask, series.label_map.affine, masks[name])
            assert dice >= 0.999 and abs(ratio - 1) <= 0.01, (name, dice, ratio)
            checked += 1
    return checked


LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def image_grid(files: list[str]) -> tuple[list[Any], np.ndarray]:
    """The images sorted along their normal, and a (slices, rows, columns, 3) array of LPS pixel centres."""
    heads = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    row_dir, col_dir = (np.array(heads[0].ImageOrientationPatient[:3], float),
                        np.array(heads[0].ImageOrientationPatient[3:], float))
    normal = np.cross(row_dir, col_dir)
    heads.sort(key=lambda h: float(np.dot(normal, np.array(h.ImagePositionPatient, float))))
    dr, dc = (float(v) for v in heads[0].PixelSpacing)
    rows, cols = np.meshgrid(np.arange(heads[0].Rows), np.arange(heads[0].Columns), indexing="ij")
    points = [np.array(h.ImagePositionPatient, float) + cols[..., None] * dc * row_dir + rows[..., None] * dr * col_dir
              for h in heads]
    return heads, np.stack(points)


def sample(mask: np.ndarray, ras_affine: np.ndarray, lps_points: np.ndarray) -> np.ndarray:
    """The label-grid ``mask`` at the given LPS points (nearest voxel; outside is False)."""
    ijk = np.linalg.solve(LPS @ ras_affine, np.c_[lps_points.reshape(-1, 3), np.ones(lps_points[..., 0].size)].T)
    index = np.rint(ijk[:3]).astype(int)
    inside = np.all((index >= 0) & (index < np.array(mask.shape)[:, None]), axis=0)
    out = np.zeros(index.shape[1], bool)
    out[inside] = mask[tuple(index[:, inside])]
    return out.reshape(lps_points.shape[:-1])


def check_highdicom(path: Path, heads: list[Any], grid: np.ndarray, expected: dict[int, np.ndarray]) -> Any:
    """Every segment, read back by highdicom on the source images, equals the expected mask there."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    uids = [h.SOPInstanceUID for h in heads]
    numbers = sorted(expected)
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=numbers,
                                               combine_segments=False, skip_overlap_checks=True)
    for channel, number in enumerate(numbers):
        assert np.array_equal(pixels[..., channel].astype(bool), expected[number]), f"segment {number}"
    return seg


def check_dcmqi(path: Path, out: Path, expected: dict[int, np.ndarray], ras_affine: np.ndarray) -> None:
    """dcmqi's conversion to NIfTI, one file per segment: each labelled voxel, taken to world coordinates and
    back onto the label grid of ``ras_affine``, lands within 0.05 voxel of a voxel of the expected mask, and
    together they are that mask."""
    out.mkdir()
    run = subprocess.run([tool("segimage2itkimage"), "--inputDICOM", str(path), "--outputDirectory", str(out),
                          "--outputType", "nifti"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    to_grid = np.linalg.inv(ras_affine)
    for number, mask in expected.items():
        file = out / f"{number}.nii.gz"
        if not mask.any():
            assert not file.exists() or not np.asanyarray(nib.load(str(file)).dataobj).any()
            continue
        image = nib.load(str(file))
        ijk = np.argwhere(np.asanyarray(image.dataobj) > 0)
        on_grid = (to_grid @ image.affine @ np.c_[ijk, np.ones(len(ijk))].T)[:3].T
        index = np.rint(on_grid)
        assert np.abs(on_grid - index).max(initial=0) < 0.05, f"segment {number}: off the label grid"
        inside = np.all((index >= 0) & (index < mask.shape), axis=1)
        assert inside.all() and len(index) == int(mask.sum()), f"segment {number}: {len(index)} voxels"
        assert mask[tuple(index.astype(int).T)].all(), f"segment {number}"
