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

import functools
import io
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

import boto3
import pyarrow.parquet as pq
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from analytics_pipeline.resources.aws.errors import NOT_FOUND, S3StoreError, error_code, s3_error
from analytics_pipeline.resources.aws.read_ahead import read_ahead_in_order
from analytics_pipeline.resources.aws.s3_archive import archive_landing_object
from analytics_pipeline.resources.aws.s3_batch_delete import delete_keys
from analytics_pipeline.resources.aws.s3_lease import LEASE_SECONDS, s3_table_lease
from analytics_pipeline.resources.aws.s3_ranged_reader import S3RangedReader
from analytics_pipeline.resources.aws.s3_reads import (
    MiB,
    ObjectChanged,
    ObjectMissing,
    get_at_most,
    stream_object,
)
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

# S3's own limit: at most 1000 keys per ListObjectsV2 page.
S3_PAGE_KEYS = 1000


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
            raise s3_error("ListObjectsV2", bucket, prefix, error) from error

    def ensure_layout(self) -> None:
        """The buckets come from Terraform; check both are there and reachable."""
        for bucket in (self.landing_bucket, self.lake_bucket):
            try:
                self.s3_client().head_bucket(Bucket=bucket)
            except ClientError as error:
                raise s3_error("HeadBucket", bucket, "", error) from error

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
        try:
            data, etag = get_at_most(self.s3_client(), self.landing_bucket, s3_key, max_bytes + 1)
        except ObjectMissing:
            raise LandingObjectGone(f"landing/{dataset}/{key}") from None
        with self._lock:
            self._read_etags[(dataset, key)] = etag
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
            chunks = stream_object(
                self.s3_client(), self.landing_bucket, s3_key, chunk_bytes, etag, offset
            )
            for chunk, current in chunks:
                if etag is None:
                    etag = current
                    with self._lock:
                        self._read_etags[(dataset, key)] = current
                yield chunk
        except ObjectMissing:
            raise LandingObjectGone(f"landing/{dataset}/{key}") from None
        except ObjectChanged:
            raise LandingObjectGone(
                f"landing/{dataset}/{key} (replaced since it was read)"
            ) from None

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
        yield from read_ahead_in_order(
            functools.partial(self._read_if_there, dataset, max_bytes=max_bytes),
            keys,
            self.max_concurrency,
            2 * self.max_concurrency,
            "s3-get",
        )

    def _read_if_there(self, dataset: str, key: str, max_bytes: int) -> tuple[bytes, str] | None:
        return unless_gone(self.read_landing, dataset, key, max_bytes)

    def archive_landing(self, dataset: str, key: str, version: str | None = None) -> str:
        """A server-side copy to archive/<dataset>/<key>, then a delete from landing, both
        conditional on the ETag this store read (see archive_landing_object)."""
        with self._lock:
            read_etag = self._read_etags.pop((dataset, key), None)
        return archive_landing_object(
            self.s3_client(),
            self.landing_bucket,
            self.lake_bucket,
            dataset,
            key,
            read_etag=read_etag,
            version=version,
            transfer=self._transfer_config(),
        )

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

    # lake objects

    def write_landing(self, dataset: str, key: str, data: bytes) -> None:
        s3_key = self._landing_key(dataset, key)
        try:
            self.s3_client().put_object(Bucket=self.landing_bucket, Key=s3_key, Body=data)
        except ClientError as error:
            raise s3_error("PutObject", self.landing_bucket, s3_key, error) from error

    def write_bytes(self, path: str, data: bytes) -> None:
        """One PUT, or a multipart upload above the threshold; both appear atomically."""
        if len(data) >= self.multipart_threshold_bytes:
            self.write_stream(path, io.BytesIO(data))
            return
        key = self._lake_key(path)
        try:
            self.s3_client().put_object(Bucket=self.lake_bucket, Key=key, Body=data)
        except ClientError as error:
            raise s3_error("PutObject", self.lake_bucket, key, error) from error

    def write_stream(self, path: str, source: BinaryIO) -> None:
        """A multipart upload read from the source a part at a time (memory stays bounded)."""
        key = self._lake_key(path)
        try:
            self.s3_client().upload_fileobj(
                source, self.lake_bucket, key, Config=self._transfer_config()
            )
        except ClientError as error:
            raise s3_error("PutObject", self.lake_bucket, key, error) from error
        except S3UploadFailedError as error:
            raise S3StoreError(
                f"multipart upload to s3://{self.lake_bucket}/{key} failed: {error}"
            ) from error

    def copy_file(self, source: str, target: str) -> None:
        """S3's own copy: the bytes never leave the bucket (multipart above 8 MiB)."""
        key = self._lake_key(target)
        origin = {"Bucket": self.lake_bucket, "Key": self._lake_key(source)}
        try:
            self.s3_client().copy(origin, self.lake_bucket, key, Config=self._transfer_config())
        except ClientError as error:
            raise s3_error("CopyObject", self.lake_bucket, key, error) from error

    def iter_bytes(self, path: str, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
        key = self._lake_key(path)
        try:
            for chunk, _ in stream_object(
                self.s3_client(), self.lake_bucket, key, chunk_bytes, None
            ):
                yield chunk
        except ObjectMissing:
            raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
        except ObjectChanged:
            raise S3StoreError(f"s3://{self.lake_bucket}/{key} changed while it was read") from None

    def read_bytes(self, path: str) -> bytes:
        key = self._lake_key(path)
        try:
            response = self.s3_client().get_object(Bucket=self.lake_bucket, Key=key)
        except ClientError as error:
            if error_code(error) in NOT_FOUND:
                raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
            raise s3_error("GetObject", self.lake_bucket, key, error) from error
        with response["Body"] as body:
            return body.read()

    def parquet_footer(self, path: str) -> pq.FileMetaData:
        """The footer by ranged GETs (the last 64 KiB, more only for a longer footer)."""
        key = self._lake_key(path)
        try:
            with S3RangedReader(self.s3_client(), self.lake_bucket, key) as reader:
                return pq.read_metadata(reader)
        except ClientError as error:
            if error_code(error) in NOT_FOUND:
                raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
            raise s3_error("GetObject", self.lake_bucket, key, error) from error

    def size(self, path: str) -> int:
        key = self._lake_key(path)
        try:
            head = self.s3_client().head_object(Bucket=self.lake_bucket, Key=key)
        except ClientError as error:
            if error_code(error) in NOT_FOUND:
                raise FileNotFoundError(f"s3://{self.lake_bucket}/{key}") from None
            raise s3_error("HeadObject", self.lake_bucket, key, error) from error
        return int(head["ContentLength"])

    def table_lock(
        self, table: str, owner: str = "", wait_seconds: float | None = None
    ) -> AbstractContextManager[None]:
        """A lease object locks/<table> in the lake bucket (outside parquet/, which Athena
        reads), renewed while held; a dead holder's lease runs out and is taken over."""
        return s3_table_lease(
            self.s3_client(),
            self.lake_bucket,
            table,
            owner,
            lease_seconds=self.lease_seconds,
            timeout=self.lock_wait_seconds if wait_seconds is None else wait_seconds,
        )

    def exists(self, path: str) -> bool:
        """An object, or a 'directory' (a prefix with objects under it), as locally."""
        key = self._lake_key(path)
        try:
            self.s3_client().head_object(Bucket=self.lake_bucket, Key=key)
            return True
        except ClientError as error:
            if error_code(error) not in NOT_FOUND:
                raise s3_error("HeadObject", self.lake_bucket, key, error) from error
        try:
            listed = self.s3_client().list_objects_v2(
                Bucket=self.lake_bucket, Prefix=f"{key}/", MaxKeys=1
            )
        except ClientError as error:
            raise s3_error("ListObjectsV2", self.lake_bucket, f"{key}/", error) from error
        return bool(listed.get("Contents"))

    def list_files(self, prefix: str) -> list[str]:
        """Lake paths of the objects under a prefix (a directory), sorted; dot-names excluded."""
        return sorted(
            item["Key"]
            for item in self._list(self.lake_bucket, self._prefix(prefix))
            if not item["Key"].endswith("/") and not item["Key"].rsplit("/", 1)[-1].startswith(".")
        )

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under a prefix (a directory)."""
        base = self._prefix(prefix)
        listed = (item["Key"] for item in self._list(self.lake_bucket, base))
        delete_keys(self.s3_client(), self.lake_bucket, listed, base)

    def delete_files(self, paths: list[str]) -> None:
        keys = [self._lake_key(p) for p in paths]
        delete_keys(self.s3_client(), self.lake_bucket, iter(keys), keys[0] if keys else "")

    def location(self, path: str) -> str:
        """The s3:// URI a query engine or the Glue catalog reads."""
        return f"s3://{self.lake_bucket}/{self._lake_key(path)}"
