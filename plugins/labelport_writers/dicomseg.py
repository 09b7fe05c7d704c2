"""``dicom-seg``: a DICOM Segmentation per series, ``segmentations/<task>/<series>.dcm``, built with highdicom.

One segment per instance (``segments=instance``, the default) or per class (``segments=class``), labelled with
the category, coloured from the taxonomy and coded with the taxonomy's ``segmentedPropertyCategory`` and
``segmentedPropertyType`` when it has them (otherwise by the category's own name, in labelport's local coding
scheme ``99LABELPORT``, rather than a concept that may be wrong). ``type=binary`` (the default) keeps
overlapping instances overlapping: each segment holds all of its voxels, overlap groups included. Only frames
that hold a segment are stored. ``type=labelmap`` writes the Label Map Segmentation class (one frame per
slice, one value per voxel), for series without overlaps. ``compression`` picks a lossless transfer syntax:
``deflate`` (the default: Deflated Explicit VR Little Endian, the whole dataset zlib-compressed; sparse masks
shrink about 100x, and DCMTK, dcmqi, pydicom and highdicom read it), ``none`` (Explicit VR Little
Endian, for readers without inflate, such as dicom3tools), ``jpeg2000`` (binary or labelmap), ``jpegls`` or
``rle`` (labelmap only).

The SEG references the DICOM series of the label map, found and matched by world geometry exactly as for
``rtstruct`` (images from the export, or the ``images`` option; a single image works too). Patient and study
attributes are the images' own, byte for byte. Dates derive from the task and UIDs from the content, so the
same input gives the same file and any change new UIDs. A series whose label map holds no labelled voxel gets
no file.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import labelport

from ._common import (
    UID_ROOT,
    aligned_mask,
    class_entries,
    classes,
    content_uid,
    copy_identity,
    dicom_date_time,
    frame_of_reference,
    instance_entry,
    on_images,
    replace_masks,
    save_dicom,
)

#: a category the taxonomy gives no codes: coded in labelport's local scheme by its own name, rather than
#: claiming a concept (such as SNOMED "Tissue") that may be wrong
LOCAL_SCHEME = "99LABELPORT"
_UNCODED_CATEGORY = ("category", LOCAL_SCHEME, "Category without a coded concept")
_SYNTAX = {"none": "1.2.840.10008.1.2.1", "deflate": "1.2.840.10008.1.2.1", "jpeg2000": "1.2.840.10008.1.2.4.90",
           "jpegls": "1.2.840.10008.1.2.4.80", "rle": "1.2.840.10008.1.2.5"}


@dataclass(frozen=True)
class Options:
    #: one segment per "instance" or per "class"
    segments: Literal["instance", "class"] = "instance"
    #: "binary" (overlaps allowed, only frames with a segment) or "labelmap" (Label Map Segmentation)
    type: Literal["binary", "labelmap"] = "binary"
    #: lossless transfer syntax: deflate (the whole file, zlib), none, jpeg2000, or (labelmap only) jpegls, rle
    compression: Literal["deflate", "none", "jpeg2000", "jpegls", "rle"] = "deflate"
    #: folder with the DICOM images as <images>/<task>/<series>/ (when the export has none)
    images: str | None = None

    def __post_init__(self) -> None:
        if self.type == "binary" and self.compression in ("jpegls", "rle"):
            raise ValueError(f"compression={self.compression} needs type=labelmap "
                             "(binary allows deflate, none or jpeg2000)")


@dataclass
class _Segment:
    number: int
    label: str
    instance_ids: list[int]
    color: tuple[int, int, int]
    codes: tuple[tuple[str, str, str], tuple[str, str, str]]
    tracking: str


def _segments(task: labelport.Task, series: labelport.Series, per: str) -> list[_Segment]:
    if per == "class":
        groups = [(f"class {class_id + 1}", members) for class_id, members in classes(series).items()]
    else:
        groups = [(f"instance {s.instance_id}", [s]) for s in sorted(series.segments.values(),
                                                                      key=lambda s: s.instance_id)]
    out = []
    for number, (tracking, members) in enumerate(groups, start=1):
        first = members[0]
        category = task.taxonomy.get(first.category)
        codes = category.codes if category is not None and category.codes else (_UNCODED_CATEGORY, _local(first))
        out.append(_Segment(number, first.category[:64] or "Segment", [s.instance_id for s in members],
                            first.color, codes, tracking))
    return out


def _local(segment: labelport.Segment) -> tuple[str, str, str]:
    """A category's own code in labelport's local scheme: a value from its name, the name as the meaning."""
    import hashlib

    value = "c" + hashlib.blake2b(segment.category.encode("utf-8"), digest_size=6).hexdigest()
    return value, LOCAL_SCHEME, segment.category[:64] or "Segment"


def _pixels(views: labelport.LabelViews, segments: list[_Segment], align: labelport.Alignment,
            dicom: labelport.DicomSeries, full: bool) -> tuple[Any, range] | None:
    """The segmentation frames: a (frames, rows, columns) array of segment numbers, or, when segments overlap,
    a (frames, rows, columns, segments) boolean stack; and the image indices of the frames (only the slices
    that hold a segment, unless ``full``). None when nothing is labelled."""
    import numpy as np

    crops = [(seg.number, aligned_mask(views, seg.instance_ids, align)) for seg in segments]
    found = [(n, c) for n, c in crops if c is not None]
    if not found:
        return None
    first = 0 if full else min(c[0][2].start for _, c in found)
    stop = len(dicom.images) if full else max(c[0][2].stop for _, c in found)
    frames = (stop - first, dicom.rows, dicom.columns)
    dtype = np.uint8 if len(segments) < 256 else np.uint16
    labels = np.zeros(frames, dtype=dtype)
    for number, ((bi, bj, bk), mask) in found:
        region = labels[bk.start - first:bk.stop - first, bj, bi]
        inside = mask.transpose(2, 1, 0)
        if region[inside].any():  # segments overlap: only the stacked form can hold them
            del labels, region
            return _stacked(found, frames, len(segments), first), range(first, stop)
        region[inside] = number
    return labels, range(first, stop)


def _stacked(found: list[tuple[int, Any]], frames: tuple[int, int, int], count: int, first: int) -> Any:
    import numpy as np

    stack = np.zeros((*frames, count), dtype=bool)
    for number, ((bi, bj, bk), mask) in found:
        stack[bk.start - first:bk.stop - first, bj, bi, number - 1] |= mask.transpose(2, 1, 0)
    return stack


@functools.cache
def _overlapping(hd: Any) -> Any:
    """highdicom's Segmentation for a stack of segments that overlap (:func:`_stacked`, made only when they do).
    highdicom finds that out itself by summing the stack over its segments into a 64-bit array, 8 bytes per
    voxel of the frames, more than the stack and its frames together; here it is told. Any other array takes
    highdicom's own checks."""

    import numpy as np

    class Overlapping(hd.seg.Segmentation):  # type: ignore[misc]
        @classmethod
        def _check_and_cast_pixel_array(cls, pixel_array: Any, *args: Any, **kwargs: Any) -> Any:
            segment_numbers = args[0] if args else kwargs.get("segment_numbers")
            if isinstance(pixel_array, np.ndarray) and pixel_array.dtype == np.bool_ and pixel_array.ndim == 4 and \
                    segment_numbers is not None and pixel_array.shape[-1] == len(segment_numbers):
                return pixel_array, hd.seg.SegmentsOverlapValues.YES
            return super()._check_and_cast_pixel_array(pixel_array, *args, **kwargs)

    return Overlapping


