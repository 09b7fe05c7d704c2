"""RedBrick taxonomies (v2 ``objectTypes`` and the older nested ``categories``) as a :class:`Taxonomy`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import SourceError
from ..model import Category, Code, Taxonomy, default_color, parse_color

__all__ = ["MAX_CLASS_ID", "category_name", "parse_taxonomy"]

MAX_CLASS_ID = 65534


def category_name(value: Any) -> str:
    """A segmentMap ``category``: a string (taxonomy v2) or a trail list such as ``["Object", "Liver"]`` (v1)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        trail = [v for v in value if v != "Object"] or list(value)
        return "/".join(trail)
    raise ValueError(f"category must be a string or a list of strings, not {value!r}")


def _color(value: Any, name: str) -> tuple[int, int, int]:
    try:
        return parse_color(value)
    except ValueError:
        return default_color(name)


_CS = re.compile(r"[A-Z0-9_ ]{1,16}")


def _roi_type(item: Mapping[str, Any], what: str, where: str) -> str | None:
    """An objectType's RT ROI Interpreted Type (``rtRoiInterpretedType``), checked as a DICOM code string."""
    value = item.get("rtRoiInterpretedType", item.get("RTROIInterpretedType"))
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CS.fullmatch(value):
        raise SourceError(f"{what}: rtRoiInterpretedType {value!r} is not a DICOM code string (such as GTV, CTV, "
                          "PTV, ORGAN, EXTERNAL, AVOIDANCE, MARKER: capitals, digits and _, at most 16)", file=where)
    return value


def _object_types(items: Iterable[Any], where: str) -> tuple[Category, ...]:
    cats = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping) or "category" not in item:
            raise SourceError(f"objectTypes[{n}] has no 'category'", file=where)
        try:
            name = category_name(item["category"])
        except ValueError as exc:
            raise SourceError(f"objectTypes[{n}]: {exc}", file=where) from None
        class_id = item.get("classId", n)
        if not isinstance(class_id, int) or isinstance(class_id, bool) or not 0 <= class_id <= MAX_CLASS_ID:
            raise SourceError(f"objectTypes[{n}] ({name!r}): classId {class_id!r} is not a whole number from 0 to "
                              f"{MAX_CLASS_ID} (class id + 1 must fit the 16-bit label maps)", file=where)
        what = f"objectTypes[{n}] ({name!r})"
        cats.append(Category(name, class_id, _color(item.get("color"), name), tuple(item.get("attributes") or ()),
                             _codes(item, what, where), _roi_type(item, what, where)))
    return tuple(cats)


def _codes(item: Mapping[str, Any], what: str, where: str) -> tuple[Code, Code] | None:
    """The (property category, property type) codes of an objectType, if it has both (named as here, or as in
    dcmqi's segment JSON)."""
    found = []
    for key in ("segmentedPropertyCategory", "segmentedPropertyType"):
        code = item.get(key, item.get(f"S{key[1:]}CodeSequence"))
        if code is None:
            return None
        parts = tuple(code.get(k) if isinstance(code, Mapping) else None
                      for k in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning"))
        if not all(isinstance(p, str) and p for p in parts):
            raise SourceError(f"{what}: {key} needs CodeValue, CodingSchemeDesignator and CodeMeaning", file=where)
        found.append(parts)
    return (found[0], found[1])  # type: ignore[return-value]


def _nested(categories: Iterable[Any], colors: Mapping[int, Any], trail: tuple[str, ...] = ()) -> list[Category]:
    out: list[Category] = []
    for node in categories:
        if not isinstance(node, Mapping) or not isinstance(node.get("name"), str):
            continue
        path = (*trail, node["name"])
        if isinstance(node.get("classId"), int) and 0 <= node["classId"] <= MAX_CLASS_ID:
            class_id = node["classId"]
            name = category_name(list(path))
            out.append(Category(name, class_id, _color(colors.get(class_id), name)))
        out.extend(_nested(node.get("children") or [], colors, path))
    return out


def _colors(value: Any) -> dict[int, Any]:
    """class id -> colour, from a list indexed by class id or RedBrick's ``colorMap`` (``{classid, color}``)."""
    out: dict[int, Any] = {}
    for n, item in enumerate(value or []):
        if isinstance(item, Mapping):
            if isinstance(item.get("classid"), int) and not item.get("taskcategory"):
                out[item["classid"]] = item.get("color")
        else:
            out[n] = item
    return out


def parse_taxonomy(data: Any, where: str) -> Taxonomy:
    """Parse a taxonomy JSON document; ``where`` names it in errors."""
    if isinstance(data, list):
        cats = _object_types(data, where)
        name = "taxonomy"
    elif isinstance(data, Mapping) and isinstance(data.get("objectTypes"), list):
        cats = _object_types(data["objectTypes"], where)
        name = str(data.get("name") or "taxonomy")
    elif isinstance(data, Mapping) and isinstance(data.get("categories"), list):
        cats = tuple(_nested(data["categories"], _colors(data.get("colorMap") or data.get("colors"))))
        name = str(data.get("name") or "taxonomy")
    else:
        raise SourceError("not a RedBrick taxonomy (expected 'objectTypes' or 'categories')", file=where)
    names = [c.name for c in cats]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceError(f"taxonomy lists categories more than once: {', '.join(dupes)}", file=where)
    return Taxonomy(name, cats)
