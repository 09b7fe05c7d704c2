"""The review page (``labelport report``), opened in headless Chromium with the network blocked: no console error,
every picture loads, a structure on the patient's left is drawn on the right of axial slices under the letter L
in its class's colour, for the nifti, dicom-seg and rtstruct writers; RAS and LPS storage give the same picture;
each writer's files read back to the same masks."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from cases import TAXONOMY, dicom_export, tiny_export
from PIL import Image

from labelport.review.readback import read_series

SHAPE = (40, 36, 10)  # columns (i: towards the patient's left), rows (j: towards posterior), slices (k: up)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None or not _has_playwright():
        if os.environ.get("LABELPORT_REQUIRE_TOOLS"):
            pytest.fail("Chromium and Playwright are required here (LABELPORT_REQUIRE_TOOLS=1)")
        pytest.skip("needs Chromium (Debian package chromium) and Playwright (pip install playwright)")
    return found


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def _masks() -> dict[int, np.ndarray]:
    """Tumor: an L-shaped block on the patient's left (high i), anterior (low j); Liver on the right."""
    tumor = np.zeros(SHAPE, bool)
    tumor[28:36, 6:12, 3:7] = True
    tumor[28:31, 12:18, 3:7] = True  # the foot of the L: asymmetric
    liver = np.zeros(SHAPE, bool)
    liver[4:14, 14:28, 2:8] = True
    return {1: liver, 2: tumor}


def _export(tmp_path: Path, writers: list[str], source: Path | None = None) -> Path:
    source = source or dicom_export(tmp_path / "src", _masks(), {1: "Liver", 2: "Tumor"}, taxonomy=TAXONOMY)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(source), "-o", str(out),
                          *[a for w in writers for a in ("-w", w)], "--report", "-q"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return out


