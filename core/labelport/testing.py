"""The writer contract, for labelport's own writers and for plugin authors::

    from labelport.testing import check_writer

    def test_contract(tmp_path):
        check_writer("my-writer", tmp_path)

:func:`check_writer` exports a small project built to be awkward (overlapping instances, an oblique grid,
a series without a label map, an empty label map, hostile task and series names, an unknown record field)
twice, and checks that the writer:

* writes only under its root, through labelport (no temporary file is left behind);
* references every file it wrote from its tasks.json entry (or writes it in its project step), every
  referenced file exists, and no file is written for two tasks;
* is deterministic (same bytes twice) unless its spec says otherwise;
* keeps every field of the task record, every vector annotation and every series' segmentMap;
* keeps the geometry: any NIfTI it writes for a series has that series' affine and grid;
* stays equal to a clean export when exported again into the same folder: an unchanged re-run writes
  nothing and changes no file, a filtered run leaves the output as a full one, and after a task leaves the
  source the output equals a clean export of what is left (its ``project`` step's files included).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .pipeline import export
from .plugins import Registry

__all__ = ["check_writer", "make_contract_project", "output_files", "project_files", "referenced_paths",
           "write_dicom_series"]

HOSTILE_TASK = "../../escape\x00me"
HOSTILE_SERIES = "CON"


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def write_dicom_series(folder: Path, shape: tuple[int, int, int], ras_affine: np.ndarray, name: str) -> list[str]:
    """A minimal CT series on the grid of a label map (zero pixels), one file per slice; returns the paths
    relative to ``folder.parent.parent.parent`` as tasks.json ``items`` would list them."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras_affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = (generate_uid(entropy_srcs=[name, part]) for part in ("study", "series", "frame"))
    items = []
    for k in range(shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[name, str(k)])
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = pydicom.uid.CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientName, ds.PatientID, ds.StudyDate, ds.StudyTime = "CT", "Contract^Test", name, "", ""
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in (lps @ [0, 0, k, 1])[:3]]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.Rows, ds.Columns, ds.InstanceNumber = shape[1], shape[0], k + 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.zeros((shape[1], shape[0]), "<i2").tobytes()
        path = folder / f"{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        items.append(path.relative_to(folder.parent.parent.parent).as_posix())
    return items


