"""RedBrick's raw label objects and the taxonomy that names them.

The labels of a task version arrive either inline (``labelsData``: categories and attribute names and values)
or, RedBrick's usual storage, as a file behind ``labelsDataPath`` that holds ids only: ``classid`` for the
category and ``attrid`` with ``optionid`` (SELECT, MULTISELECT) or ``value`` (other types) for attributes.
:class:`Vocabulary` holds the taxonomy's definitions; :meth:`Vocabulary.resolve` names id-only labels and
:meth:`Vocabulary.values` turns an attribute list into ``{name: value}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Vocabulary", "scope_of"]

Raw = Mapping[str, Any]

#: where a raw label's attributes are defined in the taxonomy, by the key that marks its kind
_CLASSIFY_SCOPES = (("studyclassify", "studyClassify"), ("tasklevelclassify", "studyClassify"),
                    ("seriesclassify", "seriesClassify"), ("multiclassify", "seriesClassify"),
                    ("instanceclassify", "instanceClassify"))


def scope_of(label: Raw) -> str:
    """The taxonomy list that defines a label's attributes: ``objectTypes`` or one of the classify lists."""
    return next((scope for key, scope in _CLASSIFY_SCOPES if label.get(key)), "objectTypes")


def _by_id(definitions: Any) -> dict[Any, Mapping[str, Any]]:
    return {d.get("attrId"): d for d in definitions or [] if isinstance(d, Mapping) and d.get("attrId") is not None}


def _by_name(definitions: Any) -> dict[Any, Mapping[str, Any]]:
    return {d.get("name"): d for d in definitions or [] if isinstance(d, Mapping)}


class Vocabulary:
    """A project taxonomy as RedBrick's API sends it (``objectTypes`` with ``classId`` and attribute
    definitions, ``studyClassify``/``seriesClassify``/``instanceClassify``), for naming raw labels."""

    def __init__(self, taxonomy: Mapping[str, Any] | None) -> None:
        taxonomy = taxonomy or {}
        self.is_new = bool(taxonomy.get("isNew") or taxonomy.get("objectTypes"))
        objects = [o for o in taxonomy.get("objectTypes") or [] if isinstance(o, Mapping)]
        self.objects = {o.get("classId"): o for o in objects}
        self.categories = {o.get("category"): o for o in objects}
        self.scopes = {scope: taxonomy.get(scope) or [] for scope in ("studyClassify", "seriesClassify",
                                                                      "instanceClassify")}

    def definitions(self, label: Raw) -> Sequence[Any]:
        scope = scope_of(label)
        if scope == "objectTypes":
            owner = self.objects.get(label.get("classid")) if "classid" in label else \
                self.categories.get(label.get("category")) if isinstance(label.get("category"), str) else None
            return (owner or {}).get("attributes") or []
        return self.scopes[scope]

    def resolve(self, labels: Sequence[Any]) -> list[Any]:
        """Id-only labels (from a ``labelsDataPath`` file) with their category and attribute names and values
        filled in from the taxonomy; labels and attributes it does not define stay as they are."""
        if not self.is_new:
            return list(labels)
        out = []
        for label in labels:
            if not isinstance(label, Mapping):
                out.append(label)
                continue
            label = dict(label)
            if scope_of(label) == "objectTypes" and label.get("classid") in self.objects:
                label["category"] = self.objects[label["classid"]].get("category")
            defined = _by_id(self.definitions(label))
            attrs = []
            for item in label.get("attributes") or []:
                definition = defined.get(item.get("attrid")) if isinstance(item, Mapping) else None
                attrs.append(_named(item, definition) if definition is not None else item)
            if "attributes" in label:
                label["attributes"] = attrs
            out.append(label)
        return out

    def values(self, label: Raw, items: Any) -> dict[str, Any]:
        """``[{name, value}]`` as ``{name: value}``. The strings "true" and "false" (any case) become booleans
        unless the taxonomy types the attribute otherwise (a TEXT attribute keeps the text "true")."""
        named = _by_name(self.definitions(label))
        out: dict[str, Any] = {}
        for item in items or []:
            if not isinstance(item, Mapping) or "name" not in item:
                continue
            value = item.get("value")
            kind = (named.get(item["name"]) or {}).get("attrType")
            if isinstance(value, str) and value.lower() in ("true", "false") and kind in (None, "BOOL"):
                value = value.lower() == "true"
            out[str(item["name"])] = value
        return out


def _named(item: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any]:
    """One id-only attribute with its name and value from its definition."""
    options = {o.get("optionId"): o.get("name") for o in definition.get("options") or [] if isinstance(o, Mapping)}
    out = {**item, "name": definition.get("name")}
    kind = definition.get("attrType")
    if kind == "SELECT":
        out["value"] = options.get(item.get("optionid")) if isinstance(item.get("optionid"), int) else None
    elif kind == "MULTISELECT":
        chosen: list[Any] = item["optionid"] if isinstance(item.get("optionid"), list) else []
        names = [options.get(i) for i in chosen]
        if None not in names:
            out["value"] = names
    return out
