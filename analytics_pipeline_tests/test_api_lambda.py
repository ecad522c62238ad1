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
from local_servers.lambda_runtime import PERIOD, STATS, RuntimeApi, http_api_event


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
