"""Against real AWS: skipped unless ANALYTICS_AWS_ITEST=1 and credentials are present.

Run after `terraform apply` with the rendered environment (see terraform/README.md):
    ANALYTICS_AWS_ITEST=1 ANALYTICS_PIPELINE_ENV=aws <ANALYTICS_* vars> .venv/bin/pytest \\
        analytics_pipeline_tests/test_aws_real.py
It drops one products record dated 2020-01-02 under a unique key and checks it reaches the
Glue table and Athena; it costs one Athena query (10 MB minimum: $0.00005).
"""

from __future__ import annotations

import os
import uuid

import boto3
import dagster as dg
import pytest

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.resources.aws.athena_engine import AthenaEngine
from analytics_pipeline.settings import Settings

pytestmark = pytest.mark.skipif(
    os.environ.get("ANALYTICS_AWS_ITEST") != "1" or boto3.Session().get_credentials() is None,
    reason="real-AWS test: set ANALYTICS_AWS_ITEST=1 with AWS credentials and ANALYTICS_* vars",
)


def test_a_landing_object_reaches_glue_and_athena() -> None:
    settings = Settings.from_env()
    assert settings.env == "aws" and settings.aws is not None
    record_id = uuid.uuid4().int % 10**12
    key = f"landing/products/itest-{record_id}.json"
    boto3.client("s3").put_object(
        Bucket=settings.aws.landing_bucket,
        Key=key,
        Body=f'{{"id": {record_id}, "date": "2020-01-02", "product": "A"}}'.encode(),
    )
    with dg.instance_for_test() as instance:
        summary = process_landing(build_definitions(settings), instance)
    assert summary.ingest_runs >= 1, summary.lines()
    engine = AthenaEngine(
        database=settings.aws.glue_database,
        workgroup=settings.aws.athena_workgroup,
        output_location=settings.aws.athena_output,
    )
    result = engine.run_query(
        f"SELECT count(*) FROM products WHERE dt = '2020-01-02' AND id = {record_id}"
    )
    assert result.table.column(0)[0].as_py() == 1
    assert float(result.stats["athena_cost_usd"]) > 0
