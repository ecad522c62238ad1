"""The API's engine on AWS: Athena through pyathena, in the Terraform workgroup.

Values go as ExecutionParameters (Athena substitutes them as literals, never as SQL text)
and identical queries within RESULT_REUSE_MINUTES reuse Athena's stored result: a viewer
reloading a chart costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from pyathena import connect
from pyathena.connection import Connection
from pyathena.error import Error as AthenaError

from analytics_pipeline.lake.athena_cost import query_cost_usd
from analytics_pipeline.lake.sql_text import sql_string_literal
from analytics_pipeline.serving.engine import Answer
from analytics_pipeline.serving.errors import UpstreamFailed

RESULT_REUSE_MINUTES = 60


class AthenaServingEngine:
    def __init__(
        self,
        *,
        database: str,
        workgroup: str,
        output_location: str,
        region_name: str | None = None,
    ) -> None:
        self.database = database
        self.workgroup = workgroup
        self.output_location = output_location
        self.region_name = region_name
        self._connection: Connection[Any] | None = None
        self._lock = threading.Lock()  # boto3 builds clients unsafely across threads

    def connection(self) -> Connection[Any]:
        with self._lock:
            if self._connection is None:
                self._connection = connect(
                    work_group=self.workgroup,
                    schema_name=self.database,
                    s3_staging_dir=self.output_location,
                    region_name=self.region_name,
                    kill_on_interrupt=True,
                    result_reuse_enable=True,
                    result_reuse_minutes=RESULT_REUSE_MINUTES,
                )
            return self._connection

    def query(self, athena_sql: str, params: Sequence[str]) -> Answer:
        started = time.monotonic()
        cursor = self.connection().cursor()
        try:
            # ExecutionParameters are literals: a string goes quoted (a quote inside doubled).
            try:
                cursor.execute(
                    athena_sql, [sql_string_literal(value) for value in params], paramstyle="qmark"
                )
            except AthenaError as error:
                raise UpstreamFailed(f"Athena failed the query: {error}") from error
            columns = [d[0] for d in cursor.description or []]
            rows = [tuple(row) for row in cursor.fetchall()]
            scanned = cursor.data_scanned_in_bytes or 0
            reused = bool(cursor.reused_previous_result)
            return Answer(
                columns,
                rows,
                "athena",
                time.monotonic() - started,
                query_id=cursor.query_id,
                bytes_scanned=scanned,
                # A reused result scans nothing and is not billed.
                cost_usd=0.0 if reused else query_cost_usd(scanned),
                reused_result=reused,
            )
        finally:
            cursor.close()
