"""Deleting many S3 objects: DeleteObjects takes at most 1000 keys a call."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from analytics_pipeline.resources.aws.errors import S3StoreError, s3_error

S3_DELETE_KEYS = 1000


def delete_keys(client: Any, bucket: str, keys: Iterator[str], where: str) -> None:
    """Delete the keys, S3_DELETE_KEYS per call (a missing key is no error for S3); `where`
    names them in errors. Keys may come from a listing still being paged."""
    while batch := [{"Key": key} for key in itertools.islice(keys, S3_DELETE_KEYS)]:
        try:
            response = client.delete_objects(
                Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
            )
        except ClientError as error:
            raise s3_error("DeleteObjects", bucket, where, error) from error
        if failed := response.get("Errors", []):
            first = failed[0]
            raise S3StoreError(
                f"DeleteObjects s3://{bucket}/{where} failed for {len(failed)} "
                f"keys, e.g. {first.get('Key')}: {first.get('Code')}: {first.get('Message')}"
            )
