"""Streaming GETs of one S3 object version: bounded reads, broken bodies resumed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from analytics_pipeline.resources.aws.errors import (
    CHANGED,
    NOT_FOUND,
    S3StoreError,
    error_code,
    s3_error,
)

MiB = 1024 * 1024
# Errors in the middle of a response body, which botocore does not retry by itself.
BODY_ERRORS = (IncompleteReadError, ReadTimeoutError, ResponseStreamingError)
BODY_ATTEMPTS = 3


class ObjectMissing(Exception):
    """The object is not there (404)."""


class ObjectChanged(Exception):
    """The object is no longer the version being read (412 on If-Match)."""


def get_at_most(client: Any, bucket: str, key: str, limit: int) -> tuple[bytes, str]:
    """At most `limit` bytes of the object and its ETag; a body that breaks off is read again,
    up to BODY_ATTEMPTS times. Raises ObjectMissing."""
    for attempt in range(BODY_ATTEMPTS):
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error_code(error) in NOT_FOUND:
                raise ObjectMissing from None
            raise s3_error("GetObject", bucket, key, error) from error
        try:
            return read_at_most(response["Body"], limit), response["ETag"]
        except BODY_ERRORS as error:
            if attempt + 1 == BODY_ATTEMPTS:
                raise S3StoreError(
                    f"GetObject s3://{bucket}/{key} failed: "
                    f"the body broke off {BODY_ATTEMPTS} times: {error}"
                ) from error
    raise AssertionError("unreachable")


def stream_object(
    client: Any, bucket: str, key: str, chunk_bytes: int, etag: str | None, offset: int = 0
) -> Iterator[tuple[bytes, str]]:
    """(chunk, ETag) pairs of one object version (If-Match `etag`, else the current one) from
    `offset`; a broken body is resumed with a Range GET of the same version. Raises
    ObjectMissing or ObjectChanged."""
    failures = 0
    while True:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag is not None:
            params["IfMatch"] = etag
        if offset:
            params["Range"] = f"bytes={offset}-"
        try:
            response = client.get_object(**params)
        except ClientError as error:
            code = error_code(error)
            if code in NOT_FOUND:
                raise ObjectMissing from None
            if code in CHANGED:
                raise ObjectChanged from None
            if code == "InvalidRange" and offset:
                return  # the object ended exactly where the body broke off
            raise s3_error("GetObject", bucket, key, error) from error
        etag = etag or response["ETag"]
        body = response["Body"]
        try:
            while chunk := body.read(chunk_bytes):
                offset += len(chunk)
                failures = 0
                yield chunk, etag
            return
        except BODY_ERRORS as error:
            failures += 1
            if failures == BODY_ATTEMPTS:
                raise S3StoreError(
                    f"GetObject s3://{bucket}/{key} failed: the body broke off "
                    f"{BODY_ATTEMPTS} times at byte {offset}: {error}"
                ) from error
        finally:
            body.close()


def read_at_most(body: Any, limit: int) -> bytes:
    """Read up to `limit` bytes of a streaming body and close it (the rest is never fetched)."""
    chunks: list[bytes] = []
    remaining = limit
    try:
        while remaining > 0:
            chunk = body.read(min(remaining, 8 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        body.close()
    return b"".join(chunks)