def _browse(page_path: Path, check: Any) -> Any:
    """Open a page with every non-file request refused; returns check(page) and what went wrong."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                      else (problems.append(f"network: {route.request.url}"), route.abort())[1])
        page = context.new_page()
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.goto(page_path.as_uri())
        for y in range(0, page.evaluate("document.body.scrollHeight") + 900, 600):  # lazy pictures load
            page.evaluate(f"window.scrollTo(0, {y})")
            page.wait_for_timeout(50)
        page.wait_for_load_state("networkidle")
        broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                               ".map(i => i.src)")
        problems += [f"not loaded: {src}" for src in broken]
        result = check(page)
        browser.close()
    return result, problems


def _axial(page: Any, task: str, klass: str) -> dict[str, Any]:
    """The axial picture of ``klass`` in ``task``: its screenshot and where its letters are."""
    figure = page.locator(f'section[data-task="{task}"] div[data-class="{klass}"] figure[data-view="axial"]')
    figure.scroll_into_view_if_needed()
    image = figure.locator("img")
    box = image.bounding_box()
    letters = {side: (figure.locator(f".{side}").inner_text(), figure.locator(f".{side}").bounding_box())
               for side in ("left", "right", "top", "bottom")}
    shot = Image.open(io.BytesIO(image.screenshot())).convert("RGB")
    return {"box": box, "letters": letters, "pixels": np.asarray(shot, float)}


def _chroma(pixel: np.ndarray) -> np.ndarray:
    return pixel - pixel.mean()


def _has_colour(pixel: np.ndarray, hex_colour: str) -> bool:
    """A label colour drawn over grey: the pixel's colour, less its grey, points the way of the class colour."""
    colour = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], float)
    a, b = _chroma(pixel), _chroma(colour)
    return bool(np.linalg.norm(a) > 20 and a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.95)


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["nifti", "dicom-seg", "rtstruct"])
def test_left_is_left_in_a_real_browser(tmp_path: Path, writer: str) -> None:
    _chromium()
    out = _export(tmp_path, [writer])
    pages = sorted((out / "report").glob("tasks-*.html"))
    assert (out / "report" / "index.html").is_file() and len(pages) == 1
    tumor_colour = next(c["color"] for c in TAXONOMY["objectTypes"] if c["category"] == "Tumor")
    found, problems = _browse(pages[0], lambda page: _axial(page, "Case 001", "Tumor"))
    assert problems == [], problems
    box, letters, pixels = found["box"], found["letters"], found["pixels"]
    assert letters["right"][0] == "L" and letters["right"][1]["x"] > box["x"] + box["width"] / 2
    assert letters["left"][0] == "R" and letters["top"][0] == "A" and letters["bottom"][0] == "P"
    height, width = pixels.shape[:2]
    # the middle of the L's upright, i = 31.5, j = 8.5 of 40 x 36: columns run with i, rows with j (axial,
    # radiological: the patient's right on the left, anterior at the top)
    x, y = int(width * 32 / SHAPE[0]), int(height * 9 / SHAPE[1])
    assert _has_colour(pixels[y, x], tumor_colour), (writer, pixels[y, x])
    mirrored = pixels[y, width - 1 - x]
    assert not _has_colour(mirrored, tumor_colour), "nothing of the tumour on the patient's right"
    coloured = np.array([[_has_colour(p, tumor_colour) for p in row] for row in pixels[::4, ::4]])
    assert coloured[:, coloured.shape[1] // 2:].sum() > 10 * coloured[:, :coloured.shape[1] // 2].sum()
    index_ok, problems = _browse(out / "report" / "index.html",
                                 lambda page: page.locator("tr.class").count() == 2 and "svg" in page.content())
    assert index_ok and problems == [], problems


def test_ras_and_lps_storage_give_the_same_picture(tmp_path: Path) -> None:
    source = dicom_export(tmp_path / "src", _masks(), {1: "Liver", 2: "Tumor"}, taxonomy=TAXONOMY)
    shutil.copytree(source, tmp_path / "lps")
    label = tmp_path / "lps" / "segmentations" / "Case 001" / "CT.nii.gz"
    image: Any = nib.load(str(label))
    data, affine = np.asarray(image.dataobj), image.affine
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])  # i and j reversed: the first voxel is the last column and row
    flip[:2, 3] = [SHAPE[0] - 1, SHAPE[1] - 1]
    lps = nib.Nifti1Image(np.ascontiguousarray(data[::-1, ::-1]), affine @ flip)
    lps.set_qform(affine @ flip, code=1)
    lps.set_sform(affine @ flip, code=1)
    nib.save(lps, str(label))
    # voxel axes towards the patient's left, posterior, superior (as the DICOM rows and columns run), and the
    # same voxels stored towards right, anterior, superior (RAS order)
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    assert nib.aff2axcodes(nib.load(str(label)).affine) == ("R", "A", "S")
    ras_out, lps_out = _export(tmp_path / "a", ["nifti"], source), _export(tmp_path / "b", ["nifti"],
                                                                           tmp_path / "lps")
    ras_pictures = sorted((ras_out / "report" / "img").rglob("*.png"))
    lps_pictures = sorted((lps_out / "report" / "img").rglob("*.png"))
    assert [p.relative_to(ras_out) for p in ras_pictures] == [p.relative_to(lps_out) for p in lps_pictures]
    assert len(ras_pictures) == 6
    for a, b in zip(ras_pictures, lps_pictures):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), a.name


def test_every_readable_writer_reads_back_to_the_source_masks(tmp_path: Path) -> None:
    source = dicom_export(tmp_path / "src", _masks(), {1: "Liver", 2: "Tumor"}, taxonomy=TAXONOMY)
    writers = ["nifti", "semantic-nifti", "binary-mask", "overlapping", "mhd", "dicom-seg", "rtstruct",
               "images-nifti"]
    out = _export(tmp_path, writers, source)
    expected = {"Liver": _masks()[1], "Tumor": _masks()[2]}
    for writer in writers:
        series = json.loads((out / writer / "tasks.json").read_text())[0]["series"][0]
        view = read_series(str(out / writer), series)
        assert view is not None and set(view.masks) == set(expected), writer
        for name, mask in view.masks.items():
            assert np.array_equal(mask, expected[name]), (writer, name)
        assert view.image is not None and view.image.shape == SHAPE, writer
    summary = json.loads((out / "nifti" / ".labelport" / "last-export.json").read_text())
    assert summary["writer"] == "nifti" and summary["written"] == 1 and summary["failures"] == []


