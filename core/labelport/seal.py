"""Re-exports that find nothing changed, without looking at each task.

An export that leaves every task of an unfiltered source recorded (written, or found unchanged) without a
failure seals each writer's manifest (:meth:`~labelport.manifest.Manifest.set_seal`) with its *key*:
labelport's version, the writers, everything each writer's fingerprints depend on besides the task and the
taxonomy (options, settings, where the output is, versions) and the source's
:meth:`~labelport.sources.Source.seal_state` (for an export folder: a digest of tasks.json's bytes and of the
taxonomy file's, and where files are looked up from), which stands for the records and the taxonomy. The first
writer's manifest also keeps the observations of the source's file look-ups during that export
(:mod:`labelport.sources.lookups`) and the source's :meth:`~labelport.sources.Source.summary` (the number of
tasks and the categories that complete the taxonomy). Recording any change to a task drops the seal. An export
whose source state changed while it ran (tasks.json rewritten between the key and the split) does not seal.

A task's fingerprint is made from its record, the files its look-ups find and their sizes and times, its folder
(named from the records), the taxonomy and the key's other parts. So when the next export has the same key,
every observation still holds and every output file the manifests record is on disk, each of its tasks would be
found unchanged: it reports them so without reading tasks.json, finding a file or working out a fingerprint
(the summary gives the count and the taxonomy), and runs the project steps as usual. Any other export looks at
every task (and seals again when it ends as above).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ._version import __version__
from .digest import blake2b
from .manifest import Manifest
from .sources import Source
from .sources.lookups import still_hold

__all__ = ["new_seal", "seal_key", "sealed"]


def seal_key(src: Source, names: Sequence[str], context: Mapping[str, str]) -> str | None:
    """The key of an export with these writers (``context``: what each one's fingerprints depend on besides the
    task and the taxonomy), or None when the source cannot vouch for its inputs."""
    state = src.seal_state()
    if state is None or src.lookups is None:
        return None
    text = repr((__version__, [(name, context[name]) for name in names], state))
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def new_seal(key: str) -> str:
    """A seal for the manifests of one export (told from any other export's by a random part)."""
    return f"{key} {os.urandom(8).hex()}"


def sealed(key: str, manifests: Sequence[Manifest], steady_images: bool) -> bool:
    """Whether every task of an export with this key, into these manifests (the first writer's first), would be
    found unchanged (see the module docstring). ``steady_images``: images are hard-linked into the output, so
    their change time does not count (as in :func:`~labelport.manifest.input_digest`)."""
    seal = manifests[0].seal
    return (seal is not None and seal.startswith(key + " ") and all(m.seal == seal for m in manifests)
            and still_hold(manifests[0].seen(), steady_images)
            and all(m.outputs_present() for m in manifests))
