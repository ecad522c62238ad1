"""A source database's SQLAlchemy URL from a Secrets Manager secret in the standard RDS format.

The secret holds engine, host, port, username, password and dbname; the password goes only into
the URL, never into an error message or log.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import ClientError
from dagster_aws.secretsmanager import SecretsManagerResource
from pydantic import PrivateAttr

from analytics_pipeline.resources.aws.errors import error_code
from analytics_pipeline.resources.source_database import SourceDatabase

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


class SecretSourceDatabase(SourceDatabase):
    """A source database whose URL is in a Secrets Manager secret (name or ARN), read on first
    connect: loading the definitions makes no AWS call, and no config the UI shows holds the
    password. An empty secret_id is a deployment that configured no source."""

    url: str = ""
    secret_id: str

    _url: str | None = PrivateAttr(default=None)

    def connection_url(self) -> str:
        if not self.secret_id:
            name = self.source.upper()
            raise SourceSecretError(
                f"source {self.source}: no database configured "
                f"(set ANALYTICS_{name}_DB_URL, or ANALYTICS_{name}_DB_SECRET to an RDS secret)"
            )
        if self._url is None:
            # dagster-aws's client (region and endpoint from the standard chain, retries); not a
            # nested resource, which sensors given these resources outside a context refuse.
            client = SecretsManagerResource().get_client()
            self._url = source_url_from_secret(client, self.secret_id)
        return self._url

    def exists(self) -> bool:
        """A server, not a file: there is a database exactly when a secret is named."""
        return bool(self.secret_id)
