"""Small pieces the built-in writers share (they use only labelport's public API)."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import labelport


@dataclass(frozen=True)
class GzipOptions:
    """Options of the writers that write .nii.gz files."""

    #: ISA-L gzip level 0-3 (1 is about 10x faster than zlib's default and smaller on label maps)
    compresslevel: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.compresslevel <= 3:
            raise ValueError(f"compresslevel must be 0-3, not {self.compresslevel}")


def labelled(
    task: labelport.Task, entry: dict[str, Any]
) -> Iterator[tuple[labelport.Series, labelport.LabelMap, dict[str, Any]]]:
    """(series, its label map, its record in ``entry``) for every series that has a label map."""
    for series, record in zip(task.series, entry.get("series") or []):
        if series.label_map is not None:
            yield series, series.label_map, record


def instance_entry(segment: labelport.Segment, mask: str | list[str] | None) -> dict[str, Any]:
    """A segmentMap entry for one instance, without overlap groups (the output has none)."""
    entry = {k: v for k, v in segment.record.items() if k not in ("mask", "overlappingGroups")}
    if mask is not None:
        entry["mask"] = mask
    return entry


def classes(series: labelport.Series) -> dict[int, list[labelport.Segment]]:
    """Segments grouped by class id (ascending), each list in segmentMap order."""
    grouped: dict[int, list[labelport.Segment]] = {}
    for segment in series.segments.values():
        grouped.setdefault(segment.class_id, []).append(segment)
    return dict(sorted(grouped.items()))


def class_entries(series: labelport.Series, masks: dict[int, str] | str | None) -> dict[str, Any]:
    """A semantic segmentMap: one entry per class keyed ``classId + 1``, keeping the FIRST instance's id and
    attributes (what RedBrick documents), with ``mask`` from ``masks`` (per class id, or one path)."""
    out = {}
    for class_id, segments in classes(series).items():
        mask = masks.get(class_id) if isinstance(masks, dict) else masks
        out[str(class_id + 1)] = instance_entry(segments[0], mask)
    return out


def with_mask(record: dict[str, Any], mask: str) -> dict[str, Any]:
    """The series' own segmentMap with every entry's ``mask`` set (formats that keep the instance ids)."""
    return {key: {**entry, "mask": mask} for key, entry in (record.get("segmentMap") or {}).items()}


def replace_masks(record: dict[str, Any], segmentations: str | list[str], segment_map: dict[str, Any], **flags: bool
                  ) -> None:
    """Point a series record at the writer's files."""
    record["segmentations"] = segmentations
    record["segmentMap"] = segment_map
    record.update({"binaryMask": False, "semanticMask": False, "pngMask": False, **flags})


def image_files(task: labelport.Task, series: labelport.Series, folder: str | None, writer: str) -> list[str]:
    """The DICOM files of a series: its images in the export, else ``<folder>/<task>/<series>/`` (the writer's
    ``images`` option; the task and series may be named as they are or as safe file names)."""
    if series.image_files:
        return series.image_files
    if folder:
        top = os.path.realpath(folder)
        for task_name in (task.name, labelport.safe_name(task.name, task.task_id)):
            for series_name in (series.name, labelport.safe_name(series.name, chr(65 + series.index))):
                path = os.path.join(folder, task_name, series_name)
                if not os.path.realpath(path).startswith(top + os.sep):
                    continue  # a name such as "../../x" never leads out of the folder given
                if os.path.isdir(path):
                    return sorted(os.path.join(path, f) for f in os.listdir(path)
                                  if os.path.isfile(os.path.join(path, f)))
    raise labelport.WriterError("no DICOM images for this series: export with images, or name a folder with "
                                f"--opt {writer}.images=DIR (laid out DIR/<task>/<series>/)")


def aligned_mask(views: labelport.LabelViews, instance_ids: list[int], align: labelport.Alignment
                 ) -> tuple[tuple[slice, slice, slice], Any] | None:
    """The union of some instances' masks (overlap groups included) on the image grid: (box in image
    (column, row, slice) indices, boolean mask of that box), or None when they have no voxels."""
    import numpy as np

    parts = [f for f in (views.instance_mask(n) for n in instance_ids) if f is not None]
    if not parts:
        return None
    shape = views.array.shape
    boxes = [align.box(box, shape) for box, _ in parts]
    bi, bj, bk = (slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))
    mask = np.zeros((bi.stop - bi.start, bj.stop - bj.start, bk.stop - bk.start), dtype=bool)
    for (_, inside), dbox in zip(parts, boxes):
        local = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(dbox, (bi, bj, bk)))
        mask[local] |= align.array(inside)
    return (bi, bj, bk), mask


_MAX_LENGTH = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "IS": 12, "LO": 64, "LT": 10240, "PN": 64, "SH": 16,
               "ST": 1024, "TM": 16, "UI": 64}

#: the Patient and General Study attributes a derived object shares with its images (one patient, one study)
PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                 "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")
#: copied too, when the images have them
PATIENT_STUDY_OPTIONAL = (
    "IssuerOfPatientID", "OtherPatientIDs", "EthnicGroup", "PatientComments", "PatientIdentityRemoved",
    "DeidentificationMethod", "DeidentificationMethodCodeSequence", "StudyDescription", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "AdmittingDiagnosesDescription", "PatientAge", "PatientSize", "PatientWeight",
    "Occupation", "AdditionalPatientHistory", "QualityControlSubject", "PatientSpeciesDescription",
    "ResponsiblePerson", "ResponsibleOrganization")
