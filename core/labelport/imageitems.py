"""Where the ``items`` of a written tasks.json point, so that they resolve from the writer's folder.

A source record's ``items`` name its image files relative to the source (``images/...``), which means nothing
in the output folder. After a writer has made a task's entry, each series whose ``items`` the writer left as
they were gets one of:

- ``reference`` (the default): the path of each image file of a local export relative to the writer's folder
  (``../src/images/...``). Nothing is copied; the output stays valid while the source stays where it is.
  Re-exporting the output reads those paths only with ``--allow-outside-paths``, as they lead outside it.
- ``copy``: each image copied to ``images/<task>/<series>/<file name>`` in the writer's folder, which then
  holds everything a re-export needs.
- ``link``: the same files as hard links (no extra space; a copy where the file system cannot link, for
  example across devices).

Items whose file is not on disk (a RedBrick API project in ``reference`` mode, whose items are storage paths;
images missing from an export) are kept as they are. Copied and linked files are the task's files like any
other: recorded, replaced atomically, removed when the task leaves the project.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from .context import WriterContext
from .model import Task
from .paths import safe_name

__all__ = ["IMAGES_MODES", "ImagesMode", "place_images"]

ImagesMode = Literal["reference", "copy", "link"]
IMAGES_MODES: tuple[str, ...] = ("reference", "copy", "link")


def place_images(task: Task, entry: Mapping[str, Any], ctx: WriterContext, mode: ImagesMode,
                 local: bool) -> None:
    """Rewrite the ``items`` of ``entry`` (a writer's tasks.json entry for ``task``) for ``mode``, copying or
    linking the images through ``ctx``. ``local``: the source's image files are the user's own (a local
    export), so that ``reference`` may point at them; otherwise they are a download cache and stay
    unreferenced."""
    records = entry.get("series")
    if not isinstance(records, list) or (mode == "reference" and not local):
        return
    root = os.path.abspath(ctx.root)
    relative: dict[str, str] = {}  # a folder of image files -> its path from the root, worked out once

    def reference(file: str) -> str:
        where, _, name = os.path.abspath(file).rpartition(os.sep)
        if where not in relative:
            relative[where] = os.path.relpath(where or os.sep, root).replace(os.sep, "/") + "/"
        return (relative[where] + name).removeprefix("./")
    for series, record in zip(task.series, records):
        original = series.record.get("items")
        if not isinstance(record, dict) or not original or record.get("items") != original:
            continue  # no images, or the writer named its own (images-nifti)
        folder = ctx.series_dir(series, top="images")
        names: set[str] = set()
        placed, missing = [], 0
        for item in series.items:
            file = series.item_files.get(item) if isinstance(item, str) else None
            if file is None:
                placed.append(item)
                missing += 1
            elif mode == "reference":
                placed.append(reference(file))
            else:
                relpath = f"{folder}/{_unique(_file_name(item, file), names)}"
                with ctx.create(relpath) as tmp:
                    _link_or_copy(file, tmp, mode)
                placed.append(relpath)
        record["items"] = placed[0] if isinstance(original, str) and len(placed) == 1 else placed
        if missing and mode != "reference":
            ctx.warn(f"series {series.name or series.index + 1!r}: {missing} of {len(placed)} images not found in "
                     f"the source; their items are kept as they are")


def _file_name(item: str, file: str) -> str:
    """The name a copy gets: the item's last path component (without a URL's query), made safe; so a project
    read from the API and its export folder give the same names."""
    last = item.split("?", 1)[0].split("#", 1)[0].replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return safe_name(last, safe_name(os.path.basename(file), "image"))


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3`` ... (before the extension) when the series already has it."""
    stem, dot, ext = name.partition(".")
    candidate, n = name, 1
    while candidate.lower() in taken:  # case-insensitive file systems would merge them
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    taken.add(candidate.lower())
    return candidate


def _link_or_copy(file: str, target: str, mode: ImagesMode) -> None:
    if mode == "link":
        try:
            os.link(file, target)
            return
        except OSError:  # another device, or a file system without hard links
            pass
    import shutil

    shutil.copyfile(file, target)
