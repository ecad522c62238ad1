"""The source database URL read from a Secrets Manager secret (moto), and its clear errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
import sqlalchemy as sa
from moto import mock_aws

from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.source_tables import extract_job_name, source_resource_key
from analytics_pipeline.resources.aws.source_secret import (
    SourceSecretError,
    source_url_from_secret,
)
from analytics_pipeline.resources.source_database import SourceDatabase
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import DATABASE, provisioned_aws_settings
from local_servers.db_servers import DatabaseServer

PASSWORD = "s3cr/t:p@ss"
RDS_SECRET = {
    "engine": "postgres",
    "host": "db.example.internal",
    "port": 5432,
    "username": "reader",
    "password": PASSWORD,
    "dbname": "movie_rental",
}


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def _secret(client: Any, name: str, value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return client.create_secret(Name=name, SecretString=text)["ARN"]


def test_rds_secret_by_name_or_arn_gives_the_url(secrets: Any) -> None:
    arn = _secret(secrets, "movie-rental-db", RDS_SECRET)
    for secret_id in ("movie-rental-db", arn):
        url = sa.make_url(source_url_from_secret(secrets, secret_id))
        assert url.drivername == "postgresql+psycopg"
        assert (url.username, url.password, url.host, url.port, url.database) == (
            "reader", PASSWORD, "db.example.internal", 5432, "movie_rental",
        )  # fmt: skip


def test_mariadb_engine_uses_pymysql(secrets: Any) -> None:
    _secret(secrets, "m", {**RDS_SECRET, "engine": "mariadb", "port": "3306"})
    url = sa.make_url(source_url_from_secret(secrets, "m"))
    assert (url.drivername, url.port) == ("mysql+pymysql", 3306)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            {k: v for k, v in RDS_SECRET.items() if k not in ("host", "dbname")},
            "lacks host, dbname",
        ),
        ({**RDS_SECRET, "engine": "oracle"}, "unsupported engine 'oracle'"),
        ({**RDS_SECRET, "port": "five"}, "non-numeric port"),
        ("not json " + PASSWORD, "is not a JSON object"),
    ],
)
def test_bad_secret_names_it_and_hides_the_password(
    secrets: Any, value: object, reason: str
) -> None:
    _secret(secrets, "bad-secret", value)
    with pytest.raises(SourceSecretError) as raised:
        source_url_from_secret(secrets, "bad-secret")
    assert "'bad-secret'" in str(raised.value) and reason in str(raised.value)
    assert PASSWORD not in str(raised.value) and raised.value.__cause__ is None


def test_missing_secret_is_named(secrets: Any) -> None:
    with pytest.raises(SourceSecretError, match="'nowhere'.*ResourceNotFoundException"):
        source_url_from_secret(secrets, "nowhere")


@pytest.fixture
def aws_lake(aws: None, tmp_path: Path) -> Settings:
    return provisioned_aws_settings(tmp_path)


def aws_definitions(settings: Settings, **source: str) -> dg.Definitions:
    """The aws deployment's definitions (moto), with its movie_rental source configured."""
    return build_definitions(dataclasses.replace(settings, **source))


def the_source(defs: dg.Definitions) -> SourceDatabase:
    return (defs.resources or {})[source_resource_key("movie_rental")]


def test_aws_extract_job_reads_its_url_from_the_secret_and_logs_no_password(
    aws_lake: Settings, postgres_server: DatabaseServer
) -> None:
    url = sa.make_url(postgres_server.fresh_database())  # the server asks for its password
    create_movie_rental(
        url.render_as_string(hide_password=False), end_date=date(2026, 11, 30), days=1, scale=0.1
    )
    secrets = boto3.client("secretsmanager")
    arn = _secret(
        secrets,
        "movie-rental-db",
        {**RDS_SECRET, "host": url.host, "port": url.port, "username": url.username,
         "password": url.password, "dbname": url.database},
    )  # fmt: skip
    defs = aws_definitions(aws_lake, movie_rental_db_secret=arn)
    with dg.instance_for_test() as instance:
        job = defs.resolve_job_def(extract_job_name("movie_rental"))
        # One table is enough here: its step stages it and serves it to Glue.
        rental = ["extract_movie_rental_rental"]
        result = job.execute_in_process(instance=instance, op_selection=rental)
        logged = [str(entry.dagster_event or entry.user_message) for entry in
                  instance.all_logs(result.run_id)]  # fmt: skip
    assert result.success
    glue = boto3.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]
    assert [t["Name"] for t in glue] == ["rental"]
    assert url.password and logged and not [line for line in logged if url.password in line]


def test_aws_source_from_a_missing_secret_fails_naming_it(aws_lake: Settings) -> None:
    database = the_source(aws_definitions(aws_lake, movie_rental_db_secret="movie-rental-gone"))
    assert database.exists()
    with pytest.raises(SourceSecretError, match="'movie-rental-gone'.*ResourceNotFoundException"):
        database.connection_url()


def test_aws_source_url_wins_over_the_secret_and_none_is_a_clear_error(
    aws_lake: Settings,
) -> None:
    given = "postgresql+psycopg://reader@db.internal/movie_rental"
    chosen = the_source(
        aws_definitions(aws_lake, movie_rental_db_url=given, movie_rental_db_secret="s")
    )
    assert chosen.connection_url() == given
    unset = the_source(aws_definitions(aws_lake))
    assert not unset.exists()  # make process skips it, as the demo's file before sample data
    with pytest.raises(SourceSecretError, match="ANALYTICS_MOVIE_RENTAL_DB_SECRET"):
        unset.connection_url()


def test_the_secret_is_named_by_its_environment_variable(tmp_path: Path) -> None:
    environ = {"ANALYTICS_LAKE_DIR": str(tmp_path), "ANALYTICS_MOVIE_RENTAL_DB_SECRET": " db "}
    assert Settings.from_env(environ).movie_rental_db_secret == "db"
