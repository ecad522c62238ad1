"""The S3 table lease under moto (which honours If-None-Match and If-Match on PutObject and
If-Match on DeleteObject, answering 412 as S3 does)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from analytics_pipeline.resources.aws.s3_store import S3LakeStore
from analytics_pipeline.resources.lake_lock import LockHolder, TableLockLost, TableLockTimeout

LANDING = "analytics-landing"
LAKE = "analytics-lake"
KEY = "locks/products"


@pytest.fixture
def s3_store(aws: None) -> S3LakeStore:
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE, lock_wait_seconds=0.3)
    client = store.s3_client()
    client.create_bucket(Bucket=LANDING)
    client.create_bucket(Bucket=LAKE)
    return store


def lease(store: S3LakeStore) -> dict[str, Any]:
    return json.loads(store.s3_client().get_object(Bucket=LAKE, Key=KEY)["Body"].read())


def put_lease(store: S3LakeStore, owner: str, expires: float) -> str:
    body = LockHolder(owner, "elsewhere", 4242, time.time() - 100, expires).to_json()
    return str(store.s3_client().put_object(Bucket=LAKE, Key=KEY, Body=body)["ETag"])


def test_the_lease_names_its_holder_while_held_and_is_gone_after(s3_store: S3LakeStore) -> None:
    with s3_store.table_lock("products", owner="run r1"):
        held = lease(s3_store)
        assert held["owner"] == "run r1"
        assert held["expires"] > time.time()
    assert "Contents" not in s3_store.s3_client().list_objects_v2(Bucket=LAKE, Prefix="locks/")


def test_a_live_lease_makes_the_writer_wait_then_fail_naming_table_holder_and_expiry(
    s3_store: S3LakeStore,
) -> None:
    expires = time.time() + 600
    put_lease(s3_store, "run other-run", expires)
    gets = []
    s3_store.s3_client().meta.events.register(
        "before-call.s3.GetObject", lambda **_: gets.append(1)
    )
    with pytest.raises(TableLockTimeout) as caught, s3_store.table_lock("products"):
        pass
    message = str(caught.value)
    assert "table products" in message
    assert "run other-run (pid 4242 on elsewhere" in message
    assert f"lease expires {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}" in message
    assert len(gets) > 1, "it failed at once instead of polling"
    assert lease(s3_store)["owner"] == "run other-run"


def test_an_expired_lease_is_taken_over(s3_store: S3LakeStore) -> None:
    put_lease(s3_store, "run dead-run", time.time() - 1)
    with s3_store.table_lock("products", owner="run r2"):
        assert lease(s3_store)["owner"] == "run r2"


def test_of_two_takers_of_one_expired_lease_exactly_one_wins(aws: None) -> None:
    stores = [
        S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE, lock_wait_seconds=0.5)
        for _ in range(2)
    ]
    stores[0].s3_client().create_bucket(Bucket=LAKE)
    expired = put_lease(stores[0], "run dead-run", time.time() - 1)
    # Both takers read the expired lease before either replaces it. moto checks a condition
    # and stores the object in two steps, where S3 does both at once: one put at a time.
    both_read = threading.Barrier(2, timeout=30)
    one_at_a_time = threading.Lock()

    def serialized(real: Any) -> Any:
        def put_object(**params: Any) -> Any:
            if params.get("IfMatch") == expired:
                both_read.wait()
            with one_at_a_time:
                return real(**params)

        return put_object

    for store in stores:
        client = store.s3_client()
        client.put_object = serialized(client.put_object)

    outcomes: dict[str, str] = {}
    loser_done = threading.Event()

    def take(n: int) -> None:
        try:
            with stores[n].table_lock("products", owner=f"run taker-{n}"):
                outcomes[f"taker-{n}"] = "won"
                loser_done.wait(timeout=30)
        except TableLockTimeout as error:
            outcomes[f"taker-{n}"] = str(error)
            loser_done.set()

    threads = [threading.Thread(target=take, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    [loser] = set(outcomes) - set(winners)
    assert f"run {winners[0]}" in outcomes[loser]


def test_the_heartbeat_extends_the_lease_while_it_is_held(aws: None) -> None:
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE, lease_seconds=0.6)
    store.s3_client().create_bucket(Bucket=LAKE)
    with store.table_lock("products", owner="run r3"):
        first = lease(store)
        deadline = time.monotonic() + 30
        while (current := lease(store))["expires"] == first["expires"]:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
        assert current["expires"] > first["expires"]
        assert (current["owner"], current["since"]) == (first["owner"], first["since"])
    assert "Contents" not in store.s3_client().list_objects_v2(Bucket=LAKE, Prefix="locks/")


def test_a_lease_taken_over_while_held_fails_the_write(aws: None) -> None:
    store = S3LakeStore(landing_bucket=LANDING, lake_bucket=LAKE)
    store.s3_client().create_bucket(Bucket=LAKE)
    with (
        pytest.raises(TableLockLost, match="table products"),
        store.table_lock("products", owner="run stalled"),
    ):
        put_lease(store, "run taker", time.time() + 600)
    assert lease(store)["owner"] == "run taker"
