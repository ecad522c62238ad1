"""Reading a landing file as a stream: whole-line blocks and a first pass (md5, crc32, UTF-8).

Its own module because both staging and reconciliation read big files this way and must cut
and check them identically.
"""

from __future__ import annotations

import codecs
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from analytics_pipeline.lake.parsing.records import RAW_PREVIEW_BYTES
from analytics_pipeline.lake.sql_text import UTF8_BOM


@dataclass(frozen=True)
class OverlongLine:
    """A line longer than the limit, skipped in a stream: its first bytes and its length."""

    preview: bytes
    size: int  # without its LF


def split_blocks(
    chunks: Iterable[bytes], block_bytes: int, max_line_bytes: int
) -> Iterator[bytes | OverlongLine]:
    """Whole lines, about block_bytes at a time, from chunks cut anywhere.

    Every block but the last ends with LF, none is empty, and the blocks joined are the
    input, except that a line longer than max_line_bytes comes as an OverlongLine in its
    place (with its LF), its bytes never held. Memory: about block_bytes + a chunk +
    max_line_bytes.
    """
    buf = bytearray()
    skipping: tuple[bytes, int] | None = None  # an overlong line being skipped: preview, size
    for chunk in chunks:
        if skipping is not None:
            newline = chunk.find(b"\n")
            rest = chunk if newline < 0 else chunk[:newline]
            preview = skipping[0]
            if len(preview) < RAW_PREVIEW_BYTES:
                preview += rest[: RAW_PREVIEW_BYTES - len(preview)]
            skipping = (preview, skipping[1] + len(rest))
            if newline < 0:
                continue
            yield OverlongLine(*skipping)
            skipping = None
            chunk = chunk[newline + 1 :]
        buf += chunk
        if len(buf) >= block_bytes:
            cut = buf.rfind(b"\n")
            if cut >= 0:
                yield from _overlong_cut(bytes(buf[: cut + 1]), max_line_bytes)
                del buf[: cut + 1]
        partial = len(buf) - (buf.rfind(b"\n") + 1)
        if partial > max_line_bytes:
            if len(buf) > partial:
                yield from _overlong_cut(bytes(buf[: len(buf) - partial]), max_line_bytes)
            skipping = (bytes(buf[len(buf) - partial :][:RAW_PREVIEW_BYTES]), partial)
            buf.clear()
    if skipping is not None:
        yield OverlongLine(*skipping)
    elif buf:
        yield from _overlong_cut(bytes(buf), max_line_bytes)


def _overlong_cut(block: bytes, max_line_bytes: int) -> Iterator[bytes | OverlongLine]:
    """The block, with each line longer than max_line_bytes (however it was chunked) taken
    out as an OverlongLine: which lines are overlong depends on the bytes only."""
    if len(block) <= max_line_bytes:
        yield block
        return
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(block)]))
    position = 0
    for line in np.flatnonzero(stops - starts > max_line_bytes).tolist():
        first, stop = int(starts[line]), int(stops[line])
        if first > position:
            yield block[position:first]
        yield OverlongLine(block[first : min(stop, first + RAW_PREVIEW_BYTES)], stop - first)
        position = stop + 1
    if position < len(block):
        yield block[position:]


@dataclass
class StreamScan:
    """A first pass over a streamed file: what must be known before any record is staged."""

    version: str = ""  # md5 of every byte, as for a file read whole
    checksum: int = 0  # crc32, to check the second pass read the same bytes
    size: int = 0
    head: bytes = b""  # the first RAW_PREVIEW_BYTES, for a whole-file reject's raw
    utf8_error: str | None = None  # the whole-file reason, worded as parse_landing_file's


class StreamScanner:
    """md5, crc32, size and UTF-8 validity of a stream, fed chunk by chunk."""

    def __init__(self) -> None:
        self.scan = StreamScan()
        self._digest = hashlib.md5(usedforsecurity=False)
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes) -> None:
        scan = self.scan
        self._digest.update(chunk)
        scan.checksum = zlib.crc32(chunk, scan.checksum)
        text, text_start = chunk, scan.size
        if scan.size == 0 and chunk.startswith(UTF8_BOM):
            # utf-8-sig, as a whole file is decoded: a byte-order mark is not content.
            text, text_start = chunk[3:], 3
        if len(scan.head) < RAW_PREVIEW_BYTES:
            scan.head += chunk[: RAW_PREVIEW_BYTES - len(scan.head)]
        scan.size += len(chunk)
        if scan.utf8_error is None and not (self._decoder.getstate()[0] == b"" and text.isascii()):
            scan.utf8_error = _utf8_error(self._decoder, text, text_start, final=False)

    def finish(self) -> StreamScan:
        if self.scan.utf8_error is None:
            self.scan.utf8_error = _utf8_error(self._decoder, b"", self.scan.size, final=True)
        self.scan.version = self._digest.hexdigest()
        return self.scan


def scan_stream(chunks: Iterable[bytes]) -> StreamScan:
    """One pass over a stream: its md5, crc32, size, first bytes and UTF-8 validity."""
    scanner = StreamScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.finish()


def _utf8_error(
    decoder: codecs.IncrementalDecoder, data: bytes, offset: int, *, final: bool
) -> str | None:
    pending = decoder.getstate()[0]
    try:
        decoder.decode(data, final)
    except UnicodeDecodeError as err:
        at = offset - len(pending) + err.start
        return f"not valid UTF-8: byte 0x{err.object[err.start]:02x} at offset {at}"
    return None
