"""A table's write lock on S3: a lease object `locks/<table>` in the lake bucket.

S3 has no locks, but it has conditional writes: a PUT with If-None-Match: * creates the lease
only if there is none, and a PUT or DELETE with If-Match: <ETag> changes it only if nobody
else has since. The holder renews the lease from a heartbeat thread; a lease whose holder
died runs out and is taken over by a conditional replace of exactly the expired version, so
of two writers that find it expired, one wins. Expiry is the holder's wall clock: hosts
agree to well under a second (NTP), and a lease lasts a minute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from analytics_pipeline.resources.aws.errors import NOT_FOUND, error_code
from analytics_pipeline.resources.lake_lock import (
    LockHolder,
    TableLockLost,
    TableLockTimeout,
    lock_name,
    poll_delays,
)

LEASE_SECONDS = 60.0
# Renewed this many times per lease: two renewals may fail (throttling) before it runs out.
RENEWALS_PER_LEASE = 3
# Someone else wrote first (412), or a concurrent conditional write to the key (409).
_LOST_RACE = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


@dataclass(frozen=True)
class _Lease:
    holder: LockHolder | None
    etag: str
    expires: float


class _HeldLease:
    """A lease this process holds: its current ETag, renewed until released."""

    def __init__(
        self, client: Any, bucket: str, key: str, holder: LockHolder, etag: str, seconds: float
    ):
        self.client, self.bucket, self.key = client, bucket, key
        self.holder, self.etag, self.seconds = holder, etag, seconds
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{key}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / RENEWALS_PER_LEASE):
            body = dataclasses.replace(self.holder, expires=time.time() + self.seconds)
            try:
                response = self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body.to_json(), IfMatch=self.etag
                )
            except ClientError as error:
                if error_code(error) in _LOST_RACE | NOT_FOUND:
                    self.lost = f"the lease was replaced or removed ({error_code(error)})"
                    return
                continue  # transient: the next renewal may still come in time
            self.etag = response["ETag"]

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.lost:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except ClientError as error:
            if error_code(error) in _LOST_RACE | NOT_FOUND:
                self.lost = (
                    f"the lease was replaced or removed before release ({error_code(error)})"
                )
                return
            raise


def _read_lease(client: Any, bucket: str, key: str, seconds: float) -> _Lease | None:
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise
    with response["Body"] as body:
        holder = LockHolder.from_json(body.read())
    # A lease we cannot read runs out a lease's length after it was last written.
    if holder is not None and holder.expires is not None:
        expires = holder.expires
    else:
        expires = response["LastModified"].timestamp() + seconds
    return _Lease(holder, response["ETag"], expires)


def _put(client: Any, bucket: str, key: str, body: str, **condition: str) -> str | None:
    """The new lease's ETag, or None if another writer got there first."""
    try:
        return str(client.put_object(Bucket=bucket, Key=key, Body=body, **condition)["ETag"])
    except ClientError as error:
        if error_code(error) in _LOST_RACE | NOT_FOUND:
            return None
        raise


def _acquire(
    client: Any, bucket: str, key: str, table: str, owner: str, seconds: float, timeout: float
) -> tuple[LockHolder, str]:
    """The lease as written, and its ETag."""
    started = time.monotonic()
    delays = poll_delays(timeout)
    while True:
        holder = LockHolder.me(owner, expires=time.time() + seconds)
        body = holder.to_json()
        etag = _put(client, bucket, key, body, IfNoneMatch="*")
        if etag is not None:
            return holder, etag
        current = _read_lease(client, bucket, key, seconds)
        if current is None:
            continue  # released between the two calls: try again at once
        if current.expires <= time.time():
            # The holder died: replace exactly the expired version, so one taker wins.
            etag = _put(client, bucket, key, body, IfMatch=current.etag)
            if etag is not None:
                return holder, etag
            continue
        delay = next(delays, None)
        if delay is None:
            raise TableLockTimeout(table, current.holder, time.monotonic() - started)
        time.sleep(delay)


@contextlib.contextmanager
def s3_table_lease(
    client: Any,
    bucket: str,
    table: str,
    owner: str = "",
    lease_seconds: float = LEASE_SECONDS,
    timeout: float = 30 * 60.0,
) -> Iterator[None]:
    """Hold the table's lease for the block; raises TableLockTimeout if a live holder keeps
    it past `timeout`, and TableLockLost if it was taken over while held."""
    key = f"locks/{lock_name(table)}"
    holder, etag = _acquire(client, bucket, key, table, owner, lease_seconds, timeout)
    held = _HeldLease(client, bucket, key, holder, etag, lease_seconds)
    try:
        yield
    finally:
        held.release()
    if held.lost:
        raise TableLockLost(f"table {table}: {held.lost} while {holder.describe()} held it")
