"""``labelport report OUT``: ``OUT/report/index.html``, an offline page of what each writer root in OUT holds.

For every writer root: a summary (tasks, series, instances and classes, the last export's failures and options),
per class the instances and volume (mL) of each task with a small plot across tasks (robust outliers in red),
and pages of tasks: per series and class, three orthogonal slices through the class's centroid, read back from
the written files (see :mod:`.readback`), with direction letters and the slice position. Pictures are PNG files
beside the page, loaded lazily; no script, no network.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .pictures import VIEWS, orient, picture, window
from .readback import read_series
from .runinfo import hex_color, load_run

__all__ = ["ReportSummary", "write_report"]

TASKS_PER_PAGE = 50
MARKER = ".labelport-report"


@dataclass
class ReportSummary:
    """What a report holds: its index page, writer roots, tasks, pictures, and series it could not read."""

    index: str
    roots: list[str] = field(default_factory=list)
    tasks: int = 0
    pictures: int = 0
    problems: list[str] = field(default_factory=list)


def writer_roots(out: str) -> list[str]:
    """OUT itself when one writer wrote it, else each of its folders that holds a tasks.json."""
    if os.path.isfile(os.path.join(out, "tasks.json")):
        return [out]
    return sorted(os.path.join(out, d) for d in os.listdir(out)
                  if d != "report" and os.path.isfile(os.path.join(out, d, "tasks.json")))


def _colors(taxonomy: Any, names: list[str]) -> dict[str, tuple[int, int, int]]:
    from ..model import Taxonomy

    derived = Taxonomy.derive(names)
    out = {}
    for name in names:
        category = (taxonomy.get(name) if taxonomy is not None else None) or derived.get(name)
        out[name] = tuple(int(v) for v in category.color) if category is not None else (255, 255, 0)
    return out  # type: ignore[return-value]


def _order(taxonomy: Any, names: set[str]) -> list[str]:
    known = [c.name for c in taxonomy.categories if c.name in names] if taxonomy is not None else []
    return known + sorted(names - set(known))


def _plot(values: list[tuple[str, float]], width: int = 320, height: int = 60) -> str:
    """An inline SVG bar per task; bars more than 3.5 robust deviations from the median are red."""
    if not values:
        return ""
    numbers = np.array([v for _, v in values], float)
    median = float(np.median(numbers))
    spread = float(np.median(np.abs(numbers - median))) * 1.4826 or 1e-9
    top = float(numbers.max()) or 1.0
    bar = width / len(values)
    bars = []
    for n, (name, value) in enumerate(values):
        h = max(1.0, value / top * (height - 2))
        outlier = abs(value - median) / spread > 3.5 and len(values) >= 5
        bars.append(f'<rect x="{n * bar:.2f}" y="{height - h:.2f}" width="{max(bar - 1, 0.5):.2f}" height="{h:.2f}" '
                    f'fill="{"#d62728" if outlier else "#4c78a8"}"><title>{_escape(name)}: {value:.2f} mL'
                    f'{" (outlier)" if outlier else ""}</title></rect>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="volume per task">{"".join(bars)}</svg>')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _series_pictures(view: Any, names: list[str], colors: dict[str, tuple[int, int, int]], folder: Path,
                     stem: str, rel: str, size: int) -> list[dict[str, Any]]:
    oriented = orient(view.image, view.masks, view.affine)
    grey = window(oriented.image, view.modality)
    rows = []
    for n, name in enumerate(names):
        mask = oriented.masks.get(name)
        if mask is None or not mask.any():
            continue
        point = [round(float(c)) for c in np.argwhere(mask).mean(axis=0)]
        if not mask[tuple(point)]:  # a ring's centre is empty: the nearest voxel of the class instead
            voxels = np.argwhere(mask)
            point = [int(v) for v in voxels[np.argmin(((voxels - point) ** 2).sum(axis=1))]]
        views = []
        for view_name, (_, letters) in VIEWS.items():
            image = picture(oriented, view_name, point, colors, grey, size)
            path = folder / f"{stem}-{n}-{view_name}.png"
            image.save(path, format="PNG", compress_level=1)
            views.append({"name": view_name, "src": f"{rel}/{path.name}", "width": image.width,
                          "height": image.height, "letters": letters,
                          "position": oriented.position(view_name, point[VIEWS[view_name][0]])})
        rows.append({"name": name, "color": hex_color(colors[name]), "point": point,
                     "views": views})
    return rows


def _render_task(job: tuple[Any, ...]) -> tuple[dict[str, Any], dict[str, float], dict[str, int], list[str]]:
    """One task of a writer root: its series read back and pictured; (page data, mL and instances per class,
    problems)."""
    root, r, t, entry, order, colors, report_dir, size = job
    task_name = str(entry.get("name") or entry.get("taskId") or f"#{t + 1}")
    task: dict[str, Any] = {"name": task_name, "series": []}
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    problems = []
    for s, series in enumerate(entry.get("series") or []):
        row: dict[str, Any] = {"name": str(series.get("name") or f"series {s + 1}"), "classes": [], "note": "",
                               "files": []}
        try:
            view = read_series(root, series)
        except Exception as exc:  # a file that does not read back: shown, not fatal
            view = None
            row["note"] = f"cannot read back: {type(exc).__name__}: {exc}"
            problems.append(f"{os.path.basename(root)}: task {task_name!r}, series {row['name']!r}: {row['note']}")
        if view is None and not row["note"]:
            row["note"] = "no picture for this layout"
        if view is not None:
            row["files"], row["note"] = view.files, view.note
            folder = Path(report_dir) / "img" / str(r) / str(t)
            folder.mkdir(parents=True, exist_ok=True)
            row["classes"] = _series_pictures(view, order, colors, folder, str(s), f"img/{r}/{t}", size)
            for name, mask in view.masks.items():
                totals[name] = totals.get(name, 0.0) + float(mask.sum()) * view.voxel_ml
                counts[name] = counts.get(name, 0) + view.instances.get(name, 0)
        task["series"].append(row)
    return task, totals, counts, problems


def write_report(out: str | os.PathLike[str], size: int = 256, workers: int = 1) -> ReportSummary:
    """Write ``OUT/report/`` (index.html, task pages, pictures) for every writer root in ``out``; ``workers``
    processes read and picture the tasks."""
    import jinja2

    out = os.fspath(out)
    report_dir = Path(out) / "report"
    if report_dir.exists():  # ours (it has the marker) is replaced; anything else there is not touched
        if not (report_dir / MARKER).is_file() and (not report_dir.is_dir() or any(report_dir.iterdir())):
            from ..errors import LabelportError

            raise LabelportError(f"{report_dir} exists and is not a labelport review page: move it away first")
        shutil.rmtree(report_dir)
    (report_dir / "img").mkdir(parents=True)
    (report_dir / MARKER).write_text("written by labelport report; the folder is replaced by the next one\n")
    env = jinja2.Environment(loader=jinja2.PackageLoader("labelport.review", "."), autoescape=True)
    summary = ReportSummary(index=str(report_dir / "index.html"))
    roots_context = []
    for r, root in enumerate(writer_roots(out)):
        run, taxonomy = load_run(root)
        try:
            with open(os.path.join(root, "tasks.json"), encoding="utf-8") as f:
                loaded = json.load(f)
        except (OSError, ValueError) as exc:
            loaded = []
            summary.problems.append(f"{os.path.join(root, 'tasks.json')}: cannot read ({exc})")
        entries = [e for e in loaded if isinstance(e, dict)] if isinstance(loaded, list) else []
        for entry in entries:
            entry["series"] = [s for s in entry.get("series") or [] if isinstance(s, dict)] \
                if isinstance(entry.get("series"), list) else []
        names = {e["category"] for t in entries for s in t["series"] for e in (s.get("segmentMap") or {}).values()
                 if isinstance(e, dict) and isinstance(e.get("category"), str)}
        order = _order(taxonomy, names)
        colors = _colors(taxonomy, order)
        jobs = [(root, r, t, entry, order, colors, str(report_dir), size) for t, entry in enumerate(entries)]
        if workers > 1 and len(jobs) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
                done = list(pool.map(_render_task, jobs, chunksize=4))
        else:
            done = [_render_task(job) for job in jobs]
        tasks: list[dict[str, Any]] = []
        volumes: dict[str, list[tuple[str, float]]] = {n: [] for n in order}
        instances = dict.fromkeys(order, 0)
        series_count = 0
        for task, totals, counts, problems in done:
            tasks.append(task)
            series_count += len(task["series"])
            summary.pictures += sum(3 * len(row["classes"]) for row in task["series"])
            summary.problems += problems
            for name in order:
                volumes[name].append((task["name"], totals.get(name, 0.0)))
                instances[name] += counts.get(name, 0)
        summary.tasks += len(tasks)
        summary.roots.append(root)
        pages = [tasks[i:i + TASKS_PER_PAGE] for i in range(0, len(tasks), TASKS_PER_PAGE)] or [[]]
        page_names = [f"tasks-{r}-{p + 1}.html" for p in range(len(pages))]
        context = {"name": os.path.basename(os.path.normpath(root)) or root, "path": root, "run": run,
                   "tasks": len(tasks), "series": series_count, "pages": page_names,
                   "classes": [{"name": n, "color": hex_color(colors[n]),
                                "instances": instances.get(n, 0), "volumes": volumes[n],
                                "plot": _plot(volumes[n])} for n in order]}
        roots_context.append(context)
        for p, (page, page_name) in enumerate(zip(pages, page_names)):
            html = env.get_template("tasks.html.j2").render(root=context, tasks=page, page=p + 1, pages=page_names)
            (report_dir / page_name).write_text(html, encoding="utf-8")
    html = env.get_template("index.html.j2").render(roots=roots_context, out=out, problems=summary.problems)
    Path(summary.index).write_text(html, encoding="utf-8")
    return summary