def build(task: labelport.Task, series: labelport.Series, label_map: labelport.LabelMap,
          dicom: labelport.DicomSeries, align: labelport.Alignment, segments: list[_Segment], opts: Options,
          ctx: labelport.WriterContext) -> Any:
    """The Segmentation dataset, or None when the label map holds no labelled voxel."""
    import highdicom as hd
    import numpy as np
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    labelmap = opts.type == "labelmap"
    pixels = _pixels(labelport.views(series), segments, align, dicom, full=labelmap)
    if pixels is None:
        return None
    array, frames = pixels
    # the frames hold all that is needed: drop the label array before highdicom's own peak (another writer of
    # this task reads it again)
    label_map.release()
    if labelmap and array.ndim == 4:
        raise labelport.WriterError("segments overlap; type=labelmap cannot hold that (use type=binary)")
    seed = [task.task_id, str(task.record.get("labelsId", "")), str(task.updated_at or ""), str(series.index),
            opts.segments, opts.type, opts.compression]
    import hashlib

    date, time = dicom_date_time(task, dicom.header)
    # the UIDs of the object come from its content: frames, segments, images referenced, options, version
    content = (task.task_id, series.index, hashlib.blake2b(np.ascontiguousarray(array).data,  # no copy
                                                           digest_size=16).hexdigest(), array.shape,
               list(frames), [(g.number, g.label, g.instance_ids, g.color, g.codes, g.tracking) for g in segments],
               [im.sop_instance_uid for im in dicom.images], opts, labelport.__version__, date, time)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=seg.number, segment_label=seg.label,
        segmented_property_category=hd.sr.CodedConcept(*seg.codes[0]),
        segmented_property_type=hd.sr.CodedConcept(*seg.codes[1]),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        tracking_id=seg.tracking, tracking_uid=generate_uid(UID_ROOT, entropy_srcs=[*seed, seg.tracking]),
        display_color=hd.color.CIELabColor.from_rgb(*seg.color),
    ) for seg in segments]
    sources = [pydicom.dcmread(image.path, stop_before_pixels=True) for image in dicom.images]
    frame = frame_of_reference(dicom)
    for source in sources:  # one study and frame for the series (some real series disagree, or lack the frame)
        source.StudyInstanceUID, source.FrameOfReferenceUID = sources[0].StudyInstanceUID, frame
    # highdicom copies the patient and study from the first image: complete it as for an RT Struct (values
    # kept byte for byte, empty type 2 attributes, the de-identification method when it is missing)
    copy_identity(sources[0], dicom.header, series.name, ctx)
    step = abs(dicom.slice_step) or None  # none for a single image
    thickness = float(dicom.header.get("SliceThickness") or 0) or step or float(abs(label_map.affine[2, 2]) or 1.0)
    measures = hd.PixelMeasuresSequence(pixel_spacing=(dicom.row_spacing, dicom.column_spacing),
                                        slice_thickness=thickness, spacing_between_slices=step)
    orientation = hd.PlaneOrientationSequence(
        hd.CoordinateSystemNames.PATIENT, [float(v) for v in (*dicom.row_direction, *dicom.column_direction)])
    if not str(sources[0].get("SpecificCharacterSet", "x") or "").strip():  # empty: the default repertoire
        del sources[0].SpecificCharacterSet
    if "SliceThickness" not in sources[0] or not sources[0].SliceThickness:  # highdicom reads it (type 2)
        sources[0].SliceThickness = thickness
    positions = None
    if len(frames) != len(sources):
        positions = [hd.PlanePositionSequence(hd.CoordinateSystemNames.PATIENT,
                                              [float(v) for v in dicom.images[k].position]) for k in frames]
    arguments = dict(
        source_images=sources, pixel_array=array, segment_descriptions=descriptions,
        segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP if labelmap else hd.seg.SegmentationTypeValues.BINARY,
        series_instance_uid=content_uid(*content, "series"), series_number=1,
        sop_instance_uid=content_uid(*content, "sop"), instance_number=1,
        manufacturer="labelport", manufacturer_model_name="labelport", software_versions=labelport.__version__,
        device_serial_number="0", content_label="LABELPORT", content_description=(series.name or "labelport")[:64],
        transfer_syntax_uid=_SYNTAX[opts.compression], pixel_measures=measures, plane_orientation=orientation,
        plane_positions=positions, omit_empty_frames=not labelmap,
    )
    try:
        with warnings.catch_warnings():
            # a one-part PatientName copied from the images is theirs to fix, not a reason to warn on every task
            warnings.filterwarnings("ignore", message="The string .* is unlikely to represent", category=UserWarning)
            # an identifier copied longer than its VR is reported once, by copy_identity, not by every setter
            warnings.filterwarnings("ignore", message="The value length .* exceeds the maximum length",
                                    category=UserWarning)
            seg = (_overlapping(hd) if array.ndim == 4 else hd.seg.Segmentation)(**arguments)
    except ModuleNotFoundError as exc:  # an encoder for the chosen compression
        raise labelport.WriterError(f"compression={opts.compression}: {exc}") from None
    except (AttributeError, ValueError, TypeError) as exc:
        raise labelport.WriterError(f"highdicom could not build the Segmentation: {exc}") from None
    # dates from the task and UIDs from the content, instead of the clock and random ones: same input, same file
    for prefix in ("InstanceCreation", "Content", *(["Series"] if "SeriesDate" in seg else [])):
        setattr(seg, f"{prefix}Date", date)
        setattr(seg, f"{prefix}Time", time)
    for equipment in seg.get("ContributingEquipmentSequence", []):
        equipment.ContributionDateTime = date + time
    if opts.compression == "deflate":
        seg.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    if any(LOCAL_SCHEME in (seg.codes[0][1], seg.codes[1][1]) for seg in segments):
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        scheme = Dataset()  # a private coding scheme is declared in the object that uses it
        scheme.CodingSchemeDesignator = LOCAL_SCHEME
        scheme.CodingSchemeName = "labelport category names"
        scheme.CodingSchemeResponsibleOrganization = "labelport"
        seg.CodingSchemeIdentificationSequence = Sequence([scheme])  # type: ignore[assignment]
    organization = content_uid(*content, "dimensions")
    for item in (*seg.get("DimensionOrganizationSequence", []), *seg.get("DimensionIndexSequence", [])):
        item.DimensionOrganizationUID = organization
    return seg


