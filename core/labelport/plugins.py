"""The plugin registry: built-in writers, entry-point plugins and plugins named in ``LABELPORT_PLUGINS``,
loaded one at a time and guarded.

A plugin that fails to import or to register is skipped with a warning naming its package, so ``--help`` and
every other writer keep working; set ``LABELPORT_STRICT_PLUGINS=1`` to make such failures raise instead. A
module that registers nothing (no ``@labelport.hookimpl`` function) is reported the same way.

``LABELPORT_PLUGINS`` (and ``labelport --plugin``) names plugins without packaging them, as pytest's ``-p``
does: ``module`` or ``module:object``, comma-separated. Worker processes import them again by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from ._version import __version__
from .entrypoints import find_entry_points
from .errors import PluginError, UnknownWriterError, did_you_mean
from .writer import WriterSpec

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "PLUGINS_ENV", "STRICT_ENV", "PluginInfo", "Registry",
           "WriterInfo", "load_named"]

ENTRY_POINT_GROUP = "labelport"
STRICT_ENV = "LABELPORT_STRICT_PLUGINS"
PLUGINS_ENV = "LABELPORT_PLUGINS"
#: built-in writer modules, registered exactly as a third-party module would be
BUILTIN_PLUGINS = (
    "labelport_writers.nifti",
    "labelport_writers.semantic",
    "labelport_writers.binary",
    "labelport_writers.overlapping",
    "labelport_writers.png",
    "labelport_writers.mhd",
    "labelport_writers.rtstruct",
    "labelport_writers.dicomseg",
    "labelport_writers.images",
    "labelport_writers.nnunet",
    "labelport_writers.decathlon",
    "labelport_writers.coco",
)


@dataclass(frozen=True)
class PluginInfo:
    """A plugin and where it comes from; ``error`` is set when it could not be loaded."""

    name: str
    package: str
    version: str
    error: str | None = None


@dataclass(frozen=True)
class WriterInfo:
    """A registered writer with the plugin that provides it."""

    spec: WriterSpec
    plugin: PluginInfo

    @property
    def name(self) -> str:
        return self.spec.name


def load_named(spec: str) -> Any:
    """``module`` or ``module:object`` (the object may be dotted), imported from ``sys.path`` or, failing that,
    the current folder."""
    import sys

    module, _, attribute = spec.strip().partition(":")
    if not module:
        raise PluginError(f"plugin {spec!r}: expected module or module:object")
    if os.getcwd() not in sys.path and importlib.util.find_spec(module.split(".")[0]) is None:
        sys.path.append(os.getcwd())
    found: Any = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        found = getattr(found, part)
    return found


def _named_plugins() -> list[str]:
    return [s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(",") if s.strip()]


def _has_hookimpl(plugin: Any) -> bool:
    return any(hasattr(getattr(plugin, name, None), "labelport_impl") for name in dir(plugin))


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no")


class Registry:
    """Loads plugins and answers which writers exist. Cheap enough to build per command."""

    def __init__(self, *, entry_point_plugins: bool = True, extra: Iterable[tuple[str, Any]] = ()) -> None:
        extra = list(extra)
        self.pm = pluggy.PluginManager("labelport")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.broken: list[PluginInfo] = []
        self.conflicts: dict[str, list[WriterInfo]] = {}
        self._owner: dict[str, PluginInfo] = {}
        #: plugins given as objects (``extra``) exist only in this process, not on worker processes
        self.in_process = bool(extra)
        for module in BUILTIN_PLUGINS:
            self._add(module, "labelport", __version__, lambda m=module: importlib.import_module(m))
        for name, plugin in extra:
            self._add(name, name, "", lambda p=plugin: p)
        if entry_point_plugins:
            for ep in find_entry_points(ENTRY_POINT_GROUP):
                self._add(ep.name, ep.package, ep.version, ep.load)
            for spec in _named_plugins():
                self._add(spec, f"{PLUGINS_ENV} {spec}", "", lambda s=spec: load_named(s))
        self._writers = self._collect()

    def _fail(self, info: PluginInfo, exc: BaseException, what: str) -> None:
        if _strict():
            raise PluginError(f"plugin {info.name!r} from package {info.package!r} {what}: {exc}") from exc
        broken = PluginInfo(info.name, info.package, info.version, f"{what}: {type(exc).__name__}: {exc}")
        self.broken.append(broken)
        warnings.warn(f"labelport: skipping plugin {info.name!r} from package {info.package!r} "
                      f"({broken.error})", stacklevel=3)

    def _add(self, name: str, package: str, version: str, load: Any) -> None:
        info = PluginInfo(name, package, version)
        try:
            plugin: ModuleType | Any = load()
            if self.pm.is_registered(plugin):
                return
            if not _has_hookimpl(plugin):
                raise PluginError("it has no @labelport.hookimpl function, so it registers nothing (a module "
                                  "that only defines writers must also register them: see CONTRIBUTING.md)")
            self.pm.register(plugin, name=name)
            try:
                self.pm.check_pending()  # a misspelled hook name is an error, not a silent no-op
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(plugin)
                raise PluginError(str(exc)) from None
        except Exception as exc:  # any error in third-party code must not break labelport
            self._fail(info, exc, "failed to load")
            return
        self._owner[name] = info
        self.plugins.append(info)

    def _collect(self) -> dict[str, WriterInfo]:
        found: dict[str, WriterInfo] = {}
        for impl in self.pm.hook.register_writers.get_hookimpls():  # registration order
            info = self._owner[impl.plugin_name]
            try:
                specs = impl.function()
                if not isinstance(specs, (list, tuple)) or not all(isinstance(s, WriterSpec) for s in specs):
                    raise PluginError("register_writers must return a list of labelport.WriterSpec")
            except Exception as exc:
                self.pm.unregister(name=impl.plugin_name)
                self.plugins.remove(info)
                self._fail(info, exc, "failed to register its writers")
                continue
            for spec in specs:
                entry = WriterInfo(spec, info)
                if spec.name in found or spec.name in self.conflicts:
                    self.conflicts.setdefault(spec.name, [found.pop(spec.name)] if spec.name in found else [])
                    self.conflicts[spec.name].append(entry)
                else:
                    found[spec.name] = entry
        for name in self.conflicts:
            message = self.conflict_message(name)
            if _strict():
                raise PluginError(message)
            warnings.warn(f"labelport: {message}", stacklevel=3)
        return found

    def conflict_message(self, name: str) -> str:
        owners = " and ".join(f"{w.plugin.package!r} (plugin {w.plugin.name!r})" for w in self.conflicts[name])
        return f"writer name {name!r} is provided by more than one package: {owners}; uninstall one of them"

    def writers(self) -> list[WriterInfo]:
        """Every usable writer, sorted by name."""
        return [self._writers[n] for n in sorted(self._writers)]

    def writer(self, name: str) -> WriterInfo:
        if name in self.conflicts:
            raise PluginError(self.conflict_message(name))
        try:
            return self._writers[name]
        except KeyError:
            known = ", ".join(sorted(self._writers)) or "none"
            raise UnknownWriterError(f"unknown writer {name!r}{did_you_mean(name, self._writers)} "
                                     f"(available: {known})") from None
