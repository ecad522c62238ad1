"""Pinpoint-style analytics events as Kinesis Firehose delivers them (nested NDJSON)."""

import re

from analytics_pipeline.datasets.spec import EPOCH_MILLIS, ISO_8601, DatasetSpec, Field, TableSpec

# The app's own custom events (what its Pinpoint -> Kinesis pipe let through).
SIGN_UP_EVENT = "SignUpEvent"
SIGN_IN_EVENT = "SignInEvent"
# Amplify's standard auth events: real events of the same kind, kept in the same tables.
USERAUTH_SIGN_UP = "_userauth.sign_up"
USERAUTH_SIGN_IN = "_userauth.sign_in"
SIGN_UP_TYPES = (SIGN_UP_EVENT, USERAUTH_SIGN_UP)
SIGN_IN_TYPES = (SIGN_IN_EVENT, USERAUTH_SIGN_IN)

# Deliberately simple: one @, no spaces, a dot in the domain. Enough to reject typos.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")

APP_EVENTS = DatasetSpec(
    name="app_events",
    description="App analytics events from a Firehose stream, split into sign-ups and sign-ins.",
    layout="ndjson",
    fields=(
        # Which types are accepted is the tables' routing (below), not a list here.
        Field("event_type", "string"),
        # The source system timed events by the endpoint's EffectiveDate, as do we.
        Field(
            "datetime",
            "timestamp",
            path=("endpoint", "EffectiveDate"),
            timestamp_format=ISO_8601,
        ),
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
        # The client's clock and Firehose's receipt time: staged (for latency and clock
        # skew) but in neither table, and not needed to place an event.
        Field("event_timestamp", "timestamp", timestamp_format=EPOCH_MILLIS, required=False),
        Field("arrival_timestamp", "timestamp", timestamp_format=EPOCH_MILLIS, required=False),
    ),
    event_time_field="datetime",
    tables=(
        TableSpec(
            "sign_up_events",
            ("event_type", "datetime", "session_id", "email"),
            where_in=("event_type", SIGN_UP_TYPES),
            key=("session_id", "datetime", "email"),
            description="One row per sign-up event.",
        ),
        TableSpec(
            "sign_in_events",
            ("event_type", "datetime", "session_id", "email", "id", "is_test_user", "user_type"),
            where_in=("event_type", SIGN_IN_TYPES),
            key=("session_id", "datetime", "email"),
            description="One row per sign-in event.",
        ),
    ),
)
