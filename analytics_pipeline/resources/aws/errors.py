"""AWS error codes as the resources read them, and the S3 store's error for a call that failed
for good."""

from __future__ import annotations

from botocore.exceptions import ClientError

NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
# A conditional request (If-Match, CopySourceIfMatch) found another version of the object.
CHANGED = frozenset({"PreconditionFailed", "412"})


class S3StoreError(RuntimeError):
    """An S3 call failed for good (after botocore's retries); names the bucket and key."""


def error_code(error: ClientError) -> str:
    """The service's error code ('NoSuchKey', 'EntityNotFoundException'...), or ''."""
    return str(error.response.get("Error", {}).get("Code", ""))


def s3_error(action: str, bucket: str, key: str, error: ClientError) -> S3StoreError:
    """The failure of `action` on s3://bucket/key, with S3's code and message."""
    details = error.response.get("Error", {})
    return S3StoreError(
        f"{action} s3://{bucket}/{key} failed: {details.get('Code', '?')}: "
        f"{details.get('Message', error)}"
    )