def write(task: labelport.Task, ctx: labelport.WriterContext) -> dict[str, Any]:
    opts: Options = ctx.options
    entry = task.to_record()
    for series, label_map, record, dicom, align in on_images(task, entry, opts.images, "dicom-seg",
                                                             "a Segmentation"):
        segments = _segments(task, series, opts.segments)
        try:
            dataset = build(task, series, label_map, dicom, align, segments, opts, ctx)
        except labelport.LabelportError as exc:
            raise exc.located(series=series.name) from None
        if dataset is None:  # nothing labelled: no file, and the record says so
            record.pop("segmentations", None)
            continue
        path = save_dicom(ctx, series, dataset)
        numbers = {i: seg.number for seg in segments for i in seg.instance_ids}
        if opts.segments == "class":
            segment_map = class_entries(series, path)
            for class_id, members in classes(series).items():
                segment_map[str(class_id + 1)].update(segmentNumber=numbers[members[0].instance_id],
                                                      instances=[s.instance_id for s in members])
        else:
            segment_map = {str(s.instance_id): {**instance_entry(s, path), "segmentNumber": numbers[s.instance_id]}
                           for s in series.segments.values()}
        replace_masks(record, path, segment_map)
    return entry


@labelport.hookimpl
def register_writers() -> list[labelport.WriterSpec]:
    return [labelport.WriterSpec(
        name="dicom-seg",
        description="DICOM Segmentation per series (highdicom): one segment per instance or class, only the "
                    "frames that hold a segment, overlaps kept",
        write=write,
        options=Options,
        requires=("highdicom",),
        needs_images=True,
    )]