def make_contract_project(root: str | os.PathLike[str]) -> Path:
    """Write the contract's source project (an export folder, with a DICOM series for every label map) into
    ``root`` and return its path."""
    root = Path(root)
    grid = np.zeros((20, 16, 6), np.uint16)
    grid[3:11, 4:12, 1:5] = 1
    grid[8:16, 4:12, 1:5] = 2
    grid[8:11, 4:12, 1:5] = 3  # instances 1 and 2 overlap: group 3
    grid[2:4, 13:15, 2] = 4  # a tiny instance
    c, s = np.cos(np.radians(15)), np.sin(np.radians(15))
    oblique = np.array([[0.9 * c, -1.1 * s, 0, -8.0], [0.9 * s, 1.1 * c, 0, 5.0], [0, 0, 2.5, -7.5], [0, 0, 0, 1]])
    _save(root / "segmentations" / "a" / "grid.nii.gz", grid, oblique)
    _save(root / "segmentations" / "a" / "empty.nii.gz", np.zeros((8, 8, 3), np.uint8), np.diag([-1.0, -1.0, 2, 1]))
    hostile = np.zeros((9, 7, 2), np.uint8)
    hostile[2:6, 1:5, :] = 1
    _save(root / "segmentations" / "b" / "con.nii.gz", hostile, np.diag([0.5, 0.5, 1.0, 1.0]))
    tasks: list[dict[str, Any]] = [
        {"taskId": "contract-a", "name": "Contract A", "currentStageName": "END", "status": "COMPLETED",
         "x-unknown-field": {"kept": True},
         "classification": {"attributes": {"Quality": "Good"}},
         "series": [
             {"name": "Grid", "segmentations": "segmentations/a/grid.nii.gz",
              "segmentMap": {
                  "1": {"id": "l1", "category": "Liver", "overlappingGroups": [3]},
                  "2": {"id": "l2", "category": "Tumor", "attributes": {"Grade": "High"}, "overlappingGroups": [3]},
                  "4": {"id": "l4", "category": "Tumor", "attributes": {"Grade": "Low"}}},
              "measurements": [{"type": "length", "point1": {"i": 1, "j": 2, "k": 3},
                                "point2": {"i": 4, "j": 5, "k": 3}, "length": 3.1}],
              "landmarks3d": [{"point": {"i": 5, "j": 5, "k": 2}, "id": "p", "category": "Point"}]},
             {"name": "No labels", "classifications": [{"attributes": {"Usable": "yes"}}]},
             {"name": "Empty", "segmentations": "segmentations/a/empty.nii.gz", "segmentMap": {}},
         ]},
        {"taskId": "contract-b", "name": HOSTILE_TASK, "currentStageName": "END",
         "series": [{"name": HOSTILE_SERIES, "segmentations": "./segmentations/b/con.nii.gz",
                     "segmentMap": {"1": {"id": "h1", "category": "Liver"}}}]},
    ]
    grids: dict[str, tuple[tuple[int, int, int], np.ndarray]] = {
        "Grid": (grid.shape, oblique), "Empty": ((8, 8, 3), np.diag([-1.0, -1.0, 2, 1])),
        HOSTILE_SERIES: (hostile.shape, np.diag([0.5, 0.5, 1.0, 1.0]))}
    for task in tasks:
        for series in task["series"]:
            if series["name"] in grids:
                shape, affine = grids[series["name"]]
                series["items"] = write_dicom_series(root / "images" / task["taskId"] / series["name"], shape,
                                                     affine, f"{task['taskId']}/{series['name']}")
    (root / "tasks.json").write_text(json.dumps(tasks, indent=2), encoding="utf-8")
    return root


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def referenced_paths(entry: Mapping[str, Any], root: str | os.PathLike[str]) -> set[str]:
    """Every string in a tasks.json entry that names a file under ``root``."""
    return {s for s in _strings(entry) if s and (Path(root) / s).is_file()}


def output_files(root: str | os.PathLike[str]) -> list[str]:
    """Every file a writer wrote under ``root`` (tasks.json and labelport's own ``.labelport/`` left out)."""
    root = Path(root)
    return sorted(rel for p in root.rglob("*") if p.is_file()
                  and (rel := p.relative_to(root).as_posix()) != "tasks.json" and not rel.startswith(".labelport/"))


def project_files(root: str | os.PathLike[str]) -> list[str]:
    """The files the project steps of a writer root wrote in its last export (tasks.json included)."""
    from .manifest import Manifest

    manifest = Manifest(os.fspath(root), readonly=True)
    try:
        return list(manifest.project.get("files") or [])
    finally:
        manifest.close()


def _tree(root: Path) -> dict[str, str]:
    return {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in output_files(root)}


def _fail(name: str, message: str) -> None:
    raise AssertionError(f"writer {name!r} breaks the contract: {message}")


