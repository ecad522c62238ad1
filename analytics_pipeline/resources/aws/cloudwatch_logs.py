"""A CloudWatch Logs log group read with FilterLogEvents, page by page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3

from analytics_pipeline.lake.log_export import LogEvent
from analytics_pipeline.resources.log_events import LogEventSource


class CloudWatchLogEvents(LogEventSource):
    """ANALYTICS_WEB_LOG_GROUP's events; the region and endpoint come from the AWS chain."""

    log_group: str
    page_size: int = 10000

    def name(self) -> str:
        return self.log_group

    def events(self, start_ms: int, end_ms: int) -> Iterator[LogEvent]:
        client = boto3.client("logs")
        # FilterLogEvents' endTime is inclusive; the window's end is not.
        request: dict[str, Any] = {
            "logGroupName": self.log_group,
            "startTime": start_ms,
            "endTime": end_ms - 1,
            "limit": self.page_size,
        }
        while True:
            page = client.filter_log_events(**request)
            for event in page.get("events", []):
                yield LogEvent(
                    event_id=event["eventId"],
                    timestamp_ms=int(event["timestamp"]),
                    message=event["message"],
                    stream=event.get("logStreamName", ""),
                )
            token = page.get("nextToken")
            # An empty page may still carry a token (the search goes on); the same token
            # back means the end.
            if not token or token == request.get("nextToken"):
                return
            request["nextToken"] = token
