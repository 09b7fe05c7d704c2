"""The writer spec a plugin returns, and the typed options each writer declares."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import OptionError, PluginError, did_you_mean

if TYPE_CHECKING:
    from .context import ProjectContext, WriterContext
    from .model import Task
    from .project import TaskEntries

__all__ = ["NoOptions", "ProjectFunction", "WriteFunction", "WriterSpec"]

#: ``write(task, ctx)`` writes the task's files through ``ctx`` and returns its tasks.json entry.
WriteFunction = Callable[["Task", "WriterContext"], dict[str, Any]]
#: ``project(entries, ctx)`` writes a writer's project-level files (``dataset.json``, ...) from the tasks.json
#: entries of every task of its root, once per export (see :mod:`labelport.project`).
ProjectFunction = Callable[["TaskEntries", "ProjectContext"], None]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class NoOptions:
    """The options of a writer that has none."""


def _convert(value: Any, kind: Any, where: str) -> Any:
    """Convert a CLI string (or check a Python value) against a field type."""
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        for choice in choices:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise OptionError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
            return None
        return _convert(value, args[0], where) if len(args) == 1 else value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise OptionError(f"{where}: expected true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise OptionError(f"{where}: expected {kind.__name__}, got {value!r}")
        try:
            converted = kind(value)
        except (TypeError, ValueError):
            raise OptionError(f"{where}: expected {kind.__name__}, got {value!r}") from None
        if kind is int and isinstance(value, float) and value != converted:
            raise OptionError(f"{where}: expected int, got {value!r}")
        return converted
    if kind is str:
        if not isinstance(value, str):
            raise OptionError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _takes_two(function: Callable[..., Any]) -> bool:
    """Whether ``function(a, b)`` is a valid call (functions whose signature cannot be read pass)."""
    import inspect

    try:
        inspect.signature(function).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # a builtin without a signature
        return True
    return True


def _convertible(kind: Any) -> bool:
    """Whether :func:`_convert` can turn a command-line string into ``kind``."""
    if kind in (bool, int, float, str):
        return True
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        return all(isinstance(v, (str, int, float, bool)) for v in typing.get_args(kind))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return len(args) == 1 and _convertible(args[0])
    return False


def _class_body(cls: type) -> list[str]:
    """The source lines of a class's body, found by name in its module's file (``inspect.getsource`` parses the
    whole module for that, which made listing the writers four times slower)."""
    import linecache

    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if not path:
        return []
    lines = linecache.getlines(path)
    start = re.compile(rf"(\s*)class\s+{re.escape(cls.__name__)}\b")
    for n, line in enumerate(lines):
        found = start.match(line)
        if found:
            indent, body = len(found.group(1)), []
            for text in lines[n + 1:]:
                if text.strip() and len(text) - len(text.lstrip()) <= indent:
                    break
                body.append(text)
            return body
    return []


@functools.cache
def _option_types(options: type) -> dict[str, Any]:
    """Each field of an options dataclass with its type (its annotations resolved once per class)."""
    hints = typing.get_type_hints(options)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(options)}


@dataclass(frozen=True)
class WriterSpec:
    """A writer, as a plugin registers it (validated on creation).

    ``options`` is a dataclass whose fields all have defaults; its field types (bool, int, float, str,
    ``Literal[...]``, ``X | None``) tell how ``--opt writer.key=value`` strings are converted. ``requires``
    names optional modules the writer imports; a missing one is reported by ``labelport writers``.
    ``deterministic`` is false for writers whose output legitimately differs between runs (new DICOM UIDs).
    ``needs_images`` asks sources to provide image files. ``project``, when given, runs once per export after
    the tasks, with every task's entry (see :mod:`labelport.project`).
    """

    name: str
    description: str
    write: WriteFunction
    options: type = NoOptions
    requires: tuple[str, ...] = ()
    deterministic: bool = True
    needs_images: bool = False
    project: ProjectFunction | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PluginError(f"writer name {self.name!r} must be lower-case letters, digits, '.', '_' or '-'")
        if not isinstance(self.description, str) or not self.description.strip() or "\n" in self.description:
            raise PluginError(f"writer {self.name!r}: description must be one non-empty line")
        if not callable(self.write):
            raise PluginError(f"writer {self.name!r}: write must be callable")
        if self.project is not None and not callable(self.project):
            raise PluginError(f"writer {self.name!r}: project must be callable or None")
        for what, function, arguments in (("write", self.write, "(task, ctx)"),
                                          ("project", self.project, "(entries, ctx)")):
            if function is not None and not _takes_two(function):
                raise PluginError(f"writer {self.name!r}: {what} must take {arguments}")
        if not (isinstance(self.options, type) and dataclasses.is_dataclass(self.options)):
            raise PluginError(f"writer {self.name!r}: options must be a dataclass type")
        no_default = [f.name for f in dataclasses.fields(self.options)
                      if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if no_default:
            raise PluginError(f"writer {self.name!r}: option(s) {', '.join(no_default)} need a default")
        if isinstance(self.requires, str) or not all(isinstance(r, str) for r in self.requires):
            raise PluginError(f"writer {self.name!r}: requires must be a tuple of module names")
        try:
            kinds = self.option_types()
        except Exception as exc:  # an annotation that does not resolve
            raise PluginError(f"writer {self.name!r}: option types cannot be read ({exc})") from None
        odd = [name for name, kind in kinds.items() if not _convertible(kind)]
        if odd:
            raise PluginError(f"writer {self.name!r}: option(s) {', '.join(odd)} need a type the command line can "
                              "convert (bool, int, float, str, Literal[...], or one of them | None)")

    def option_types(self) -> dict[str, Any]:
        return dict(_option_types(self.options))

    def parse_options(self, values: Mapping[str, Any] | None = None) -> Any:
        """An options instance from ``values`` (strings from the CLI or Python values), checked by type."""
        values = dict(values or {})
        types_ = self.option_types()
        unknown = sorted(set(values) - set(types_))
        if unknown:
            valid = ", ".join(sorted(types_)) or "none"
            raise OptionError(f"writer {self.name!r} has no option {', '.join(map(repr, unknown))}"
                              f"{did_you_mean(unknown[0], types_)} (its options: {valid})")
        converted = {k: _convert(v, types_[k], f"option {self.name}.{k}") for k, v in values.items()}
        try:
            return self.options(**converted)
        except (TypeError, ValueError) as exc:
            raise OptionError(f"writer {self.name!r}: {exc}") from None

    def option_defaults(self) -> dict[str, Any]:
        """Each option's default (every field has one, see ``__post_init__``)."""
        instance = self.options()
        return {f.name: getattr(instance, f.name) for f in dataclasses.fields(self.options)}

    def option_help(self) -> dict[str, str]:
        """One line of help per option: the ``#:`` comment above its field (as Sphinx reads it), if any."""
        found: dict[str, str] = {}
        for cls in reversed(self.options.__mro__):  # base classes first, so that subclasses win
            comment: list[str] = []
            for line in _class_body(cls):
                text = line.strip()
                if text.startswith("#:"):
                    comment.append(text[2:].strip())
                    continue
                field = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", text)
                if field and comment:
                    found[field.group(1)] = " ".join(comment)
                comment = []
        return {name: found[name] for name in self.option_types() if name in found}

    def missing(self) -> list[str]:
        """Optional modules this writer needs that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]
