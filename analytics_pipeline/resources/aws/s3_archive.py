"""Archiving a landing object on S3: a server-side copy into the lake bucket, then a delete,
both conditional on the ETag that was read."""

from __future__ import annotations

from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from analytics_pipeline.resources.aws.errors import CHANGED, NOT_FOUND, error_code, s3_error
from analytics_pipeline.resources.store import LandingObjectGone, safe_relative

# The archived copy remembers the content version of the delivery it holds (S3 user metadata),
# because an ETag is no MD5 for multipart copies or SSE-KMS objects.
VERSION_METADATA = "content-version"


def archive_landing_object(
    client: Any,
    landing_bucket: str,
    lake_bucket: str,
    dataset: str,
    key: str,
    *,
    read_etag: str | None,
    version: str | None,
    transfer: TransferConfig,
) -> str:
    """Copy landing/<dataset>/<key> to archive/<dataset>/<key> in the lake bucket, then delete
    it from landing; returns the archive path used.

    A different earlier delivery already archived keeps its bytes: this one goes beside it as
    <key>~<version[:16]>. Copy and delete are conditional on `read_etag` (else the current
    ETag), so a delivery that replaced the object since is neither archived nor deleted: it
    stays in landing for the next run (LandingObjectGone here).
    """
    source = safe_relative(f"landing/{dataset}/{key}")
    try:
        head = client.head_object(Bucket=landing_bucket, Key=source)
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            raise LandingObjectGone(f"landing/{dataset}/{key}") from None
        raise s3_error("HeadObject", landing_bucket, source, error) from error
    etag = read_etag or head["ETag"]
    if etag != head["ETag"]:
        raise LandingObjectGone(f"landing/{dataset}/{key} (replaced since it was read)")

    archive_path = f"archive/{dataset}/{key}"
    if version:
        archived = archived_version(client, lake_bucket, archive_path)
        if archived is not None and archived != version:
            archive_path = f"{archive_path}~{version[:16]}"
    target = safe_relative(archive_path)
    extra: dict[str, Any] = {"CopySourceIfMatch": etag}
    if version:
        extra |= {"Metadata": {VERSION_METADATA: version}, "MetadataDirective": "REPLACE"}
    try:
        # The managed copy switches to UploadPartCopy above the threshold: CopyObject
        # alone stops at 5 GB.
        client.copy(
            {"Bucket": landing_bucket, "Key": source},
            lake_bucket,
            target,
            ExtraArgs=extra,
            Config=transfer,
        )
    except ClientError as error:
        if error_code(error) in NOT_FOUND | CHANGED:
            raise LandingObjectGone(f"landing/{dataset}/{key}") from None
        raise s3_error(
            f"Copy to s3://{lake_bucket}/{target} from", landing_bucket, source, error
        ) from error
    try:
        client.delete_object(Bucket=landing_bucket, Key=source, IfMatch=etag)
    except ClientError as error:
        # Replaced (412) after the copy: the new delivery stays for its own run.
        # Already deleted (404): another run archived the same object first.
        if error_code(error) not in NOT_FOUND | CHANGED:
            raise s3_error("DeleteObject", landing_bucket, source, error) from error
    return archive_path


def archived_version(client: Any, lake_bucket: str, archive_path: str) -> str | None:
    """The content version of what is archived at this path, '' if unknown, None if none."""
    key = safe_relative(archive_path)
    try:
        head = client.head_object(Bucket=lake_bucket, Key=key)
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise s3_error("HeadObject", lake_bucket, key, error) from error
    stored = head.get("Metadata", {}).get(VERSION_METADATA)
    if stored:
        return stored
    etag = head["ETag"].strip('"')
    return "" if "-" in etag else etag
