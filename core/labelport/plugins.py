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

__all__ = ["BUILTIN_PLUGINS", "BUILTIN_WRITERS", "ENTRY_POINT_GROUP", "PLUGINS_ENV", "STRICT_ENV", "PluginInfo",
           "Registry", "WriterInfo", "load_named"]

ENTRY_POINT_GROUP = "labelport"
STRICT_ENV = "LABELPORT_STRICT_PLUGINS"
PLUGINS_ENV = "LABELPORT_PLUGINS"
#: the built-in writers and the module that registers each, registered exactly as a third-party module would be.
#: When no other plugin is installed, a command imports only the modules of the writers it uses (a test checks
#: this table against what the modules register).
BUILTIN_WRITERS = {
    "nifti": "labelport_writers.nifti",
    "semantic-nifti": "labelport_writers.semantic",
    "binary-mask": "labelport_writers.binary",
    "overlapping": "labelport_writers.overlapping",
    "png": "labelport_writers.png",
    "mhd": "labelport_writers.mhd",
    "rtstruct": "labelport_writers.rtstruct",
    "dicom-seg": "labelport_writers.dicomseg",
    "images-nifti": "labelport_writers.images",
    "nnunet": "labelport_writers.nnunet",
    "monai": "labelport_writers.decathlon",
    "coco": "labelport_writers.coco",
}
#: built-in writer modules
BUILTIN_PLUGINS = tuple(dict.fromkeys(BUILTIN_WRITERS.values()))


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
    """Loads plugins and answers which writers exist. Cheap enough to build per command: unless another plugin
    is installed (whose writer names must be checked against theirs), built-in writer modules are imported when
    their writers are first asked for."""

    def __init__(self, *, entry_point_plugins: bool = True, extra: Iterable[tuple[str, Any]] = ()) -> None:
        extra = list(extra)
        self.pm = pluggy.PluginManager("labelport")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.broken: list[PluginInfo] = []
        self.conflicts: dict[str, list[WriterInfo]] = {}
        self._owner: dict[str, PluginInfo] = {}
        self._writers: dict[str, WriterInfo] = {}
        #: plugins given as objects (``extra``) exist only in this process, not on worker processes
        self.in_process = bool(extra)
        entry_points = find_entry_points(ENTRY_POINT_GROUP) if entry_point_plugins else []
        named = _named_plugins() if entry_point_plugins else []
        #: built-in writer modules not imported yet
        self._later = [] if extra or entry_points or named else list(BUILTIN_PLUGINS)
        for module in BUILTIN_PLUGINS:
            if module not in self._later:
                self._add(module, "labelport", __version__, lambda m=module: importlib.import_module(m))
        for name, plugin in extra:
            self._add(name, name, "", lambda p=plugin: p)
        for ep in entry_points:
            self._add(ep.name, ep.package, ep.version, ep.load)
        for spec in named:
            self._add(spec, f"{PLUGINS_ENV} {spec}", "", lambda s=spec: load_named(s))
        self._collect(list(self._owner))

    def _load_later(self, modules: Iterable[str]) -> None:
        """Import and register built-in writer modules that were left for later."""
        modules = [m for m in modules if m in self._later]
        for module in modules:
            self._later.remove(module)
            self._add(module, "labelport", __version__, lambda m=module: importlib.import_module(m))
        self._collect([m for m in modules if m in self._owner])

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

    def _collect(self, plugins: list[str]) -> None:
        """Add the writers of these registered plugins, in registration order."""
        found, new = self._writers, set()
        for impl in self.pm.hook.register_writers.get_hookimpls():
            if impl.plugin_name not in plugins:
                continue
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
                    new.add(spec.name)
                else:
                    found[spec.name] = entry
        for name in sorted(new):
            message = self.conflict_message(name)
            if _strict():
                raise PluginError(message)
            warnings.warn(f"labelport: {message}", stacklevel=3)

    def conflict_message(self, name: str) -> str:
        owners = " and ".join(f"{w.plugin.package!r} (plugin {w.plugin.name!r})" for w in self.conflicts[name])
        return f"writer name {name!r} is provided by more than one package: {owners}; uninstall one of them"

    def writers(self) -> list[WriterInfo]:
        """Every usable writer, sorted by name."""
        self._load_later(list(self._later))
        return [self._writers[n] for n in sorted(self._writers)]

    def writer(self, name: str) -> WriterInfo:
        if name in BUILTIN_WRITERS:
            self._load_later([BUILTIN_WRITERS[name]])
        if name in self.conflicts:
            raise PluginError(self.conflict_message(name))
        try:
            return self._writers[name]
        except KeyError:
            pass
        broken = [b for b in self.broken if b.name == BUILTIN_WRITERS.get(name)]
        if broken:
            raise PluginError(f"writer {name!r} cannot be used: its module {broken[0].name!r} {broken[0].error}")
        self._load_later(list(self._later))  # (to name them all)
        known = ", ".join(sorted(self._writers)) or "none"
        raise UnknownWriterError(f"unknown writer {name!r}{did_you_mean(name, self._writers)} "
                                 f"(available: {known})") from None
