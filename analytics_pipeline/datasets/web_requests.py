"""NDJSON request logs of a multi-tenant web app (client > reseller > user)."""

from analytics_pipeline.datasets.spec import ISO_8601, DatasetSpec, Field, TableSpec

_IDS = ("session_id", "request_id", "client_id", "reseller_id", "user_id")

WEB_REQUESTS = DatasetSpec(
    name="web_requests",
    description="Web app request log lines, one per request and product touched.",
    layout="ndjson",
    fields=(
        Field("timestamp", "timestamp", timestamp_format=ISO_8601),
        *(Field(name, "string") for name in _IDS),
        Field("product_id", "string", required=False),
        Field("path", "string"),
    ),
    event_time_field="timestamp",
    tables=(
        TableSpec(
            "web_requests",
            ("timestamp", *_IDS, "product_id", "path"),
            key=("request_id", "product_id"),
            description="One row per request log line.",
        ),
    ),
)
