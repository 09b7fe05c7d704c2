"""``rtstruct``: a DICOM RT Structure Set per series, ``segmentations/<task>/<series>.dcm``.

One ROI per instance (``roi=instance``, the default; the name is the category, numbered when a category
repeats, and ROIDescription holds the instance and label ids) or per class (``roi=class``). Each ROI is
complete: overlap-group voxels belong to every instance that shares them. Contours follow the voxel edges,
so a planning system's pixel-centre rasterisation gives back exactly the label voxels; holes are separate
inner contours (even-odd rule), or with ``holes=keyhole`` joined to their outline by a zero-area channel (for
readers that take the union of contours). The label map is matched to the DICOM series by world geometry (any
axis order; a single image is a one-slice volume), and a mismatch is refused with both grids in the message.

Patient and study attributes are the images' own, byte for byte. RTROIInterpretedType comes from the
objectType's ``rtRoiInterpretedType`` (empty when the taxonomy does not say). Images come from the series'
``items`` (an export made with images), else from the ``images`` option, a folder laid out
``<images>/<task>/<series>/``. Only headers are read; pixel data is never decoded. Dates derive from the task
and UIDs from the content, so the same input gives the same file, and any change a new UID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import labelport

from ._common import (
    aligned_mask,
    content_uid,
    copy_identity,
    dicom_date_time,
    fit_words,
    fitted,
    frame_of_reference,
    instance_entry,
    on_images,
    replace_masks,
    save_dicom,
)

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass(frozen=True)
class Options:
    #: one ROI per "instance" or per "class"
    roi: Literal["instance", "class"] = "instance"
    #: holes as separate inner contours ("separate": readers must combine contours by the even-odd rule) or
    #: joined to their outline by a keyhole ("keyhole": right for readers that take the union of contours too)
    holes: Literal["separate", "keyhole"] = "separate"
    #: folder with the DICOM images as <images>/<task>/<series>/ (when the export has none)
    images: str | None = None


@dataclass
class _Roi:
    number: int
    name: str
    description: str
    color: tuple[int, int, int]
    instance_ids: list[int]
    segments: list[labelport.Segment]
    interpreted_type: str


def _description(segments: list[labelport.Segment]) -> str:
    """ROIDescription (LO, 64): the instances and label ids, shortened by whole parts, never mid-word."""
    full = [f"instance {s.instance_id}" + (f", label {s.label_id}" if s.label_id else "") for s in segments]
    text = fit_words(full, 64)
    if "..." not in text or len(segments) == 1:
        return text
    return fit_words([f"instances {segments[0].instance_id}", *(str(s.instance_id) for s in segments[1:])], 64, ", ")


def _rois(task: labelport.Task, series: labelport.Series, per: str) -> list[_Roi]:
    groups: dict[Any, list[labelport.Segment]] = {}
    for segment in sorted(series.segments.values(), key=lambda s: s.instance_id):
        groups.setdefault(segment.instance_id if per == "instance" else segment.class_id, []).append(segment)
    rois, used = [], set()
    for number, segments in enumerate(groups.values(), start=1):
        name, n = segments[0].category[:64], 1
        while name.casefold() in used:
            n += 1
            name = f"{segments[0].category[:60]} {n}"
        used.add(name.casefold())
        ids = [s.instance_id for s in segments]
        category = task.taxonomy.get(segments[0].category)
        roi_type = category.roi_type if category is not None and category.roi_type else ""
        rois.append(_Roi(number, name, _description(segments), segments[0].color, ids, segments, roi_type))
    return rois


def _contours(views: labelport.LabelViews, roi: _Roi, align: labelport.Alignment,
              dicom: labelport.DicomSeries, keyhole: bool) -> list[tuple[int, str, int]]:
    """(image index, ContourData text, number of points) of every outline of the ROI, slice by slice."""
    import numpy as np

    outlines = labelport.keyhole_outlines if keyhole else labelport.mask_outlines
    out: list[tuple[int, str, int]] = []
    crop = aligned_mask(views, roi.instance_ids, align)
    if crop is None:
        return out
    (bi, bj, bk), mask = crop
    row_step = dicom.column_direction * dicom.row_spacing  # moving down one row
    col_step = dicom.row_direction * dicom.column_spacing  # moving right one column
    for k in range(mask.shape[2]):
        plane = mask[:, :, k]
        if not plane.any():
            continue
        origin = dicom.images[bk.start + k].position
        for loop in outlines(plane.T):  # rows = j, columns = i
            x = loop[:, 0] + bi.start - 0.5
            y = loop[:, 1] + bj.start - 0.5
            points = origin + np.outer(x, col_step) + np.outer(y, row_step)
            text = "\\".join(["%.3f"] * points.size) % tuple(points.ravel())
            out.append((bk.start + k, text, len(loop)))
    return out


def _raw(tag: int, vr: str, text: str) -> Any:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    data = text.encode("ascii")
    if len(data) % 2:
        data += b" "
    return RawDataElement(Tag(tag), vr, len(data), data, 0, False, True)


def build(task: labelport.Task, series: labelport.Series, dicom: labelport.DicomSeries,
          align: labelport.Alignment, rois: list[_Roi], opts: Options, ctx: labelport.WriterContext) -> Any:
    """The RT Structure Set dataset."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import UID, ExplicitVRLittleEndian

    head = dicom.header
    date, time = dicom_date_time(task, head)
    frame_uid = frame_of_reference(dicom)

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(RT_STRUCTURE_SET_STORAGE)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = head.get("SpecificCharacterSet", "ISO_IR 100")
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    copy_identity(ds, head, series.name, ctx)
    ds.Modality = "RTSTRUCT"
    ds.SeriesNumber = 1
    ds.SeriesDescription = (series.name or "labelport")[:64]
    ds.OperatorsName = ""
    ds.Manufacturer = "labelport"
    ds.ManufacturerModelName = "labelport"
    ds.SoftwareVersions = labelport.__version__
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = head.get("PositionReferenceIndicator", "")
    ds.StructureSetLabel = fitted("StructureSetLabel", task.name or "labelport")
    ds.StructureSetName = fitted("StructureSetName", task.name or "labelport")
    ds.StructureSetDate, ds.StructureSetTime = date, time

    images = []
    for image in dicom.images:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = image.sop_class_uid, image.sop_instance_uid
        images.append(item)
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = head.SeriesInstanceUID
    ref_series.ContourImageSequence = Sequence(images)
    ref_study = Dataset()
    ref_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired, as used)
    ref_study.ReferencedSOPInstanceUID = head.StudyInstanceUID
    ref_study.RTReferencedSeriesSequence = Sequence([ref_series])
    ref_frame = Dataset()
    ref_frame.FrameOfReferenceUID = frame_uid
    ref_frame.RTReferencedStudySequence = Sequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref_frame])

    views = labelport.views(series)
    roi_items, contour_items, observations = [], [], []
    content = []  # what the structure set says, for its UIDs
    for roi in rois:
        item = Dataset()
        item.ROINumber, item.ReferencedFrameOfReferenceUID = roi.number, frame_uid
        item.ROIName, item.ROIDescription, item.ROIGenerationAlgorithm = roi.name, roi.description, "MANUAL"
        roi_items.append(item)
        contours = []
        found = _contours(views, roi, align, dicom, opts.holes == "keyhole")
        content.append((roi.number, roi.name, roi.description, roi.color, roi.interpreted_type, found))
        for index, text, count in found:
            contour = Dataset()
            image_ref = Dataset()
            image_ref.ReferencedSOPClassUID = dicom.images[index].sop_class_uid
            image_ref.ReferencedSOPInstanceUID = dicom.images[index].sop_instance_uid
            contour.ContourImageSequence = Sequence([image_ref])
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = count
            contour[0x30060050] = _raw(0x30060050, "DS", text)
            if hasattr(contour, "set_original_encoding"):  # so that pydicom writes the text as it is
                contour.set_original_encoding(False, True, "iso8859")  # ASCII only: numbers and UIDs
            contours.append(contour)
        roi_contour = Dataset()
        roi_contour.ROIDisplayColor = list(roi.color)
        roi_contour.ReferencedROINumber = roi.number
        if contours:
            roi_contour.ContourSequence = Sequence(contours)
        contour_items.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = roi.number, roi.number
        observation.RTROIInterpretedType, observation.ROIInterpreter = roi.interpreted_type, ""
        observations.append(observation)
    ds.StructureSetROISequence = Sequence(roi_items)
    ds.ROIContourSequence = Sequence(contour_items)
    ds.RTROIObservationsSequence = Sequence(observations)
    # UIDs from the content: the contours, the ROIs, the images referenced, the task, the options, the version
    seed = (task.task_id, series.index, content, [im.sop_instance_uid for im in dicom.images], opts,
            labelport.__version__, date, time)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(content_uid(*seed, "sop"))
    ds.SeriesInstanceUID = content_uid(*seed, "series")
    return ds


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    for series, _, record, dicom, align in on_images(task, entry, opts.images, "rtstruct",
                                                     "an RT Structure Set"):
        rois = _rois(task, series, opts.roi)
        dataset = build(task, series, dicom, align, rois, opts, ctx)
        path = save_dicom(ctx, series, dataset)
        replace_masks(record, path, {roi.name: {**instance_entry(roi.segments[0], path), "roiNumber": roi.number,
                                                "instances": roi.instance_ids} for roi in rois})
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="rtstruct",
        description="DICOM RT Structure Set per series, exact voxel-edge contours, one ROI per instance or class",
        write=write,
        options=Options,
        needs_images=True,
    )]
