"""Where the written ``items`` point (``--images reference|copy|link``): every item resolves from its writer's
folder to the source image's bytes, an output re-exports to the same DICOM files, and switching modes or
moving the output folder still gives what a clean export gives."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cases import dicom_export, read_records, write_records
from click.testing import CliRunner

import labelport
from labelport.cli import cli

WRITERS = ["rtstruct", "nifti"]


def _source(root: Path) -> Path:
    i, j, k = np.ogrid[:12, :10, :4]
    return dicom_export(root, {1: (i < 5) & (j < 5) & (k >= 0), 2: (i > 6) & (k > 1) & (j >= 0)}, {1: "A", 2: "B"})


def _items(root: Path) -> list[str]:
    return json.loads((root / "tasks.json").read_text())[0]["series"][0]["items"]


def _tree(out: Path) -> dict[str, bytes]:
    """Every file of an export and its bytes (labelport's own folder left out)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and ".labelport" not in p.relative_to(out).parts}


def _export(src: Path, out: Path, images: str, **kwargs: Any) -> labelport.ExportReport:
    report = labelport.export(src, out, WRITERS, images=images, **kwargs)  # type: ignore[arg-type]
    assert report.ok, [str(f) for f in report.failures]
    return report


@pytest.mark.parametrize("images", ["reference", "copy", "link"])
def test_items_resolve_from_the_output(tmp_path: Path, images: str) -> None:
    src = _source(tmp_path / "src")
    sources = [src / item for item in read_records(src)[0]["series"][0]["items"]]
    _export(src, tmp_path / "out", images)
    for writer in WRITERS:
        root = tmp_path / "out" / writer
        items = _items(root)
        assert len(items) == len(sources) == 4
        for item, source in zip(items, sources):
            assert (root / item).read_bytes() == source.read_bytes()
            if images == "reference":
                assert (root / item).resolve() == source.resolve()
            else:
                assert item.startswith("images/Case 001/CT/") and (root / item).resolve() != source.resolve()
                assert os.path.samefile(root / item, source) == (images == "link")
    assert _export(src, tmp_path / "out", images).written == dict.fromkeys(WRITERS, 0)  # a no-op re-run, links too


@pytest.mark.parametrize("images", ["reference", "copy", "link"])
def test_an_output_exports_again_to_the_same_files(tmp_path: Path, images: str) -> None:
    """Re-exporting a writer's folder gives the same RT Struct, byte for byte; a copied or linked output needs
    nothing else (the source is gone), a referencing one reads outside itself only when allowed."""
    src = _source(tmp_path / "src")
    _export(src, tmp_path / "out", images)
    first = tmp_path / "out" / "nifti"
    if images != "reference":
        shutil.rmtree(src)
    else:
        refused = labelport.export(first, tmp_path / "refused", ["rtstruct"])
        assert len(refused.failures) == 1 and "leads outside the export folder" in refused.failures[0].message
        assert "task 'Case 001'" in refused.failures[0].message
    again = labelport.export(first, tmp_path / "again", ["rtstruct"], allow_outside_paths=images == "reference")
    assert again.ok, [str(f) for f in again.failures]
    (rt,) = (tmp_path / "out" / "rtstruct" / "segmentations").rglob("*.dcm")
    (rt_again,) = (tmp_path / "again" / "segmentations").rglob("*.dcm")
    assert rt_again.read_bytes() == rt.read_bytes()


def test_switching_modes_and_moving_the_output_equal_a_clean_export(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    out = tmp_path / "out"
    for step, images in enumerate(["reference", "copy", "link", "reference", "copy"]):
        report = _export(src, out, images)
        assert report.written == dict.fromkeys(WRITERS, 1)  # the mode is part of what a task's output depends on
        clean = tmp_path / f"clean-{step}"
        _export(src, clean, images)
        assert _tree(out) == _tree(clean), images
        if images == "reference":  # no copies left behind from an earlier mode
            assert not any((out / w / "images").exists() for w in WRITERS)
    moved = tmp_path / "elsewhere" / "out"
    moved.parent.mkdir()
    _export(src, out, "reference")
    out.rename(moved)
    report = _export(src, moved, "reference")
    assert report.written == dict.fromkeys(WRITERS, 1)  # items are relative to the output folder: rewritten
    for writer in WRITERS:
        assert all((moved / writer / item).is_file() for item in _items(moved / writer))


def test_items_without_files_are_kept_and_said(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    records = read_records(src)
    (src / records[0]["series"][0]["items"][3]).unlink()
    write_records(src, records)
    report = labelport.export(src, tmp_path / "out", ["nifti"], images="copy")
    assert report.ok
    items = _items(tmp_path / "out")
    assert items[3] == records[0]["series"][0]["items"][3]  # as it was
    assert [w for w in report.warnings if "1 of 4 images not found" in w and "task 'Case 001'" in w]
    assert not labelport.export(src, tmp_path / "ref", ["nifti"]).warnings  # reference: nothing to say


def test_items_a_writer_sets_are_its_own(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    _export(src, tmp_path / "out", "copy")
    report = labelport.export(src, tmp_path / "imgs", ["images-nifti"], images="copy")
    assert report.ok
    assert _items(tmp_path / "imgs") == "images/Case 001/CT.nii.gz"
    assert not (tmp_path / "imgs" / "images" / "Case 001" / "CT").exists()


def test_same_file_names_in_one_series_stay_apart(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    records = read_records(src)
    items = records[0]["series"][0]["items"]
    for n, item in enumerate(items[2:], start=2):  # two images named alike in another folder
        moved = f"images/other/{n % 2}/{Path(items[n - 2]).name.upper()}"
        (src / moved).parent.mkdir(parents=True, exist_ok=True)
        (src / item).rename(src / moved)
        items[n] = moved
    write_records(src, records)
    report = labelport.export(src, tmp_path / "out", ["nifti"], images="copy")
    assert report.ok, [str(f) for f in report.failures]
    written = _items(tmp_path / "out")
    assert len({w.casefold() for w in written}) == 4
    assert [(tmp_path / "out" / w).read_bytes() for w in written] == [(src / i).read_bytes() for i in items]


def test_the_command_line_option(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "out"), "-w", "nifti",
                                      "--images", "copy", "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert _items(tmp_path / "out")[0] == "images/Case 001/CT/0000.dcm"
    bad = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "x"), "-w", "nifti", "--images", "move"])
    assert bad.exit_code == 2 and "'move' is not one of 'reference', 'copy', 'link'" in bad.output
    with pytest.raises(labelport.OptionError, match="images must be one of 'reference', 'copy', 'link'"):
        labelport.export(src, tmp_path / "y", ["nifti"], images="symlink")  # type: ignore[arg-type]
