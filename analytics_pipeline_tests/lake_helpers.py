"""Small helpers tests share: drop landing files, read tables back."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import duckdb
import requests

from analytics_pipeline.resources.local.catalog import CATALOG_FILE
from analytics_pipeline.settings import AwsSettings, Settings


def drop(lake_dir: Path, dataset: str, key: str, content: str | bytes) -> Path:
    """Put a file into landing/<dataset>/<key>, as a producer would."""
    path = lake_dir / "landing" / dataset / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def ndjson(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def query(lake_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run SQL against the catalog as a user's own read-only DuckDB session would."""
    con = duckdb.connect(str(lake_dir / CATALOG_FILE), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def quarantine_lines(lake_dir: Path, dataset: str) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((lake_dir / "quarantine" / dataset).glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def landing_files(lake_dir: Path, dataset: str) -> list[str]:
    base = lake_dir / "landing" / dataset
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


def iot_reading(**changes: Any) -> dict[str, Any]:
    """A valid iot_sensor_data record, every value a string as the stations send them."""
    return {
        "deviceid": "7",
        "datetime": "2024-05-01 10:00:00",
        "temperature": "21",
        "humidity": "50",
        "winddirection": "180",
        "windintensity": "3",
        "rainheight": "0",
        **changes,
    }


def web_request(**changes: Any) -> dict[str, Any]:
    """A valid web_requests log line."""
    return {
        "timestamp": "2024-05-01T10:00:00+00:00",
        "session_id": "s1",
        "request_id": "r1",
        "client_id": "c1",
        "reseller_id": "x1",
        "user_id": "u1",
        "product_id": "p1",
        "path": "/home",
        **changes,
    }


# The aws deployment's names in tests, and its buckets and database created (on moto).
LANDING, LAKE, RESULTS, DATABASE = "acme-landing", "acme-lake", "acme-athena-results", "acme_lake"


def aws_settings(tmp_path: Path, aws: AwsSettings, **changes: Any) -> Settings:
    """Settings of an aws deployment with these names (no lake directory is used)."""
    settings = Settings(
        env="aws",
        lake_dir=tmp_path / "unused",
        partitions_start=date(2020, 1, 1),
        ingest_batch_files=100,
        max_landing_file_bytes=1 << 20,
        landing_settle_seconds=0,
        aws=aws,
    )
    return dataclasses.replace(settings, **changes)


def provisioned_aws_settings(tmp_path: Path) -> Settings:
    """Settings of the aws deployment, with its buckets and Glue database created."""
    s3 = boto3.client("s3")
    for bucket in (LANDING, LAKE, RESULTS):
        s3.create_bucket(Bucket=bucket)
    boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    return aws_settings(
        tmp_path,
        AwsSettings(
            landing_bucket=LANDING,
            lake_bucket=LAKE,
            athena_output=f"s3://{RESULTS}/",
            glue_database=DATABASE,
            athena_workgroup="primary",
            landing_queue_url=None,
        ),
    )


def queue_athena_rows(
    columns: list[tuple[str, str]],
    rows: list[list[str]],
    moto_api: str = "http://motoapi.amazonaws.com",
) -> None:
    """The next Athena query's result, as moto serves it (in-process, or the server at moto_api)."""
    header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
    canned = {
        "results": [
            {
                "rows": [header, *({"Data": [{"VarCharValue": v} for v in r]} for r in rows)],
                "column_info": [
                    {"Name": name, "Type": kind, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN"}
                    for name, kind in columns
                ],
            }
        ],
        "region": "us-east-1",
    }
    response = requests.post(
        f"{moto_api}/moto-api/static/athena/query-results",
        data=json.dumps(canned),
        timeout=5,
    )
    assert response.status_code == 201
