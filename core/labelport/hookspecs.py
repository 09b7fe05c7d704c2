"""The whole plugin contract: the hooks a labelport plugin may implement.

A plugin is a module (or object) with functions marked ``@labelport.hookimpl``. Hooks only ever grow by new
arguments, which older plugins may leave out of their signatures.
"""

from __future__ import annotations

import pluggy

from .writer import WriterSpec

__all__ = ["hookimpl", "hookspec", "register_writers"]

hookspec = pluggy.HookspecMarker("labelport")
hookimpl = pluggy.HookimplMarker("labelport")


@hookspec
def register_writers() -> list[WriterSpec]:  # type: ignore[empty-body]
    """Return the writers this plugin provides.

    Example::

        import labelport

        @labelport.hookimpl
        def register_writers():
            return [labelport.WriterSpec(name="npz", description="NumPy .npz per series",
                                         write=write, options=Options)]
    """
