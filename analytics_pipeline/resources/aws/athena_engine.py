"""The query engine on AWS: Athena, in the Terraform workgroup, through boto3.

boto3 rather than pyathena: pyathena polls at a fixed interval and cancels only on
KeyboardInterrupt, while a terminated Dagster run raises DagsterExecutionInterruptedError
(a BaseException, not a KeyboardInterrupt), so its queries would keep running and billing.
Owning start / poll / stop here also lets botocore's Stubber test every state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import dagster as dg
import pyarrow as pa
from botocore.config import Config
from pydantic import PrivateAttr

from analytics_pipeline.lake.athena_cost import query_cost_usd
from analytics_pipeline.resources.engine import QueryEngine, QueryResult

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
RESULTS_PAGE_SIZE = 1000  # the most GetQueryResults returns per call

# Athena result column type -> Arrow type; anything else (array, map, row, json,
# varbinary, time zones) stays the string Athena returned.
ARROW_RESULT_TYPES: dict[str, pa.DataType] = {
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
    "varchar": pa.string(),
    "char": pa.string(),
    "string": pa.string(),
}

# Replaced in tests so that polling never sleeps.
_sleep = time.sleep


class AthenaQueryError(RuntimeError):
    """A query Athena failed or cancelled, with Athena's own reason and the query id."""

    def __init__(self, query_id: str, state: str, reason: str) -> None:
        super().__init__(f"Athena query {query_id} {state}: {reason}")
        self.query_id = query_id
        self.state = state
        self.reason = reason


class AthenaQueryTimeout(TimeoutError):
    """The query ran longer than the engine's timeout; it was stopped."""


def poll_intervals(first: float, cap: float) -> Iterator[float]:
    """Waits between status polls: short at first (most queries are quick), doubling to a cap."""
    interval = first
    while True:
        yield interval
        interval = min(interval * 2, cap)


def result_set_to_arrow(
    column_info: list[dict[str, Any]], rows: list[list[str | None]]
) -> pa.Table:
    """GetQueryResults values (all strings) as a typed Arrow table."""
    arrays = []
    for i, column in enumerate(column_info):
        values = pa.array([row[i] for row in rows], type=pa.string())
        kind = column["Type"].lower()
        if kind == "decimal":
            target: pa.DataType = pa.decimal128(column["Precision"], column["Scale"])
        else:
            target = ARROW_RESULT_TYPES.get(kind, pa.string())
        arrays.append(values.cast(target))
    return pa.table(arrays, names=[c["Name"] for c in column_info])


class AthenaEngine(QueryEngine):
    """Runs one Athena-dialect statement in the workgroup and returns its rows as Arrow."""

    database: str
    workgroup: str
    output_location: str  # s3:// URI for result files (the workgroup may enforce its own)
    region_name: str | None = None
    poll_interval_seconds: float = 0.2
    max_poll_interval_seconds: float = 5.0
    timeout_seconds: float | None = None

    _client: Any = PrivateAttr(default=None)
    # Days are queried two at a time: boto3 builds clients unsafely across threads.
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def athena_client(self) -> Any:
        with self._lock:
            if self._client is None:
                config = Config(retries={"mode": "adaptive", "max_attempts": 10})
                self._client = boto3.client("athena", region_name=self.region_name, config=config)
            return self._client

    def run_query(self, athena_sql: str) -> QueryResult:
        if not self.output_location.startswith("s3://"):
            raise ValueError(f"output_location must be an s3:// URI, got {self.output_location!r}")
        started = time.monotonic()
        query_id = self.athena_client().start_query_execution(
            QueryString=athena_sql,
            WorkGroup=self.workgroup,
            QueryExecutionContext={"Database": self.database},
            ResultConfiguration={"OutputLocation": self.output_location},
        )["QueryExecutionId"]
        execution = self.wait_for(query_id, started)
        status = execution["Status"]
        if status["State"] != "SUCCEEDED":
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
                "ErrorMessage", "no reason given"
            )
            raise AthenaQueryError(query_id, status["State"], reason)
        table = self.fetch_results(query_id)
        statistics = execution.get("Statistics", {})
        scanned = int(statistics.get("DataScannedInBytes", 0))
        stats: dict[str, Any] = {
            "athena_query_id": query_id,
            "athena_bytes_scanned": scanned,
            "athena_engine_ms": int(statistics.get("EngineExecutionTimeInMillis", 0)),
            "athena_queue_ms": int(statistics.get("QueryQueueTimeInMillis", 0)),
            "athena_cost_usd": query_cost_usd(
                scanned, statement_type=execution.get("StatementType", "DML")
            ),
        }
        return QueryResult(table, athena_sql, "athena", time.monotonic() - started, stats)

    def wait_for(self, query_id: str, started: float | None = None) -> dict[str, Any]:
        """Poll until the query ends; stop it if we are interrupted or time out."""
        started = time.monotonic() if started is None else started
        client = self.athena_client()
        try:
            for interval in poll_intervals(
                self.poll_interval_seconds, self.max_poll_interval_seconds
            ):
                execution = client.get_query_execution(QueryExecutionId=query_id)
                if execution["QueryExecution"]["Status"]["State"] in TERMINAL_STATES:
                    return execution["QueryExecution"]
                if (
                    self.timeout_seconds is not None
                    and time.monotonic() - started > self.timeout_seconds
                ):
                    raise AthenaQueryTimeout(
                        f"Athena query {query_id} ran longer than {self.timeout_seconds}s"
                    )
                _sleep(interval)
        except BaseException:
            # A terminated run raises DagsterExecutionInterruptedError here; without a stop
            # the query keeps running (and billing) after the run is gone.
            self.stop(query_id)
            raise
        raise AssertionError("unreachable")  # poll_intervals never ends

    def stop(self, query_id: str) -> None:
        try:
            self.athena_client().stop_query_execution(QueryExecutionId=query_id)
        except Exception as error:  # the original interruption matters more
            dg.get_dagster_logger().warning(f"could not stop Athena query {query_id}: {error}")

    def fetch_results(self, query_id: str) -> pa.Table:
        paginator = self.athena_client().get_paginator("get_query_results")
        column_info: list[dict[str, Any]] | None = None
        rows: list[list[str | None]] = []
        for page in paginator.paginate(
            QueryExecutionId=query_id, PaginationConfig={"PageSize": RESULTS_PAGE_SIZE}
        ):
            result = page["ResultSet"]
            page_rows = [[d.get("VarCharValue") for d in r["Data"]] for r in result["Rows"]]
            if column_info is None:
                column_info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                names = [c["Name"] for c in column_info]
                # A SELECT's first row repeats the column labels.
                if page_rows and page_rows[0] == names:
                    page_rows = page_rows[1:]
            rows.extend(page_rows)
        return result_set_to_arrow(column_info or [], rows)
