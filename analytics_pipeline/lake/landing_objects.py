"""What the lake and every store agree on about a landing object: its content version, the
chunks it streams in, and the error when someone else archived it first."""

from __future__ import annotations

import hashlib

# Streamed reads hand over this much at a time.
STREAM_CHUNK_BYTES = 8 * 1024 * 1024


def content_version(data: bytes) -> str:
    """A landing file's content identity: the md5 of its bytes (an S3 ETag, for plain PUTs)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class LandingObjectGone(FileNotFoundError):
    """The landing object was archived (or removed) by someone else first."""
