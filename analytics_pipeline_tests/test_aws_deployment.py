"""The aws deployment end to end against a moto server: same assets, other resources."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import dagster as dg
import pytest
from moto.server import ThreadedMotoServer

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.resources.aws.sqs_arrivals import SqsArrivals
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import (
    DATABASE,
    LAKE,
    LANDING,
    RESULTS,
    provisioned_aws_settings,
)


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's state lives in this process, not the server: start each test from none.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def aws_settings(moto_endpoint: str, tmp_path: Path) -> Settings:
    return provisioned_aws_settings(tmp_path)


def _keys(bucket: str, prefix: str) -> list[str]:
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_landing_bucket_files_become_parquet_objects_and_glue_partitions(
    aws_settings: Settings,
) -> None:
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=LANDING,
        Key="landing/products/1.json",
        Body=b'{"id": 1, "date": "2024-03-02", "product": "A"}',
    )
    s3.put_object(
        Bucket=LANDING,
        Key="landing/products/2.json",
        Body=b'{"id": 2, "date": "2024-03-03", "product": "B"}',
    )
    s3.put_object(
        Bucket=LANDING,
        Key="landing/products/bad.json",
        Body=b'{"id": 3, "date": "2020-02-30", "product": "B"}',
    )
    defs = build_definitions(aws_settings)
    with dg.instance_for_test() as instance:
        summary = process_landing(defs, instance)
    assert summary.ingest_runs == 1
    assert summary.materialized["table/products"] == 2

    assert _keys(LANDING, "landing/") == []
    assert _keys(LAKE, "archive/") == [
        "archive/products/1.json",
        "archive/products/2.json",
        "archive/products/bad.json",
    ]
    [quarantine] = _keys(LAKE, "quarantine/products/")
    body = s3.get_object(Bucket=LAKE, Key=quarantine)["Body"].read().decode()
    assert "invalid date '2020-02-30' in field date" in body
    parquet = _keys(LAKE, "parquet/products/")
    assert len(parquet) == 2 and all(k.endswith(".snappy.parquet") for k in parquet)

    partitions = boto3.client("glue").get_partitions(DatabaseName=DATABASE, TableName="products")
    locations = sorted(p["StorageDescriptor"]["Location"] for p in partitions["Partitions"])
    assert locations == sorted(f"s3://{LAKE}/{k.rsplit('/', 1)[0]}/" for k in parquet)
    table = boto3.client("glue").get_table(DatabaseName=DATABASE, Name="products")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "date", "product"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]


def test_aws_settings_come_from_the_documented_variables() -> None:
    environ = {
        "ANALYTICS_PIPELINE_ENV": "aws",
        "ANALYTICS_LANDING_BUCKET": LANDING,
        "ANALYTICS_LAKE_BUCKET": LAKE,
        "ANALYTICS_ATHENA_OUTPUT": f"s3://{RESULTS}/",
        "ANALYTICS_GLUE_DATABASE": DATABASE,
        "ANALYTICS_ATHENA_WORKGROUP": "analytics",
    }
    settings = Settings.from_env(environ)
    assert settings.aws is not None and settings.aws.landing_queue_url is None
    with pytest.raises(ValueError, match="ANALYTICS_LAKE_BUCKET"):
        Settings.from_env({k: v for k, v in environ.items() if k != "ANALYTICS_LAKE_BUCKET"})
    with_queue = replace(settings, aws=replace(settings.aws, landing_queue_url="https://q"))
    assert isinstance((build_definitions(with_queue).resources or {})["arrivals"], SqsArrivals)


def test_versions_no_glue_partition_points_at_are_swept_from_the_lake_bucket(
    aws_settings: Settings,
) -> None:
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=LANDING,
        Key="landing/products/1.json",
        Body=b'{"id": 1, "date": "2024-03-02", "product": "A"}',
    )
    defs = build_definitions(aws_settings)
    with dg.instance_for_test() as instance:
        assert process_landing(defs, instance).failed_runs == []
        [served] = _keys(LAKE, "parquet/products/")
        day = "parquet/products/dt=2024-03-02/"
        leftovers = [
            f"{day}20000101T000000000000Z-0ldf0ld0/part-00000.snappy.parquet",  # before deletion
            f"{day}29990101T000000000000Z-newe7000/part-00000.snappy.parquet",  # before repoint
        ]
        for key in leftovers:
            s3.copy_object(Bucket=LAKE, Key=key, CopySource={"Bucket": LAKE, "Key": served})
        summary = process_landing(defs, instance)
    assert sorted(summary.swept_versions) == sorted(k.rsplit("/", 1)[0] + "/" for k in leftovers)
    assert _keys(LAKE, "parquet/products/") == [served]
