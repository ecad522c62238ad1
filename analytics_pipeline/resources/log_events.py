"""Where exported log events come from: the interface (aws/cloudwatch_logs.py implements it)."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from analytics_pipeline.lake.log_export import LogEvent


class LogEventSource(dg.ConfigurableResource):
    """A log group's events by event time."""

    def name(self) -> str:
        """The group's name, for quarantine source keys."""
        raise NotImplementedError

    def events(self, start_ms: int, end_ms: int) -> Iterator[LogEvent]:
        """Every event with start_ms <= timestamp < end_ms, across all streams."""
        raise NotImplementedError
