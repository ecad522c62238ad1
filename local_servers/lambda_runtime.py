"""A stand-in for Lambda's runtime API, and the event API Gateway's HTTP API sends: enough to
run the API's Lambda entry point (or its image) through one invocation on 127.0.0.1."""

from __future__ import annotations

import json
import queue
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATS = "/v1/web-requests/stats"
PERIOD = "from=2024-01-01&to=2024-01-03"


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
