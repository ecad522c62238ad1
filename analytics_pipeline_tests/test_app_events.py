"""The source app's own events, as its Firehose delivers them, through the real pipeline.

The app records custom Pinpoint events (SignUpEvent, SignInEvent); Amplify adds its standard
auth events; other events (PageView) reach the stream too. Each event is timed by its
endpoint's EffectiveDate, which can fall on another day than the client's event_timestamp.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
import pytest

from analytics_pipeline.cli.process import ProcessSummary, process_landing
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.ingest import LANDING_RECONCILES
from analytics_pipeline.defs.keys import quarantine_key, staged_key
from analytics_pipeline_tests.lake_helpers import drop, ndjson, quarantine_lines, query
from analytics_pipeline_tests.local_lake import fresh_lake

KEY = "2024/03/02/00/pinpoint-events-firehose-1-2024-03-02-00-00-09-5a1b2c3d.json"


def millis(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def pinpoint_event(
    event_type: str, effective: str, client_clock: str, session: str, attributes: dict[str, str]
) -> dict[str, Any]:
    """One event as Pinpoint streams it: the fields the app reads, and the rest it ignores."""
    return {
        "event_type": event_type,
        "event_timestamp": millis(client_clock),
        "arrival_timestamp": millis(client_clock) + 2_345,
        "event_version": "3.1",
        "application": {
            "app_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "cognito_identity_pool_id": "us-west-2:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            "sdk": {"name": "aws-amplify", "version": "5.3.12"},
        },
        "client": {"client_id": "2f3e4d5c-6b7a-4899-aabb-ccddeeff0011"},
        "device": {"platform": {"name": "macos", "version": "10.15.7"}},
        "session": {"session_id": session, "start_timestamp": millis(client_clock) - 60_000},
        "attributes": attributes,
        "awsAccountId": "123456789012",
        "endpoint": {
            "ChannelType": "IN_APP",
            "EndpointStatus": "ACTIVE",
            "OptOut": "ALL",
            "EffectiveDate": effective,
            "User": {"UserId": "us-west-2:7c6b5a49-3827-4615-a4b3-c2d1e0f9a8b7"},
        },
    }


SIGN_IN_ATTRIBUTES = {"email": "ana@example.com", "id": "u-42", "is_test_user": "false"}
EVENTS = [
    # line 1: EffectiveDate and the client's clock on the same day, seconds apart.
    pinpoint_event(
        "SignUpEvent",
        "2024-03-01T12:34:56.789Z",
        "2024-03-01T12:35:10.123",
        "sess-1",
        {"email": "ana@example.com"},
    ),
    # line 2: EffectiveDate just before midnight, the client's clock already the next day.
    pinpoint_event(
        "SignInEvent",
        "2024-03-01T23:59:58.500Z",
        "2024-03-02T00:00:03.250",
        "sess-2",
        {**SIGN_IN_ATTRIBUTES, "is_test_user": "true", "user_type": "admin"},
    ),
    # line 3: Amplify cannot send null, so it sends "null".
    pinpoint_event(
        "SignInEvent",
        "2024-03-02T08:15:00.000Z",
        "2024-03-02T08:15:01.000",
        "sess-3",
        {"email": "bo@example.com", "id": "null", "is_test_user": "null", "user_type": "null"},
    ),
    # line 4: a page the app tracks; no table takes it.
    pinpoint_event(
        "PageView",
        "2024-03-02T08:16:00.000Z",
        "2024-03-02T08:16:00.500",
        "sess-3",
        {"page": "/pricing"},
    ),
    # line 5: Amplify's own auth event, the same kind of sign-in.
    pinpoint_event(
        "_userauth.sign_in",
        "2024-03-02T09:00:00.000Z",
        "2024-03-02T09:00:00.100",
        "sess-4",
        {**SIGN_IN_ATTRIBUTES, "user_type": "customer"},
    ),
    # line 6: a sign-up with a mistyped email: malformed, not unrouted.
    pinpoint_event(
        "SignUpEvent",
        "2024-03-02T10:00:00.000Z",
        "2024-03-02T10:00:00.000",
        "sess-5",
        {"email": "cy@example"},
    ),
    # line 7: the client's clock a day behind its EffectiveDate.
    pinpoint_event(
        "_userauth.sign_up",
        "2024-03-03T00:00:01.000Z",
        "2024-03-02T23:59:59.000",
        "sess-6",
        {"email": "di@example.com"},
    ),
]


@dataclass(frozen=True)
class Processed:
    lake_dir: Path
    instance: dg.DagsterInstance
    summary: ProcessSummary


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processed]:
    lake_dir = tmp_path_factory.mktemp("app_events") / "lake"
    settings = fresh_lake(lake_dir)
    drop(lake_dir, "app_events", KEY, ndjson(EVENTS))
    with dg.DagsterInstance.ephemeral() as instance:
        summary = process_landing(build_definitions(settings), instance)
        yield Processed(lake_dir, instance, summary)


def test_every_run_succeeds(processed: Processed) -> None:
    assert processed.summary.failed_runs == []
    assert processed.summary.ingest_runs == 1


def test_sign_ups_of_both_kinds_are_in_their_table_by_effective_date(processed: Processed) -> None:
    assert query(processed.lake_dir, "SELECT * FROM sign_up_events ORDER BY datetime") == [
        (
            "SignUpEvent",
            datetime(2024, 3, 1, 12, 34, 56, 789000),
            "sess-1",
            "ana@example.com",
            "2024-03-01",
        ),
        (
            "_userauth.sign_up",
            datetime(2024, 3, 3, 0, 0, 1),
            "sess-6",
            "di@example.com",
            "2024-03-03",
        ),
    ]


def test_sign_ins_are_typed_with_null_literals_as_null(processed: Processed) -> None:
    assert query(processed.lake_dir, "SELECT * FROM sign_in_events ORDER BY datetime") == [
        (
            "SignInEvent",
            datetime(2024, 3, 1, 23, 59, 58, 500000),
            "sess-2",
            "ana@example.com",
            "u-42",
            True,
            "admin",
            "2024-03-01",
        ),
        (
            "SignInEvent",
            datetime(2024, 3, 2, 8, 15),
            "sess-3",
            "bo@example.com",
            None,
            None,
            None,
            "2024-03-02",
        ),
        (
            "_userauth.sign_in",
            datetime(2024, 3, 2, 9),
            "sess-4",
            "ana@example.com",
            "u-42",
            False,
            "customer",
            "2024-03-02",
        ),
    ]


def test_tables_hold_only_their_declared_columns(processed: Processed) -> None:
    def columns(table: str) -> list[str]:
        return [row[0] for row in query(processed.lake_dir, f"DESCRIBE {table}")]

    assert columns("sign_up_events") == ["event_type", "datetime", "session_id", "email", "dt"]
    assert columns("sign_in_events") == [
        "event_type", "datetime", "session_id", "email", "id", "is_test_user", "user_type", "dt"
    ]  # fmt: skip


def test_event_timestamp_is_staged_as_its_own_field(processed: Processed) -> None:
    staged = sorted((processed.lake_dir / "staged" / "app_events").rglob("*.parquet"))
    rows = [row for path in staged for row in pq.read_table(path).to_pylist()]
    by_line = {row["_source_line"]: row for row in rows}
    assert sorted(by_line) == [1, 2, 3, 5, 7]
    assert by_line[2]["event_timestamp"] == datetime(2024, 3, 2, 0, 0, 3, 250000)
    assert by_line[2]["datetime"] == datetime(2024, 3, 1, 23, 59, 58, 500000)
    assert by_line[7]["event_timestamp"] == datetime(2024, 3, 2, 23, 59, 59)
    assert "effective_date" not in by_line[1]


def test_page_view_is_quarantined_as_unrouted_and_the_bad_email_as_invalid(
    processed: Processed,
) -> None:
    lines = quarantine_lines(processed.lake_dir, "app_events")
    assert [(q["source_key"], q["line"], q["reason"]) for q in lines] == [
        (KEY, 4, "event_type 'PageView' is not routed to any table"),
        (KEY, 6, "invalid email 'cy@example' in field attributes.email"),
    ]
    assert lines[0]["raw"] == ndjson([EVENTS[3]]).rstrip("\n")


def test_quarantine_metadata_counts_unrouted_apart_from_rejected(processed: Processed) -> None:
    [record] = processed.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=quarantine_key("app_events")), limit=10
    ).records
    metadata = record.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["unrouted_records"].value == 1
    assert metadata["rejected_records"].value == 1


def test_landing_reconciles_with_unrouted_records_in_quarantine(processed: Processed) -> None:
    evaluations = [
        entry.dagster_event.event_specific_data
        for run in processed.instance.get_runs()
        for entry in processed.instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]
    [reconciled] = [
        e
        for e in evaluations
        if e.asset_check_key == dg.AssetCheckKey(staged_key("app_events"), LANDING_RECONCILES)
    ]
    assert reconciled.passed
    assert not (processed.lake_dir / "landing" / "app_events" / KEY).exists()
