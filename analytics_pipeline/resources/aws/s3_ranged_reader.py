"""A seekable, read-only file over one S3 object version, each read a ranged GET.

pyarrow reads a Parquet footer by seeking to the end and reading the last 64 KiB (and more
only if the footer is longer): over this file that is one or two small GETs, where reading
the object whole costs the full day's bytes.
"""

from __future__ import annotations

import io
import os
from typing import Any


class S3RangedReader(io.RawIOBase):
    """One object version (If-Match its ETag, so a rewrite midway fails, not mixes)."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        head = client.head_object(Bucket=bucket, Key=key)
        self.size = int(head["ContentLength"])
        self._etag = head["ETag"]
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._position + len(view), self.size)
        if end <= self._position:
            return 0
        response = self._client.get_object(
            Bucket=self._bucket,
            Key=self._key,
            IfMatch=self._etag,
            Range=f"bytes={self._position}-{end - 1}",
        )
        with response["Body"] as body:
            data = body.read()
        view[: len(data)] = data
        self._position += len(data)
        return len(data)
