"""The lake on S3: landing/ in the landing bucket; staged/, parquet/, quarantine/, archive/ in the
lake bucket. Same semantics as LocalLakeStore; this adds what S3 needs: paginated listings,
bounded streaming reads, overlapped GETs, multipart uploads, server-side copies, and botocore's
adaptive retries for throttling (SlowDown, 500s).

The boto3 clients are built directly rather than through dagster-aws's `S3Resource`: its
`get_client()` fixes the retry mode to "standard" and the connection pool to botocore's
default of 10, and neither can be changed, while concurrent GETs need a pool as large as the
thread pool and throttling needs the adaptive mode. Region, credentials and AWS_ENDPOINT_URL
come from the standard AWS chain, as for `S3Resource`.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

import boto3
import pyarrow.parquet as pq
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from pydantic import PrivateAttr

from analytics_pipeline.resources.aws.s3_lease import LEASE_SECONDS, s3_table_lease
from analytics_pipeline.resources.aws.s3_ranged_reader import S3RangedReader
from analytics_pipeline.resources.lake_lock import LOCK_WAIT_SECONDS
from analytics_pipeline.resources.store import (
    STREAM_CHUNK_BYTES,
    LakeStore,
    LandingObject,
    LandingObjectGone,
    UnsafePathError,
    safe_relative,
    unless_gone,
    whole_version,
)

MiB = 1024 * 1024
# S3's own limits: at most 1000 keys per ListObjectsV2 page and per DeleteObjects call.
S3_PAGE_KEYS = 1000
S3_DELETE_KEYS = 1000
# The archived copy remembers the content version of the delivery it holds (S3 user metadata),
# because an ETag is no MD5 for multipart copies or SSE-KMS objects.
VERSION_METADATA = "content-version"
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_CHANGED = frozenset({"PreconditionFailed", "412"})
# Errors in the middle of a response body, which botocore does not retry by itself.
_BODY_ERRORS = (IncompleteReadError, ReadTimeoutError, ResponseStreamingError)
_BODY_ATTEMPTS = 3


class _Missing(Exception):
    """The object is not there (404)."""


class _Changed(Exception):
    """The object is no longer the version being read (412 on If-Match)."""


class S3StoreError(RuntimeError):
    """An S3 call failed for good (after botocore's retries); names the bucket and key."""


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _s3_error(action: str, bucket: str, key: str, error: ClientError) -> S3StoreError:
    details = error.response.get("Error", {})
    return S3StoreError(
        f"{action} s3://{bucket}/{key} failed: {details.get('Code', '?')}: "
        f"{details.get('Message', error)}"
    )


def _landing_key_is_listed(relative: str) -> bool:
    """The keys LocalLakeStore would list: no directory markers, no dot-names at any depth.

    A key that could not exist as a local path ('a//b', '../b') is left out too: a run would
    only fail on it; it stays in the landing bucket for a person to look at.
    """
    if not relative or relative.endswith("/"):
        return False
    parts = relative.split("/")
    if any(part.startswith(".") for part in parts):
        return False
    try:
        safe_relative(relative)
    except UnsafePathError:
        return False
    return True


class S3LakeStore(LakeStore):
    """The lake in two S3 buckets, with the same paths as the local lake directory."""

    landing_bucket: str
    lake_bucket: str
    region_name: str | None = None
    max_concurrency: int = 32
    # Above this size a write is a multipart upload of parts of multipart_chunk_bytes.
    multipart_threshold_bytes: int = 64 * MiB
    multipart_chunk_bytes: int = 16 * MiB
    list_page_size: int = S3_PAGE_KEYS
    lock_wait_seconds: float = LOCK_WAIT_SECONDS
    lease_seconds: float = LEASE_SECONDS

    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    # ETag of each landing object as read, so archiving moves exactly what was read.
    _read_etags: dict[tuple[str, str], str] = PrivateAttr(default_factory=dict)

    # clients

    def _client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = boto3.session.Session().client(
                    service,
                    region_name=self.region_name,
                    config=Config(
                        retries={"mode": "adaptive", "max_attempts": 10},
                        max_pool_connections=max(10, self.max_concurrency),
                    ),
                )
                self._clients[service] = client
            return client

    def s3_client(self) -> Any:
        """The store's boto3 S3 client (adaptive retries, a pool for max_concurrency GETs)."""
        return self._client("s3")

    def _transfer_config(self) -> TransferConfig:
        return TransferConfig(
            multipart_threshold=self.multipart_threshold_bytes,
            multipart_chunksize=self.multipart_chunk_bytes,
            max_concurrency=min(self.max_concurrency, 10),
        )

    def _landing_key(self, dataset: str, key: str) -> str:
        return str(safe_relative(f"landing/{dataset}/{key}"))

    def _lake_key(self, path: str) -> str:
        return str(safe_relative(path))

    def _prefix(self, path: str) -> str:
        return f"{safe_relative(path)}/"

    def _list(self, bucket: str, prefix: str, **params: Any) -> Iterator[dict[str, Any]]:
        paginator = self.s3_client().get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(
                Bucket=bucket,
                Prefix=prefix,
                PaginationConfig={"PageSize": self.list_page_size},
                **params,
            ):
                yield from page.get("Contents", [])
        except ClientError as error:
            raise _s3_error("ListObjectsV2", bucket, prefix, error) from error

    def ensure_layout(self) -> None:
        """The buckets come from Terraform; check both are there and reachable."""
        for bucket in (self.landing_bucket, self.lake_bucket):
            try:
                self.s3_client().head_bucket(Bucket=bucket)
            except ClientError as error:
                raise _s3_error("HeadBucket", bucket, "", error) from error

    # landing

    def list_landing(self, dataset: str) -> Iterator[LandingObject]:
        prefix = self._prefix(f"landing/{dataset}")
        for item in self._list(self.landing_bucket, prefix):
            relative = item["Key"][len(prefix) :]
            if _landing_key_is_listed(relative):
                yield LandingObject(
                    dataset, relative, int(item["Size"]), item["LastModified"].timestamp()
                )

    def read_landing(self, dataset: str, key: str, max_bytes: int) -> tuple[bytes, str]:
        """At most max_bytes + 1 bytes, streamed, and the md5 of what was read.

        The md5 of the bytes, not the ETag: it is the same value for a plain upload read
        whole, and stays the content's for multipart and SSE-KMS objects too.
        """
        s3_key = self._landing_key(dataset, key)
        for attempt in range(_BODY_ATTEMPTS):
            try:
                response = self.s3_client().get_object(Bucket=self.landing_bucket, Key=s3_key)
            except ClientError as error:
                if _error_code(error) in _NOT_FOUND:
                    raise LandingObjectGone(f"landing/{dataset}/{key}") from None
                raise _s3_error("GetObject", self.landing_bucket, s3_key, error) from error
            try:
                data = _read_at_most(response["Body"], max_bytes + 1)
                break
            except _BODY_ERRORS as error:
                if attempt + 1 == _BODY_ATTEMPTS:
                    raise S3StoreError(
                        f"GetObject s3://{self.landing_bucket}/{s3_key} failed: "
                        f"the body broke off {_BODY_ATTEMPTS} times: {error}"
                    ) from error
        with self._lock:
            self._read_etags[(dataset, key)] = response["ETag"]
        return data, whole_version(data, max_bytes)

    def iter_landing(
        self, dataset: str, key: str, chunk_bytes: int = STREAM_CHUNK_BYTES, offset: int = 0
    ) -> Iterator[bytes]:
        """The object streamed, chunk_bytes at a time; the version read_landing read (If-Match
        its ETag), else the current one, remembered for archiving. A body that breaks off is
        resumed where it stopped (a ranged GET of the same ETag), up to 3 times in a row."""
        s3_key = self._landing_key(dataset, key)
        with self._lock:
            etag = self._read_etags.get((dataset, key))
        try:
            chunks = self._stream(self.landing_bucket, s3_key, chunk_bytes, etag, offset)
            for chunk, current in chunks:
                if etag is None:
                    etag = current
                    with self._lock:
                        self._read_etags[(dataset, key)] = current
                yield chunk
        except _Missing:
            raise LandingObjectGone(f"landing/{dataset}/{key}") from None
        except _Changed:
            raise LandingObjectGone(
                f"landing/{dataset}/{key} (replaced since it was read)"
            ) from None

    def _stream(
        self, bucket: str, key: str, chunk_bytes: int, etag: str | None, offset: int = 0
    ) -> Iterator[tuple[bytes, str]]:
        """(chunk, ETag) pairs of one object version from `offset`; resumes a broken body
        with a Range GET."""
        failures = 0
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if etag is not None:
                params["IfMatch"] = etag
            if offset:
                params["Range"] = f"bytes={offset}-"
            try:
                response = self.s3_client().get_object(**params)
            except ClientError as error:
                code = _error_code(error)
                if code in _NOT_FOUND:
                    raise _Missing from None
                if code in _CHANGED:
                    raise _Changed from None
                if code == "InvalidRange" and offset:
                    return  # the object ended exactly where the body broke off
                raise _s3_error("GetObject", bucket, key, error) from error
            etag = etag or response["ETag"]
            body = response["Body"]
            try:
                while chunk := body.read(chunk_bytes):
                    offset += len(chunk)
                    failures = 0
                    yield chunk, etag
                return
            except _BODY_ERRORS as error:
                failures += 1
                if failures == _BODY_ATTEMPTS:
                    raise S3StoreError(
                        f"GetObject s3://{bucket}/{key} failed: the body broke off "
                        f"{_BODY_ATTEMPTS} times at byte {offset}: {error}"
                    ) from error
            finally:
                body.close()

    def read_landing_many(
        self, dataset: str, keys: list[str], max_bytes: int
    ) -> Iterator[tuple[str, tuple[bytes, str] | None]]:
        """Up to max_concurrency GETs at once, yielded in the order of `keys`.

        At most 2 x max_concurrency objects are read ahead of the consumer, so memory stays
        bounded by that many times (max_bytes + 1) however long the list is.
        """
        if not keys:
            return
        self.s3_client()  # built once, before the threads share it
        ahead = 2 * self.max_concurrency
        remaining = iter(keys)
        pending: deque[tuple[str, Future[tuple[bytes, str] | None]]] = deque()
        with ThreadPoolExecutor(
            max_workers=min(self.max_concurrency, len(keys)), thread_name_prefix="s3-get"
        ) as pool:

            def submit_next() -> None:
                for key in remaining:
                    pending.append((key, pool.submit(self._read_if_there, dataset, key, max_bytes)))
                    return

            for _ in range(ahead):
                submit_next()
            try:
                while pending:
                    key, future = pending.popleft()
                    result = future.result()
                    submit_next()
                    yield key, result
            finally:
                for _, future in pending:
                    future.cancel()

    def _read_if_there(self, dataset: str, key: str, max_bytes: int) -> tuple[bytes, str] | None:
        return unless_gone(self.read_landing, dataset, key, max_bytes)

    def archive_landing(self, dataset: str, key: str, version: str | None = None) -> str:
        """Copy the object server-side to archive/<dataset>/<key> in the lake bucket, then
        delete it from landing; returns the archive path used.

        As locally, a different earlier delivery already archived keeps its bytes: this one
        goes beside it as <key>~<version[:16]>. Copy and delete are conditional on the ETag
        this store read, so a delivery that replaced the object since is neither archived
        nor deleted: it stays in landing for the next run (LandingObjectGone here).
        """
        client = self.s3_client()
        source = self._landing_key(dataset, key)
        with self._lock:
            read_etag = self._read_etags.pop((dataset, key), None)
        try:
            head = client.head_object(Bucket=self.landing_bucket, Key=source)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                raise LandingObjectGone(f"landing/{dataset}/{key}") from None
            raise _s3_error("HeadObject", self.landing_bucket, source, error) from error
        etag = read_etag or head["ETag"]
        if etag != head["ETag"]:
            raise LandingObjectGone(f"landing/{dataset}/{key} (replaced since it was read)")

        archive_path = f"archive/{dataset}/{key}"
        if version:
            archived = self._archived_version(archive_path)
            if archived is not None and archived != version:
                archive_path = f"{archive_path}~{version[:16]}"
        target = self._lake_key(archive_path)
        extra: dict[str, Any] = {"CopySourceIfMatch": etag}
        if version:
            extra |= {"Metadata": {VERSION_METADATA: version}, "MetadataDirective": "REPLACE"}
        try:
            # The managed copy switches to UploadPartCopy above the threshold: CopyObject
            # alone stops at 5 GB.
            client.copy(
                {"Bucket": self.landing_bucket, "Key": source},
                self.lake_bucket,
                target,
                ExtraArgs=extra,
                Config=self._transfer_config(),
            )
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND | _CHANGED:
                raise LandingObjectGone(f"landing/{dataset}/{key}") from None
            raise _s3_error(
                f"Copy to s3://{self.lake_bucket}/{target} from", self.landing_bucket, source, error
            ) from error
        try:
            client.delete_object(Bucket=self.landing_bucket, Key=source, IfMatch=etag)
        except ClientError as error:
            # Replaced (412) after the copy: the new delivery stays for its own run.
            # Already deleted (404): another run archived the same object first.
            if _error_code(error) not in _NOT_FOUND | _CHANGED:
                raise _s3_error("DeleteObject", self.landing_bucket, source, error) from error
        return archive_path

    def archive_landing_many(
        self, dataset: str, items: list[tuple[str, str | None]]
    ) -> Iterator[tuple[str, str | None]]:
        """Up to max_concurrency archivings at once (each is three or four round trips),
        yielded in the order given."""
        if not items:
            return
        self.s3_client()  # built once, before the threads share it

        def archive(item: tuple[str, str | None]) -> tuple[str, str | None]:
            return item[0], unless_gone(self.archive_landing, dataset, *item)

        with ThreadPoolExecutor(
            max_workers=min(self.max_concurrency, len(items)), thread_name_prefix="s3-archive"
        ) as pool:
            yield from pool.map(archive, items)

    def _archived_version(self, archive_path: str) -> str | None:
        """The content version of what is archived at this path, '' if unknown, None if none."""
        key = self._lake_key(archive_path)
        try:
            head = self.s3_client().head_object(Bucket=self.lake_bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                return None
            raise _s3_error("HeadObject", self.lake_bucket, key, error) from error
        stored = head.get("Metadata", {}).get(VERSION_METADATA)
        if stored:
            return stored
        etag = head["ETag"].strip('"')
        return "" if "-" in etag else etag

    # lake objects

    def write_bytes(self, path: str, data: bytes) -> None:
        """One PUT, or a multipart upload above the threshold; both appear atomically."""
        if len(data) >= self.multipart_threshold_bytes:
            self.write_stream(path, io.BytesIO(data))
            return
        key = self._lake_key(path)
        try:
            self.s3_client().put_object(Bucket=self.lake_bucket, Key=key, Body=data)
        except ClientError as error:
            raise _s3_error("PutObject", self.lake_bucket, key, error) from error

    def write_stream(self, path: str, source: BinaryIO) -> None:
        """A multipart upload read from the source a part at a time (memory stays bounded)."""
        key = self._lake_key(path)
        try:
            self.s3_client().upload_fileobj(
                source, self.lake_bucket, key, Config=self._transfer_config()
            )
        except ClientError as error:
            raise _s3_error("PutObject", self.lake_bucket, key, error) from error
        except S3UploadFailedError as error:
            raise S3StoreError(
                f"multipart upload to s3://{self.lake_bucket}/{key} failed: {error}"
            ) from error

    def iter_bytes(self, path: str, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
        key = self._lake_key(path)
        try:
            for chunk, _ in self._stream(self.lake_bucket, key, chunk_bytes, None):
                yield chunk
        except _Missing:
            raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
        except _Changed:
            raise S3StoreError(f"s3://{self.lake_bucket}/{key} changed while it was read") from None

    def read_bytes(self, path: str) -> bytes:
        key = self._lake_key(path)
        try:
            response = self.s3_client().get_object(Bucket=self.lake_bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
            raise _s3_error("GetObject", self.lake_bucket, key, error) from error
        with response["Body"] as body:
            return body.read()

    def parquet_footer(self, path: str) -> pq.FileMetaData:
        """The footer by ranged GETs (the last 64 KiB, more only for a longer footer)."""
        key = self._lake_key(path)
        try:
            with S3RangedReader(self.s3_client(), self.lake_bucket, key) as reader:
                return pq.read_metadata(reader)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
            raise _s3_error("GetObject", self.lake_bucket, key, error) from error

    def size(self, path: str) -> int:
        key = self._lake_key(path)
        try:
            head = self.s3_client().head_object(Bucket=self.lake_bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
            raise _s3_error("HeadObject", self.lake_bucket, key, error) from error
        return int(head["ContentLength"])

    def table_lock(self, table: str, owner: str = "") -> AbstractContextManager[None]:
        """A lease object locks/<table> in the lake bucket (outside parquet/, which Athena
        reads), renewed while held; a dead holder's lease runs out and is taken over."""
        return s3_table_lease(
            self.s3_client(),
            self.lake_bucket,
            table,
            owner,
            lease_seconds=self.lease_seconds,
            timeout=self.lock_wait_seconds,
        )

    def exists(self, path: str) -> bool:
        """An object, or a 'directory' (a prefix with objects under it), as locally."""
        key = self._lake_key(path)
        try:
            self.s3_client().head_object(Bucket=self.lake_bucket, Key=key)
            return True
        except ClientError as error:
            if _error_code(error) not in _NOT_FOUND:
                raise _s3_error("HeadObject", self.lake_bucket, key, error) from error
        try:
            listed = self.s3_client().list_objects_v2(
                Bucket=self.lake_bucket, Prefix=f"{key}/", MaxKeys=1
            )
        except ClientError as error:
            raise _s3_error("ListObjectsV2", self.lake_bucket, f"{key}/", error) from error
        return bool(listed.get("Contents"))

    def list_files(self, prefix: str) -> list[str]:
        """Lake paths of the objects under a prefix (a directory), sorted; dot-names excluded."""
        return sorted(
            item["Key"]
            for item in self._list(self.lake_bucket, self._prefix(prefix))
            if not item["Key"].endswith("/") and not item["Key"].rsplit("/", 1)[-1].startswith(".")
        )

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under a prefix (a directory), 1000 keys per DeleteObjects."""
        base = self._prefix(prefix)
        client = self.s3_client()
        batch: list[dict[str, str]] = []

        def flush() -> None:
            try:
                response = client.delete_objects(
                    Bucket=self.lake_bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except ClientError as error:
                raise _s3_error("DeleteObjects", self.lake_bucket, base, error) from error
            failed = response.get("Errors", [])
            if failed:
                first = failed[0]
                raise S3StoreError(
                    f"DeleteObjects s3://{self.lake_bucket}/{base} failed for {len(failed)} "
                    f"keys, e.g. {first.get('Key')}: {first.get('Code')}: {first.get('Message')}"
                )
            batch.clear()

        for item in self._list(self.lake_bucket, base):
            batch.append({"Key": item["Key"]})
            if len(batch) == S3_DELETE_KEYS:
                flush()
        if batch:
            flush()

    def delete_files(self, paths: list[str]) -> None:
        """DeleteObjects, 1000 keys per call; S3 does not mind keys that are not there."""
        client = self.s3_client()
        keys = [self._lake_key(p) for p in paths]
        for offset in range(0, len(keys), S3_DELETE_KEYS):
            batch = [{"Key": k} for k in keys[offset : offset + S3_DELETE_KEYS]]
            try:
                response = client.delete_objects(
                    Bucket=self.lake_bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except ClientError as error:
                raise _s3_error(
                    "DeleteObjects", self.lake_bucket, batch[0]["Key"], error
                ) from error
            failed = response.get("Errors", [])
            if failed:
                first = failed[0]
                raise S3StoreError(
                    f"DeleteObjects s3://{self.lake_bucket} failed for {len(failed)} keys, "
                    f"e.g. {first.get('Key')}: {first.get('Code')}: {first.get('Message')}"
                )

    def location(self, path: str) -> str:
        """The s3:// URI a query engine or the Glue catalog reads."""
        return f"s3://{self.lake_bucket}/{self._lake_key(path)}"


def _read_at_most(body: Any, limit: int) -> bytes:
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