UNRECORDED_METHOD = "Source images de-identified; method not recorded in them"


def copy_identity(target: Any, head: Any, series: str, ctx: labelport.WriterContext) -> None:
    """Copy the patient and study attributes of the images ``head`` into ``target``, byte for byte: a PACS
    matches a study by them, so a value that breaks its VR (a 17-character StudyID) is kept, and said in a
    warning. When the images say PatientIdentityRemoved=YES but not how, the method is said to be unrecorded
    (DeidentificationMethod is required then)."""
    from pydicom.datadict import dictionary_VR

    with warnings.catch_warnings():  # pydicom's own note on a long value is replaced by the one below
        warnings.filterwarnings("ignore", message="The value length .* exceeds the maximum length",
                                category=UserWarning)
        for keyword in (*PATIENT_STUDY, *(k for k in PATIENT_STUDY_OPTIONAL if k in head)):
            element = head.data_element(keyword) if keyword in head else None
            if element is None:
                setattr(target, keyword, "")
                continue
            target.add(copy.deepcopy(element))
            limit = _MAX_LENGTH.get(dictionary_VR(keyword))
            values = element.value if element.VM > 1 else [element.value]
            if limit and any(len(str(v)) > limit for v in values):
                ctx.warn(f"series {series!r}: the images' {keyword} {str(element.value)!r} is longer than its VR "
                         f"({element.VR}) allows ({limit}); kept as is, so that the file stays in the images' study")
    if str(head.get("PatientIdentityRemoved", "")).upper() == "YES" and not (
            head.get("DeidentificationMethod") or head.get("DeidentificationMethodCodeSequence")):
        target.DeidentificationMethod = UNRECORDED_METHOD


def content_uid(*parts: Any) -> str:
    """A UID that is a function of the content: the same content gives the same UID (and the same bytes),
    any change gives a new one, as a PACS needs to see a corrected object as new."""
    from pydicom.uid import generate_uid

    return str(generate_uid(UID_ROOT, entropy_srcs=[repr(p) for p in parts]))


def fit_words(parts: list[str], limit: int, joiner: str = "; ") -> str:
    """``parts`` joined, at most ``limit`` characters, never cut inside a word: parts that do not fit are
    left out and counted (``... 3 more``)."""
    text = joiner.join(parts)
    if len(text) <= limit:
        return text
    for keep in range(len(parts) - 1, -1, -1):
        text = joiner.join(parts[:keep]) + (joiner if keep else "") + f"... {len(parts) - keep} more"
        if len(text) <= limit:
            return text
    return f"{len(parts)} parts"[:limit]


def fitted(keyword: str, value: Any) -> Any:
    """A value labelport writes itself, cut to the length its VR allows (never used for values copied from
    the images)."""
    from pydicom.datadict import dictionary_VR

    limit = _MAX_LENGTH.get(dictionary_VR(keyword))
    if limit and isinstance(value, str) and len(value) > limit:
        return value[:limit]
    return value


UID_ROOT = "1.2.826.0.1.3680043.10.1429."  # prefix of the UIDs labelport generates


def frame_of_reference(dicom: labelport.DicomSeries) -> str:
    """The series' Frame of Reference UID; images without one get a stable UID derived from their study and
    series (the same for every writer, so an RT Struct and a SEG of the series agree)."""
    from pydicom.uid import generate_uid

    head = dicom.header
    return dicom.frame_of_reference_uid or str(generate_uid(
        UID_ROOT, entropy_srcs=[str(head.StudyInstanceUID), str(head.SeriesInstanceUID), "frame"]))


def on_images(task: labelport.Task, entry: dict[str, Any], images: str | None, writer: str, what: str
              ) -> Iterator[tuple[labelport.Series, labelport.LabelMap, dict[str, Any], labelport.DicomSeries,
                              labelport.Alignment]]:
    """(series, label map, record, its DICOM series, the alignment of the two) for every labelled series; a
    series without images or whose grid does not match is refused, naming it (a single image is a one-slice
    volume). ``what`` names the output in messages."""
    for series, label_map, record in labelled(task, entry):
        try:
            dicom = labelport.read_dicom_series(image_files(task, series, images, writer))
            align = labelport.align_to_series(label_map.array.shape, label_map.affine, dicom)
        except labelport.LabelportError as exc:
            raise exc.located(series=series.name) from None
        yield series, label_map, record, dicom, align


def dicom_date_time(task: labelport.Task, fallback: Any = None) -> tuple[str, str]:
    """DICOM date and time of the task's last update (else its creation, else the images' study)."""
    from datetime import datetime

    for value in (task.updated_at, task.created_at):
        try:
            stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return stamp.strftime("%Y%m%d"), stamp.strftime("%H%M%S")
        except ValueError:
            continue
    fallback = fallback if fallback is not None else {}
    return str(fallback.get("StudyDate", "") or "19700101"), str(fallback.get("StudyTime", "") or "000000")


def save_dicom(ctx: labelport.WriterContext, series: labelport.Series, dataset: Any) -> str:
    """Write a pydicom dataset as ``segmentations/<task>/<series>.dcm`` (atomically); its path."""
    path = ctx.series_path(series, ".dcm")
    with ctx.create(path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return path
