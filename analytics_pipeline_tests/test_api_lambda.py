"""The API's Lambda handler invoked with synthetic API Gateway HTTP API (v2) events, over a
real local lake: the same answers and errors as the app served directly; and the image's
entry (awslambdaric, as the Dockerfile's lambda target starts it) answering one through a
local stand-in for Lambda's runtime API."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from analytics_pipeline.serving import aws_lambda
from analytics_pipeline.serving.api_keys import KeyFile
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline.settings import PROJECT_ROOT
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


# The image's entry, through the Lambda runtime API


class RuntimeApi(ThreadingHTTPServer):
    """Lambda's runtime API, as much as a function process uses: it hands out the queued
    events (`next` waits for one) and collects what the function posts back."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RuntimeApiHandler)
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.posts: queue.Queue[tuple[str, bytes]] = queue.Queue()


class RuntimeApiHandler(BaseHTTPRequestHandler):
    server: RuntimeApi

    def do_GET(self) -> None:
        assert self.path == "/2018-06-01/runtime/invocation/next", self.path
        event = self.server.events.get()
        if event is None:  # the test is over
            self.send_error(503)
            return
        body = json.dumps(event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "invocation-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", "4102444800000")
        arn = "arn:aws:lambda:us-east-1:123456789012:function:analytics-dev-api"
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", arn)
        # Always sent by Lambda; awslambdaric 4.2's native client crashes without it.
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000001")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.posts.put((self.path, self.rfile.read(length)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def lambda_target_command() -> list[str]:
    """ENTRYPOINT + CMD of the Dockerfile's lambda stage, with this interpreter for its venv's."""
    stage = (PROJECT_ROOT / "Dockerfile").read_text().split(" AS lambda\n", 1)[1]
    stage = stage.split("\nFROM ", 1)[0]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", stage, re.M).group(1))  # type: ignore[union-attr]
    command = json.loads(re.search(r"^CMD (.*)$", stage, re.M).group(1))  # type: ignore[union-attr]
    assert entrypoint[0] == "/app/.venv/bin/python"
    return [sys.executable, *entrypoint[1:], *command]


@pytest.fixture
def runtime_api() -> Iterator[RuntimeApi]:
    server = RuntimeApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.events.put(None)
        server.shutdown()


def test_the_images_entry_answers_an_http_api_event_through_the_runtime_api(
    keys: dict[str, str], runtime_api: RuntimeApi, tmp_path: Path
) -> None:
    host, port = runtime_api.server_address[:2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_LAMBDA_RUNTIME_API"] = f"{host}:{port}"
    runtime_api.events.put(http_api_event(STATS, f"level=client&{PERIOD}", keys["client=c-2"]))
    process = subprocess.Popen(
        lambda_target_command(),
        cwd=tmp_path,
        env=env,  # the keys fixture's ANALYTICS_* variables: the local lake
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        path, body = runtime_api.posts.get(timeout=120)
    except queue.Empty:  # it died or hangs: its output says why
        path, body = "", b""
    finally:
        # The runtime client waits for its next event in native code and may not heed SIGTERM
        # (a real Lambda freezes it): the answer is in, so stop it outright.
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    assert path == "/2018-06-01/runtime/invocation/invocation-1/response", output[-2000:]
    response = json.loads(body)
    assert response["statusCode"] == 200, response
    rows = json.loads(response["body"])["rows"]
    assert [row["client_id"] for row in rows] == ["c-2"]
