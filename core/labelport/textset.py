"""Strings kept in a few flat buffers, for what an export remembers of every task of a large project (record
heads, the task ids and folder names it has handed out): no object per string that reference counting would
touch, and about a third of the memory of Python strings in a list or a set.

:class:`TextList` holds the strings as UTF-8 text in one buffer with the offsets where each ends;
:class:`TextSet` adds an open-addressing table (linear probing, at most half full) that finds a string's
number by hash, confirmed by its text.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["TextList", "TextSet"]


_LARGEST = 2**32 - 1  # the largest offset a 32-bit end holds


def _encoded(item: str) -> bytes:
    return item.encode("utf-8", "surrogatepass")  # any str, lone surrogates included


class TextList:
    """A list of strings that only grows (``append``, ``[n]``, ``len``, iteration)."""

    def __init__(self) -> None:
        self._text = bytearray()
        self._ends = array("I")  # where each string ends in _text (64-bit once the text passes 4 GiB)

    def append(self, item: str) -> None:
        self.append_encoded(_encoded(item))

    def append_encoded(self, encoded: bytes) -> None:
        self._text += encoded
        if len(self._text) > _LARGEST and self._ends.typecode == "I":
            self._ends = array("q", self._ends)
        self._ends.append(len(self._text))

    def encoded(self, n: int) -> bytearray:
        """String ``n`` (0 <= n < len) as UTF-8."""
        return self._text[self._ends[n - 1] if n else 0:self._ends[n]]

    def __getitem__(self, n: int) -> str:
        if not -len(self) <= n < len(self):
            raise IndexError(n)
        return self.encoded(n % len(self)).decode("utf-8", "surrogatepass")

    def __len__(self) -> int:
        return len(self._ends)

    def __iter__(self) -> Iterator[str]:
        text, start = self._text, 0
        for end in self._ends:
            yield text[start:end].decode("utf-8", "surrogatepass")
            start = end


class TextSet:
    """A set of strings (``add``, ``in``, ``len``, iteration in the order they were added). A string is found
    by the hash of its UTF-8 text; one byte of that hash is kept per string, to pass over most other strings met
    while probing without comparing text (the whole hash is worked out again when the table grows)."""

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._items = TextList()
        self._tags = bytearray()  # the top byte of each string's hash
        self._table = array("i", [-1]) * 8  # a string's number, or -1 for an empty slot
        for item in items:
            self.add(item)

    def _find(self, encoded: bytes, hashed: int) -> int:
        """The slot that holds ``encoded``, or the empty one where it would go."""
        table, tags, items = self._table, self._tags, self._items
        mask, tag = len(table) - 1, hashed >> 56 & 0xFF
        slot = hashed & mask
        n = table[slot]
        while n >= 0 and not (tags[n] == tag and items.encoded(n) == encoded):
            slot = (slot + 1) & mask
            n = table[slot]
        return slot

    def add(self, item: str) -> bool:
        """Add ``item``; whether it was new."""
        encoded = _encoded(item)
        hashed = hash(encoded)
        slot = self._find(encoded, hashed)
        table, count = self._table, len(self._items)
        if table[slot] >= 0:
            return False
        table[slot] = count
        self._items.append_encoded(encoded)
        self._tags.append(hashed >> 56 & 0xFF)
        if 2 * count + 2 > len(table):
            table = array("i", [-1]) * (2 * len(table))
            mask, text, start = len(table) - 1, bytes(self._items._text), 0
            for n, end in enumerate(self._items._ends):
                slot = hash(text[start:end]) & mask
                while table[slot] >= 0:
                    slot = (slot + 1) & mask
                table[slot] = n
                start = end
            self._table = table
        return True

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        encoded = _encoded(item)
        return self._table[self._find(encoded, hash(encoded))] >= 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __reduce__(self) -> tuple[Any, ...]:  # hashes differ between processes: rebuilt from the strings
        return TextSet, (list(self),)
