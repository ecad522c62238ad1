"""The API's Lambda handler invoked with synthetic API Gateway HTTP API (v2) events, over a
real local lake: the same answers and errors as the app served directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analytics_pipeline.serving import aws_lambda
from analytics_pipeline.serving.api_keys import KeyFile
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline_tests.local_lake import fresh_lake
from analytics_pipeline_tests.web_requests_lake import (
    LINES,
    publish_web_requests,
    request_rows_by_day,
)


def http_api_event(path: str, query: str, key: str | None) -> dict[str, Any]:
    """What API Gateway's HTTP API sends a Lambda for GET path?query on its $default route."""
    headers = {"host": "abc123.execute-api.us-east-1.amazonaws.com"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "pytest",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "04/Dec/2026:19:00:00 +0000",
            "timeEpoch": 1796410800000,
        },
        "isBase64Encoded": False,
    }


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    lake_dir = tmp_path / "lake"
    fresh_lake(lake_dir)
    publish_web_requests(lake_dir, request_rows_by_day(LINES))
    keys_file = tmp_path / "keys.json"
    store = KeyFile(keys_file)
    issued = {scope: store.add_key(Scope.parse(scope)) for scope in ("global", "client=c-2")}
    monkeypatch.setenv("ANALYTICS_PIPELINE_ENV", "local")
    monkeypatch.setenv("ANALYTICS_LAKE_DIR", str(lake_dir))
    monkeypatch.setenv("ANALYTICS_API_KEYS_FILE", str(keys_file))
    monkeypatch.setattr(aws_lambda, "_adapter", None)
    return issued


def invoke(path: str, query: str = "", key: str | None = None) -> dict[str, Any]:
    return aws_lambda.handler(http_api_event(path, query, key), None)


STATS = "/v1/web-requests/stats"
PERIOD = "from=2024-01-01&to=2024-01-03"


def test_stats_through_the_handler(keys: dict[str, str]) -> None:
    response = invoke(STATS, f"level=global&{PERIOD}", keys["global"])
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert (body["level"], body["from"], body["to"]) == ("global", "2024-01-01", "2024-01-03")
    assert body["rows"][0]["unique_sessions"] == 4
    # Warm invocations reuse the app built on the first.
    adapter = aws_lambda._adapter
    assert invoke(STATS, f"level=global&{PERIOD}", keys["global"])["statusCode"] == 200
    assert aws_lambda._adapter is adapter


def test_errors_keep_their_status_through_the_handler(keys: dict[str, str]) -> None:
    unauthorised = invoke(STATS, f"level=global&{PERIOD}")
    assert unauthorised["statusCode"] == 401
    assert unauthorised["headers"]["www-authenticate"] == "Bearer"
    foreign = invoke(STATS, f"level=client&client_id=c-1&{PERIOD}", keys["client=c-2"])
    assert foreign["statusCode"] == 403
    bad = invoke(STATS, "level=global&from=2024-02-30&to=2024-03-01", keys["global"])
    assert bad["statusCode"] == 400
    assert "2024-02-30" in json.loads(bad["body"])["detail"]
