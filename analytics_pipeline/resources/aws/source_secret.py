"""A source database's SQLAlchemy URL from a Secrets Manager secret in the standard RDS format.

The secret holds engine, host, port, username, password and dbname; the password goes only into
the URL, never into an error message or log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import ClientError

from analytics_pipeline.resources.aws.errors import error_code

REQUIRED_KEYS = ("engine", "host", "port", "username", "password", "dbname")
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "aurora-postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "aurora-mysql": "mysql+pymysql",
}


class SourceSecretError(RuntimeError):
    """An unreadable or unusable RDS secret; names the secret, never the password."""


def source_url_from_secret(secrets_client: Any, secret_id: str) -> str:
    """The SQLAlchemy URL described by the secret `secret_id` (its name or ARN)."""
    try:
        value = secrets_client.get_secret_value(SecretId=secret_id)
    except ClientError as error:
        raise SourceSecretError(
            f"cannot read source database secret {secret_id!r}: {error_code(error)}"
        ) from None
    try:
        secret = json.loads(value.get("SecretString") or "")
    except ValueError:
        secret = None
    if not isinstance(secret, dict):
        raise SourceSecretError(f"source database secret {secret_id!r} is not a JSON object")
    missing = [key for key in REQUIRED_KEYS if secret.get(key) in (None, "")]
    if missing:
        raise SourceSecretError(f"source database secret {secret_id!r} lacks {', '.join(missing)}")
    driver = DRIVERS.get(str(secret["engine"]).lower())
    if driver is None:
        raise SourceSecretError(
            f"source database secret {secret_id!r} has unsupported engine {secret['engine']!r}"
            f" (expected one of {', '.join(sorted(DRIVERS))})"
        )
    try:
        port = int(secret["port"])
    except (TypeError, ValueError):
        raise SourceSecretError(
            f"source database secret {secret_id!r} has a non-numeric port"
        ) from None
    url = sa.URL.create(
        driver,
        username=str(secret["username"]),
        password=str(secret["password"]),
        host=str(secret["host"]),
        port=port,
        database=str(secret["dbname"]),
    )
    return url.render_as_string(hide_password=False)


MOVIE_RENTAL_SECRET_ENV = "ANALYTICS_MOVIE_RENTAL_DB_SECRET"


def movie_rental_url_from_environment(secrets_client: Any, environ: Mapping[str, str]) -> str:
    """The movie_rental source URL from the secret named (or ARN'd) by its environment variable."""
    secret_id = environ.get(MOVIE_RENTAL_SECRET_ENV, "").strip()
    if not secret_id:
        raise SourceSecretError(f"{MOVIE_RENTAL_SECRET_ENV} is not set: no source database secret")
    return source_url_from_secret(secrets_client, secret_id)