def check_writer(
    name: str, tmp_path: str | os.PathLike[str], *, options: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> None:
    """Run the writer contract (see the module docstring); raises AssertionError on the first breach."""
    tmp = Path(tmp_path)
    source = make_contract_project(tmp / "source")
    registry = registry or Registry()
    spec = registry.writer(name).spec
    before = _tree(tmp)
    outs = [tmp / "out1", tmp / "out2"]
    for out in outs:
        report = export(source, out, [name], options={name: dict(options or {})}, registry=registry)
        if not report.ok:
            _fail(name, "export failed: " + "; ".join(map(str, report.failures)))
    after = _tree(tmp)
    outside = sorted(p for p in set(after) - set(before) if not p.startswith(("out1/", "out2/")))
    changed = sorted(p for p in before if after.get(p) != before[p])
    if outside or changed:
        _fail(name, f"wrote outside its root: {outside or changed}")
    records = {r["taskId"]: r for r in json.loads((source / "tasks.json").read_text(encoding="utf-8"))}
    trees = [_tree(out) for out in outs]
    for out, tree in zip(outs, trees):
        scratch = out / ".labelport" / "tmp"
        leftovers = sorted(str(p.relative_to(out)) for p in scratch.rglob("*")) if scratch.is_dir() else []
        if leftovers:
            _fail(name, f"left temporary files: {leftovers}")
        entries = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
        if sorted(e.get("taskId") for e in entries) != sorted(records):
            _fail(name, "tasks.json does not hold exactly the exported tasks")
        referenced: set[str] = set()
        for entry in entries:
            own = referenced_paths(entry, out) - set(project_files(out))
            shared = sorted(own & referenced)
            if shared:
                _fail(name, f"files written for more than one task: {shared}")
            referenced |= own
            _check_entry(name, entry, records[entry["taskId"]], out, source)
        unreferenced = sorted(set(tree) - referenced - set(project_files(out)))
        if unreferenced:
            _fail(name, f"files not referenced from tasks.json nor written by its project step: {unreferenced}")
    _same(name, spec.deterministic, trees[0], trees[1], "output differs between two runs")
    _incremental(name, spec.deterministic, source, tmp, options, registry)


def _same(name: str, exact: bool, got: dict[str, str], want: dict[str, str], what: str) -> None:
    """The two trees hold the same files (with the same bytes when ``exact``)."""
    differ = sorted(p for p in set(got) | set(want) if (got.get(p) != want.get(p) if exact else
                                                          (p in got) != (p in want)))
    if differ:
        _fail(name, f"{what}: {differ}")


def _incremental(name: str, exact: bool, source: Path, tmp: Path, options: Mapping[str, Any] | None,
                 registry: Registry) -> None:
    """Exporting again into the same folder always gives what a clean export gives."""
    out = tmp / "out1"

    def run(src: Path, into: Path, **kwargs: Any) -> Any:
        report = export(src, into, [name], options={name: dict(options or {})}, registry=registry, **kwargs)
        if not report.ok:
            _fail(name, "export failed: " + "; ".join(map(str, report.failures)))
        return report

    full = _tree(out)
    report = run(source, out)
    if report.written[name] or _tree(out) != full:
        _fail(name, "an unchanged re-run wrote again or changed files")
    run(source, out, task_ids=["contract-b"], force=True)
    _same(name, exact, _tree(out), full, "a filtered run changed the output of the whole project")
    tasks_json = source / "tasks.json"
    original = tasks_json.read_text(encoding="utf-8")
    try:
        tasks_json.write_text(json.dumps([t for t in json.loads(original) if t["taskId"] != "contract-b"]),
                              encoding="utf-8")
        run(source, out)
        run(source, tmp / "out3")
        _same(name, exact, _tree(out), _tree(tmp / "out3"), "after a task left the source, the output differs "
                                                           "from a clean export")
    finally:
        tasks_json.write_text(original, encoding="utf-8")


def _check_entry(name: str, entry: Mapping[str, Any], record: Mapping[str, Any], out: Path, source: Path) -> None:
    missing = sorted(set(record) - set(entry))
    if missing:
        _fail(name, f"task {record['taskId']}: fields dropped from tasks.json: {missing}")
    if entry.get("x-unknown-field") != record.get("x-unknown-field"):
        _fail(name, "an unknown task field was changed")
    series_out = entry.get("series") or []
    if len(series_out) != len(record["series"]):
        _fail(name, f"task {record['taskId']}: series count changed")
    for src, dst in zip(record["series"], series_out):
        for key in ("measurements", "landmarks3d", "classifications"):
            if src.get(key) != dst.get(key):
                _fail(name, f"series {src['name']!r}: {key} changed")
        if "segmentMap" in src and not isinstance(dst.get("segmentMap"), dict):
            _fail(name, f"series {src['name']!r}: segmentMap dropped")
        if "segmentations" not in src:
            if dst.get("segmentations"):
                _fail(name, f"series {src['name']!r} has no label map but got segmentations")
            continue
        original: Any = nib.load(str(source / src["segmentations"]))
        affine, shape = original.affine, original.shape[:3]
        for path in referenced_paths(dst, out):
            if path.endswith((".nii", ".nii.gz")):
                img: Any = nib.load(str(out / path))
                if not np.allclose(img.affine, affine, atol=1e-4):
                    _fail(name, f"{path}: affine {img.affine.tolist()} differs from the source {affine.tolist()}")
                if tuple(img.shape[:3]) != tuple(shape):
                    _fail(name, f"{path}: grid {img.shape[:3]} differs from the source {shape}")