def test_the_run_record_follows_each_export_and_a_repeat_leaves_it_alone(tmp_path: Path) -> None:
    import labelport

    source = tiny_export(tmp_path / "src", ["a", "b"])
    out, folder = tmp_path / "out", tmp_path / "out" / ".labelport"
    files = [folder / "last-export.json", folder / "taxonomy.json"]

    def state() -> list[tuple[int, int, bytes]]:
        return [(f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes()) for f in files]

    labelport.export(source, out, "nifti", workers=1)
    assert json.loads(files[0].read_text())["written"] == 2
    labelport.export(source, out, "nifti", workers=1)
    again = state()
    assert json.loads(files[0].read_text())["written"] == 0 and json.loads(files[0].read_text())["unchanged"] == 2
    labelport.export(source, out, "nifti", workers=1)
    assert state() == again  # the same record: neither file is written
    (source / "segmentations" / "task-0001" / "CT.nii.gz").write_bytes(b"not a label map")
    labelport.export(source, out, "nifti", workers=1)
    run = json.loads(files[0].read_text())
    assert run["unchanged"] == 1 and [f["task"] for f in run["failures"]] == ["b"]
    assert not list(folder.glob("*.tmp"))


def test_readme_review_example(tmp_path: Path) -> None:
    import re

    root = Path(__file__).resolve().parents[1]
    blocks = re.findall(r"^```sh\n(.*?)^```$", (root / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)
    block = next(b for b in blocks if "labelport report" in b)
    shutil.copytree(root / "fixtures" / "demo", tmp_path / "fixtures" / "demo")
    for line in block.splitlines():
        command = line.split("#")[0].split()
        run = subprocess.run([sys.executable, "-m", "labelport.cli", *command[1:]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{line}: {run.stderr}"
    index = (tmp_path / "out" / "review" / "report" / "index.html").read_text()
    assert "Liver" in index and "Kidney" in index
    page = (tmp_path / "out" / "review" / "report" / "tasks-0-1.html").read_text()
    expected = 0  # three slices for each class with voxels, in each series of each task, counted with nibabel
    out = tmp_path / "out" / "review"
    for task in json.loads((out / "tasks.json").read_text()):
        for series in task["series"]:
            if not isinstance(series.get("segmentations"), str):
                continue
            data = np.asarray(nib.load(str(out / series["segmentations"])).dataobj)
            present = {e["category"] for key, e in series["segmentMap"].items()
                       if np.isin(data, [int(key), *e.get("overlappingGroups", [])]).any()}
            expected += 3 * len(present)
    assert expected > 0 and page.count("<figure") == expected


def test_a_report_folder_that_is_not_ours_is_left_alone(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert subprocess.run([sys.executable, "-m", "labelport.cli", "export", str(demo), "-o", str(out), "-w", "nifti",
                           "-q"], capture_output=True, timeout=300).returncode == 0
    (out / "report").mkdir()
    (out / "report" / "notes.txt").write_text("mine")
    run = subprocess.run([sys.executable, "-m", "labelport.cli", "report", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1 and "is not a labelport review page" in run.stderr
    assert (out / "report" / "notes.txt").read_text() == "mine"
    (out / "report" / "notes.txt").unlink()
    for _ in range(2):  # an empty folder, then our own page, are replaced
        run = subprocess.run([sys.executable, "-m", "labelport.cli", "report", str(out)], capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0 and (out / "report" / "index.html").is_file(), run.stderr
