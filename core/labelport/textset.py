"""A set of strings in a few flat buffers, for what an export remembers of every task of a large project (the
task ids and folder names it has handed out): about 50 bytes a 20-character string, against about 110 in a
``set``, and no object per string that reference counting would touch.

The strings are UTF-8 text in one buffer; an open-addressing table (linear probing, at most half full) holds
their numbers, found by hash and confirmed by text.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["TextSet"]


class TextSet:
    """A set of strings (``add``, ``in``, ``len``, iteration in the order they were added)."""

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._text = bytearray()
        self._ends = array("q")  # where each string ends in _text
        self._hashes = array("q")  # each string's hash
        self._table = array("i", [-1]) * 8  # a string's number, or -1 for an empty slot
        for item in items:
            self.add(item)

    def _find(self, encoded: bytes, hashed: int) -> int:
        """The slot that holds ``encoded``, or the empty one where it would go (the lookups are written out
        here, not in helpers: this runs for every task of an export)."""
        table, hashes, ends, text = self._table, self._hashes, self._ends, self._text
        mask = len(table) - 1
        slot = hashed & mask
        n = table[slot]
        while n >= 0 and not (hashes[n] == hashed and text[ends[n - 1] if n else 0:ends[n]] == encoded):
            slot = (slot + 1) & mask
            n = table[slot]
        return slot

    def add(self, item: str) -> bool:
        """Add ``item``; whether it was new."""
        encoded, hashed = item.encode("utf-8", "surrogatepass"), hash(item)
        slot = self._find(encoded, hashed)
        table, count = self._table, len(self._ends)
        if table[slot] >= 0:
            return False
        table[slot] = count
        self._text += encoded
        self._ends.append(len(self._text))
        self._hashes.append(hashed)
        if 2 * count + 2 > len(table):
            table = array("i", [-1]) * (2 * len(table))
            mask = len(table) - 1
            for n, value in enumerate(self._hashes):
                slot = value & mask
                while table[slot] >= 0:
                    slot = (slot + 1) & mask
                table[slot] = n
            self._table = table
        return True

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        return self._table[self._find(item.encode("utf-8", "surrogatepass"), hash(item))] >= 0

    def _bytes(self, n: int) -> bytes:
        return bytes(self._text[self._ends[n - 1] if n else 0:self._ends[n]])

    def __len__(self) -> int:
        return len(self._ends)

    def __iter__(self) -> Iterator[str]:
        return (self._bytes(n).decode("utf-8", "surrogatepass") for n in range(len(self._ends)))

    def __reduce__(self) -> tuple[Any, ...]:  # hashes differ between processes: rebuilt from the strings
        return TextSet, (list(self),)
