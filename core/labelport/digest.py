"""BLAKE2b, the digest of labelport's fingerprints, seals and file digests.

It is taken from CPython's ``_blake2`` module (which is what ``hashlib.blake2b`` is) where there is one:
importing ``hashlib`` loads OpenSSL for its other algorithms, a good part of what an export that finds nothing
changed costs.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # an interpreter without it
    from hashlib import blake2b

__all__ = ["blake2b"]
