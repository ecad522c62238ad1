"""Pinpoint-style analytics events as Kinesis Firehose delivers them (nested NDJSON)."""

import re

from analytics_pipeline.datasets.spec import EPOCH_MILLIS, ISO_8601, DatasetSpec, Field, TableSpec

SIGN_UP = "_userauth.sign_up"
SIGN_IN = "_userauth.sign_in"

# Deliberately simple: one @, no spaces, a dot in the domain. Enough to reject typos.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")

APP_EVENTS = DatasetSpec(
    name="app_events",
    description="App analytics events from a Firehose stream, split into sign-ups and sign-ins.",
    layout="ndjson",
    fields=(
        Field("event_type", "string", allowed=(SIGN_UP, SIGN_IN)),
        Field("datetime", "timestamp", path=("event_timestamp",), timestamp_format=EPOCH_MILLIS),
        Field("session_id", "string", path=("session", "session_id")),
        Field(
            "email", "string", path=("attributes", "email"), pattern=EMAIL, null_literals=("null",)
        ),
        Field("id", "string", path=("attributes", "id"), required=False, null_literals=("null",)),
        Field(
            "is_test_user",
            "boolean",
            path=("attributes", "is_test_user"),
            required=False,
            null_literals=("null",),
        ),
        Field(
            "user_type",
            "string",
            path=("attributes", "user_type"),
            required=False,
            null_literals=("null",),
        ),
        # Firehose's own receipt time: staged (for delivery latency) but in neither table.
        Field(
            "arrival_timestamp",
            "timestamp",
            timestamp_format=EPOCH_MILLIS,
            required=False,
        ),
        Field(
            "effective_date",
            "timestamp",
            path=("endpoint", "EffectiveDate"),
            timestamp_format=ISO_8601,
        ),
    ),
    event_time_field="effective_date",
    tables=(
        TableSpec(
            "sign_up_events",
            ("event_type", "datetime", "session_id", "email"),
            where=("event_type", SIGN_UP),
            key=("session_id", "datetime", "email"),
            description="One row per sign-up event.",
        ),
        TableSpec(
            "sign_in_events",
            ("event_type", "datetime", "session_id", "email", "id", "is_test_user", "user_type"),
            where=("event_type", SIGN_IN),
            key=("session_id", "datetime", "email"),
            description="One row per sign-in event.",
        ),
    ),
)
