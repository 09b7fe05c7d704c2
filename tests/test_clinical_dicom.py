"""RT Struct and SEG as a planning system and a PACS need them, on CT series the tests write themselves:
patient and study the images' own (de-identification method included), UIDs that change with the content and
only with it, ROI types and segment codes from the taxonomy (never a wrong default), colours that depend on the
category alone, descriptions that fit, library warnings once and named, one-slice series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from cases import dicom_export
from click.testing import CliRunner
from dicomcheck import assert_conformant, dciodvfy_errors

import labelport
from labelport.cli import cli

SHAPE = (24, 20, 6)  # columns, rows, slices


def _masks() -> dict[int, np.ndarray]:
    i, j, k = np.ogrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    ring = ((i - 8) ** 2 + (j - 9) ** 2 < 36) & ((i - 8) ** 2 + (j - 9) ** 2 >= 4) & (k >= 1) & (k <= 4)
    gtv = ((i - 15) ** 2 + (j - 9) ** 2 < 16) & (k >= 2) & (k <= 3)
    lung = (i >= 12) & (i < 22) & (j >= 4) & (j < 16) & (k <= 4)  # overlaps the GTV
    return {1: ring, 2: gtv, 3: lung}


TAXONOMY = {"name": "clinical", "objectTypes": [
    {"category": "Ring", "classId": 0, "color": "#ff0000"},
    {"category": "GTV", "classId": 1, "color": "#00ff00", "rtRoiInterpretedType": "GTV",
     "segmentedPropertyCategory": {"CodeValue": "49755003", "CodingSchemeDesignator": "SCT",
                                   "CodeMeaning": "Morphologically Altered Structure"},
     "segmentedPropertyType": {"CodeValue": "108369006", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Neoplasm"}},
    {"category": "Lung", "classId": 2, "color": "#0000ff", "rtRoiInterpretedType": "ORGAN"}]}
CATEGORIES = {1: "Ring", 2: "GTV", 3: "Lung"}


def _case(root: Path, **attributes: Any) -> Path:
    return dicom_export(root, _masks(), CATEGORIES, taxonomy=TAXONOMY, **attributes)


def _files(out: Path, writer: str) -> list[Path]:
    return sorted((out / writer if (out / writer).is_dir() else out).rglob("*.dcm"))


def _export(src: Path, out: Path, writers: tuple[str, ...] = ("rtstruct", "dicom-seg"), **kwargs: Any) -> Path:
    options = {"dicom-seg": {"compression": "none"}} if "dicom-seg" in writers else {}
    report = labelport.export(src, out, list(writers), options={**options, **kwargs.pop("options", {})}, **kwargs)
    assert report.ok, [str(f) for f in report.failures]
    return out


def _images(src: Path) -> list[str]:
    return sorted(str(p) for p in (src / "images").rglob("*.dcm"))


def test_a_de_identified_series_without_its_method_gets_one(tmp_path: Path) -> None:
    src = _case(tmp_path / "src", PatientIdentityRemoved="YES")
    assert any("DeidentificationMethod" in e for e in dciodvfy_errors(_images(src)[0]))  # the images lack it
    out = _export(src, tmp_path / "out")
    for writer in ("rtstruct", "dicom-seg"):
        (ours,) = _files(out, writer)
        ds = pydicom.dcmread(ours)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethod == "Source images de-identified; method not recorded in them"
        assert not any("DeidentificationMethod" in e for e in dciodvfy_errors(ours))
        assert_conformant(ours, _images(src), added=("DeidentificationMethod",))


def test_the_images_own_method_is_copied(tmp_path: Path) -> None:
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    src = _case(tmp_path / "src", PatientIdentityRemoved="YES", DeidentificationMethod="Per site policy",
                DeidentificationMethodCodeSequence=pydicom.Sequence([code]))
    out = _export(src, tmp_path / "out")
    for writer in ("rtstruct", "dicom-seg"):
        ds = pydicom.dcmread(_files(out, writer)[0])
        assert ds.DeidentificationMethod == "Per site policy"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_identifiers_are_the_images_own_even_when_they_break_their_vr(tmp_path: Path) -> None:
    src = _case(tmp_path / "src", StudyID="IBSI_1_STS_001_CT", AccessionNumber="A" * 17)
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "out"), "-w", "rtstruct", "-w",
                                      "dicom-seg", "--opt", "dicom-seg.compression=none", "-j", "1"])
    assert result.exit_code == 0, result.output
    for writer in ("rtstruct", "dicom-seg"):
        ours = _files(tmp_path / "out", writer)[0]
        ds = pydicom.dcmread(ours)
        assert ds.StudyID == "IBSI_1_STS_001_CT" and ds.AccessionNumber == "A" * 17
        assert_conformant(ours, _images(src))  # the same study for dcentvfy; only the images' own VR errors
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    # one warning per attribute, series and writer, naming them; no raw library warning
    assert len([w for w in warnings if "StudyID" in w]) == 2 and len([w for w in warnings if "Accession" in w]) == 2
    assert all("task 'Case 001'" in w and "series 'CT'" in w for w in warnings), warnings
    assert "UserWarning" not in result.output and "The value length" not in result.output
    quiet = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "q"), "-w", "rtstruct", "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""


def _uids(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)


@pytest.mark.parametrize("writer", ["rtstruct", "dicom-seg"])
def test_uids_change_with_the_content_and_only_with_it(tmp_path: Path, writer: str) -> None:
    src = _case(tmp_path / "src")
    first = _files(_export(src, tmp_path / "a", (writer,)), writer)[0]
    again = _files(_export(src, tmp_path / "b", (writer,)), writer)[0]
    assert first.read_bytes() == again.read_bytes()  # same content, same bytes
    path = src / "segmentations" / "Case 001" / "CT.nii.gz"
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj).copy()
    data[20, 2, 0] = 3  # one voxel more for the lung, updatedAt unchanged
    nib.save(nib.Nifti1Image(data, image.affine, image.header), str(path))
    changed = _files(_export(src, tmp_path / "c", (writer,)), writer)[0]
    assert _uids(changed)[0] != _uids(first)[0] and _uids(changed)[1] != _uids(first)[1]
    records = json.loads((src / "tasks.json").read_text())
    records[0]["series"][0]["segmentMap"]["3"]["category"] = "Ring"  # a segment definition changes
    (src / "tasks.json").write_text(json.dumps(records))
    redefined = _files(_export(src, tmp_path / "d", (writer,)), writer)[0]
    assert len({_uids(p)[0] for p in (first, changed, redefined)}) == 3


def test_roi_types_and_segment_codes_come_from_the_taxonomy_or_stay_empty(tmp_path: Path) -> None:
    src = _case(tmp_path / "src")
    out = _export(src, tmp_path / "out")
    rt = pydicom.dcmread(_files(out, "rtstruct")[0])
    types = {roi.ROIName: obs.RTROIInterpretedType for roi, obs in zip(rt.StructureSetROISequence,
                                                                       rt.RTROIObservationsSequence)}
    assert types == {"Ring": "", "GTV": "GTV", "Lung": "ORGAN"}  # type 2: empty, never a wrong "ORGAN"
    seg = hd.seg.segread(str(_files(out, "dicom-seg")[0]))
    codes = {d.SegmentLabel: (d.SegmentedPropertyCategoryCodeSequence[0], d.SegmentedPropertyTypeCodeSequence[0])
             for d in seg.SegmentSequence}
    assert codes["GTV"][1].CodeValue == "108369006" and codes["GTV"][1].CodingSchemeDesignator == "SCT"
    ring_category, ring_type = codes["Ring"]
    assert ring_category.CodingSchemeDesignator == "99LABELPORT"
    assert ring_type.CodingSchemeDesignator == "99LABELPORT" and ring_type.CodeMeaning == "Ring"
    assert "Tissue" not in {c.CodeMeaning for pair in codes.values() for c in pair}
    assert seg.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99LABELPORT"
    assert_conformant(_files(out, "dicom-seg")[0], _images(src))
    wrong = json.loads(json.dumps(TAXONOMY))
    wrong["objectTypes"][1]["rtRoiInterpretedType"] = "tumour"
    (src / "taxonomy.json").write_text(json.dumps(wrong))
    result = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "bad"), "-w", "rtstruct"])
    assert result.exit_code == 1 and "rtRoiInterpretedType 'tumour' is not a DICOM code string" in result.output


def test_the_readmes_object_type_is_read_as_it_says(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (example,) = re.findall(r"```json\n(.*?)```", readme, re.S)
    object_type = json.loads(example)
    masks = _masks()
    src = dicom_export(tmp_path / "src", {1: masks[2]}, {1: object_type["category"]},
                       taxonomy={"name": "readme", "objectTypes": [object_type]})
    out = _export(src, tmp_path / "out")
    rt = pydicom.dcmread(_files(out, "rtstruct")[0])
    assert rt.RTROIObservationsSequence[0].RTROIInterpretedType == object_type["rtRoiInterpretedType"]
    assert list(rt.ROIContourSequence[0].ROIDisplayColor) == [255, 0, 0]
    (segment,) = hd.seg.segread(str(_files(out, "dicom-seg")[0])).SegmentSequence
    for key, keyword in (("segmentedPropertyCategory", "SegmentedPropertyCategoryCodeSequence"),
                         ("segmentedPropertyType", "SegmentedPropertyTypeCodeSequence")):
        code = segment[keyword][0]
        assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == tuple(object_type[key].values())


def test_colours_without_a_taxonomy_depend_on_the_category_alone(tmp_path: Path) -> None:
    small = dicom_export(tmp_path / "small", {1: _masks()[2]}, {1: "GTV"})
    large = dicom_export(tmp_path / "large", _masks(), {1: "Aorta", 2: "GTV", 3: "Bladder"})

    def colours(src: Path) -> dict[str, list[int]]:
        rt = pydicom.dcmread(_files(_export(src, src.parent / (src.name + "-out"), ("rtstruct",)), "rtstruct")[0])
        return {roi.ROIName: list(c.ROIDisplayColor) for roi, c in zip(rt.StructureSetROISequence,
                                                                      rt.ROIContourSequence)}

    assert colours(small)["GTV"] == colours(large)["GTV"]


@pytest.mark.parametrize("count", [1, 8, 23])
def test_roi_descriptions_fit_without_cutting_a_word(tmp_path: Path, count: int) -> None:
    i, j, k = np.ogrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    masks = {n: (i == n) & (j < 5) & (k < 2) for n in range(1, count + 1)}
    src = dicom_export(tmp_path / "src", masks, dict.fromkeys(masks, "Node"))
    out = _export(src, tmp_path / "out", ("rtstruct",), options={"rtstruct": {"roi": "class"}})
    rt = pydicom.dcmread(_files(out, "rtstruct")[0])
    (roi,) = rt.StructureSetROISequence
    text = roi.ROIDescription
    assert len(text) <= 64
    if count == 1:  # one instance: its id and its label id
        assert text == "instance 1, label label-1"
        return
    head, *rest = text.split(", ")
    assert head == "instances 1"
    if count == 8:  # all fit
        assert rest == [str(n) for n in range(2, 9)]
    else:  # whole ids, then how many were left out
        *ids, tail = rest
        assert ids == [str(n) for n in range(2, len(ids) + 2)]
        assert tail == f"... {count - len(ids) - 1} more"


@pytest.mark.parametrize("writer", ["rtstruct", "dicom-seg"])
def test_a_one_slice_series(tmp_path: Path, writer: str) -> None:
    masks = {n: m[:, :, 2:3] for n, m in _masks().items()}
    src = dicom_export(tmp_path / "src", masks, CATEGORIES, taxonomy=TAXONOMY)
    out = _export(src, tmp_path / "out", (writer,))
    (ours,) = _files(out, writer)
    assert_conformant(ours, _images(src))
    if writer == "dicom-seg":
        seg = hd.seg.segread(str(ours))
        head = pydicom.dcmread(_images(src)[0], stop_before_pixels=True)
        pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=[head.SOPInstanceUID],
                                                   segment_numbers=[1, 2, 3], combine_segments=False,
                                                   skip_overlap_checks=True)
        for channel, n in enumerate((1, 2, 3)):
            assert np.array_equal(pixels[0, ..., channel].astype(bool), masks[n][:, :, 0].T), n
