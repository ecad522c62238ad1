"""The source database URL read from a Secrets Manager secret (moto), and its clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from moto import mock_aws

from analytics_pipeline.resources.aws.source_secret import (
    MOVIE_RENTAL_SECRET_ENV,
    SourceSecretError,
    movie_rental_url_from_environment,
    source_url_from_secret,
)

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


def test_environment_variable_names_the_secret(secrets: Any) -> None:
    arn = _secret(secrets, "movie-rental-db", RDS_SECRET)
    url = movie_rental_url_from_environment(secrets, {MOVIE_RENTAL_SECRET_ENV: arn})
    assert sa.make_url(url).database == "movie_rental"
    with pytest.raises(SourceSecretError, match=f"{MOVIE_RENTAL_SECRET_ENV} is not set"):
        movie_rental_url_from_environment(secrets, {})
