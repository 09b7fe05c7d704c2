"""zlib and gzip streams deflated in pieces, without deflating what is known to hold only zeros.

Most of most label maps is empty. A writer that knows which bytes of its data hold only zeros (from
:attr:`labelport.LabelMap.zero_runs`) hands their ranges over with the data: runs of 64 KiB or more are made
from zeros deflated once per process (1 MiB repeated, then the powers of two that make up the rest), and their
checksum is worked out rather than summed. The rest is deflated by ISA-L in pieces of at most 8 MiB, on as many
threads as there are CPUs when there is more than one piece's worth (ISA-L lets go of the GIL; starting threads
costs more than deflating a few MB). Every piece ends on a full flush, so the pieces join into one deflate
stream, closed by an empty final block, and the checksum of the whole (Adler-32 for zlib, CRC-32 for gzip) is
combined from theirs. The bytes depend on the data, the zero runs and the level alone, not on the machine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence

from isal import isal_zlib

__all__ = ["gzip_stream", "zlib_stream"]

Runs = Iterable[tuple[int, int]]

_PIECE = 8 << 20  # bytes deflated at a time on a thread
_ZERO_RUN = 64 << 10  # zeros known as such are not deflated again from this many bytes on
_UNIT = 1 << 20  # zeros are deflated this many bytes at a time, once per process (see _zeros)
_ADLER_BASE = 65521
_LAST_BLOCK = b"\x03\x00"  # an empty final deflate block (fixed codes), after pieces that end on a full flush


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two pieces of data joined, from theirs (zlib's adler32_combine)."""
    rem = second_length % _ADLER_BASE
    low = ((first & 0xFFFF) + (second & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    high = ((first >> 16) + (second >> 16) + rem * (first & 0xFFFF) + _ADLER_BASE - rem) % _ADLER_BASE
    return low | high << 16


def _zero_sizes(length: int) -> list[int]:
    """A run of zeros as the pieces it is made from: 1 MiB as often as it fits, then the powers of two that make
    up the rest."""
    whole, rest = divmod(length, _UNIT)
    return [_UNIT] * whole + [1 << bit for bit in range(rest.bit_length()) if rest >> bit & 1]


class _Check:
    """A checksum: of a piece, of two pieces joined, and of a run of zeros (from the checksums of 1 MiB and of
    powers of two of zeros, each summed once per process)."""

    def __init__(self, of: Callable[[memoryview], int], combine: Callable[[int, int, int], int], start: int) -> None:
        self.of, self.combine, self.start = of, combine, start
        self._zeros: dict[int, int] = {}

    def zeros(self, length: int) -> int:
        value = self.start
        for size in _zero_sizes(length):
            if size not in self._zeros:
                self._zeros[size] = self.of(memoryview(bytes(size)))
            value = self.combine(value, self._zeros[size], size)
        return value


_ADLER32 = _Check(isal_zlib.adler32, _adler32_combine, 1)
_CRC32 = _Check(isal_zlib.crc32, isal_zlib.crc32_combine, 0)


def _deflate(piece: memoryview, level: int) -> bytes:
    """A piece of data as raw deflate blocks ending on a full flush."""
    raw = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    return raw.compress(piece) + raw.flush(isal_zlib.Z_FULL_FLUSH)


@functools.cache
def _zeros_deflated(length: int, level: int) -> bytes:  # (powers of two up to _UNIT: 21 per level at most)
    return _deflate(memoryview(bytes(length)), level)


def _zeros(length: int, level: int) -> bytes:
    """``length`` zero bytes as :func:`_deflate` makes them, from the deflated :func:`_zero_sizes` (each
    deflated once per process, so runs of any length cost nothing more)."""
    return b"".join([_zeros_deflated(size, level) for size in _zero_sizes(length)])


def _pieces(size: int, zeros: Runs) -> list[tuple[int, int, bool]]:
    """``(start, end, zero)``: the runs of ``zeros`` of at least :data:`_ZERO_RUN` bytes, and pieces of at most
    :data:`_PIECE` bytes of the data between them."""
    pieces: list[tuple[int, int, bool]] = []
    at = last = 0
    for start, end in [*zeros, (size, size)]:
        if not last <= start <= end <= size:
            raise ValueError(f"zero runs must be sorted, apart and within the data: {start}, {end}")
        last = end
        if end - start < _ZERO_RUN and end < size:
            continue
        pieces += [(a, min(a + _PIECE, start), False) for a in range(at, start, _PIECE)]
        if end > start:
            pieces.append((start, end, True))
        at = end
    return pieces


def _deflated(parts: Sequence[tuple[memoryview, Runs]], level: int, check: _Check) -> tuple[list[bytes], int]:
    """The raw deflate stream of the parts joined (each with the byte ranges of it that hold only zeros), closed
    by the final block, and its checksum."""
    import os

    pieces = [(data, start, end, zero) for data, zeros in parts for start, end, zero in _pieces(len(data), zeros)]
    full = [data[start:end] for data, start, end, zero in pieces if not zero]

    def work(piece: memoryview) -> tuple[bytes, int]:
        return _deflate(piece, level), check.of(piece)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    threads = min(len(full), cpus) if sum(map(len, full)) > _PIECE else 1
    deflated: Iterator[tuple[bytes, int]]
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            deflated = iter(list(pool.map(work, full)))
    else:
        deflated = map(work, full)
    out, value = [], check.start
    for _, start, end, zero in pieces:
        block, piece_value = (_zeros(end - start, level), check.zeros(end - start)) if zero else next(deflated)
        out.append(block)
        value = check.combine(value, piece_value, end - start)
    out.append(_LAST_BLOCK)
    return out, value


def zlib_stream(data: memoryview, zeros: Runs = (), level: int = 1) -> bytes:
    """``data`` (bytes) as one zlib stream, deflated by ISA-L at ``level`` (0-3). ``zeros``: byte ranges
    ``(start, end)``, ascending and apart, that hold only zeros (see the module docstring)."""
    blocks, adler = _deflated([(data, zeros)], level, _ADLER32)
    return b"".join([b"\x78\x01", *blocks, adler.to_bytes(4, "big")])


def gzip_stream(parts: Sequence[tuple[memoryview, Runs]], level: int = 1) -> list[bytes]:
    """The parts (bytes, each with the byte ranges of it that hold only zeros) joined, as one gzip member
    deflated by ISA-L at ``level`` (0-3), in pieces to be written one after another. The header is the one
    ``isal.igzip`` writes with no name and no time."""
    blocks, crc = _deflated(parts, level, _CRC32)
    size = sum(len(data) for data, _ in parts)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + (b"\x04" if level == 0 else b"\x00") + b"\xff"
    return [header, *blocks, (crc & 0xFFFFFFFF).to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")]
