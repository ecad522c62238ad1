"""The API in the aws deployment, on moto: keys from a Secrets Manager secret, queries to
Athena through pyathena. moto's Athena runs no SQL (canned rows), so what is checked is
what is real: the SQL and ExecutionParameters sent, the workgroup, result reuse, headers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlglot
from fastapi.testclient import TestClient

from analytics_pipeline.serving.api_keys import SecretsManagerKeyStore
from analytics_pipeline.serving.app import create_app
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline_tests.lake_helpers import provisioned_aws_settings, queue_athena_rows

SECRET = "analytics/api-keys"
WORKGROUP = "analytics"
STATS_COLUMNS = [
    ("client_id", "varchar"),
    ("unique_sessions", "bigint"),
    ("requests", "bigint"),
    ("requests_per_session", "double"),
    ("products_per_request", "double"),
]


@pytest.fixture
def app_and_keys(aws: None, tmp_path: Path) -> tuple[Any, dict[str, str]]:
    settings = provisioned_aws_settings(tmp_path)
    settings = dataclasses.replace(
        settings,
        aws=dataclasses.replace(settings.aws, athena_workgroup=WORKGROUP),
        api_keys_secret=SECRET,
    )
    boto3.client("athena").create_work_group(Name=WORKGROUP)
    store = SecretsManagerKeyStore(SECRET, boto3.client("secretsmanager"))
    keys = {s: store.add_key(Scope.parse(s)) for s in ("global", "client=c-1")}
    return create_app(settings), keys


@pytest.fixture
def sent(app_and_keys: tuple[Any, dict[str, str]]) -> list[dict[str, Any]]:
    """Every StartQueryExecution request the app's Athena client sends."""
    requests_sent: list[dict[str, Any]] = []
    client = app_and_keys[0].state.engine.connection().client

    def record(params: dict[str, Any], **_: Any) -> None:
        requests_sent.append(dict(params))

    client.meta.events.register("provide-client-params.athena.StartQueryExecution", record)
    return requests_sent


def test_a_client_key_queries_athena_with_bound_parameters_in_the_workgroup(
    app_and_keys, sent, caplog
):
    app, keys = app_and_keys
    caplog.set_level("INFO", logger="analytics_pipeline.serving")
    queue_athena_rows(STATS_COLUMNS, [["c-1", "3", "4", "1.3333", "0.75"]])

    response = TestClient(app).get(
        "/v1/web-requests/stats",
        params={"level": "client", "from": "2024-01-01", "to": "2024-01-31"},
        headers={"Authorization": f"Bearer {keys['client=c-1']}"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [
        {
            "client_id": "c-1",
            "unique_sessions": 3,
            "requests": 4,
            "requests_per_session": 1.3333,
            "products_per_request": 0.75,
        }
    ]
    (request,) = sent
    assert request["WorkGroup"] == WORKGROUP
    assert request["ExecutionParameters"] == ["'2024-01-01'", "'2024-01-31'", "'c-1'"]
    assert request["ResultReuseConfiguration"] == {
        "ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 60}
    }
    assert (
        "FROM web_session_days\nWHERE dt BETWEEN ? AND ? AND client_id = ?"
        in request["QueryString"]
    )
    sqlglot.parse_one(request["QueryString"], read="athena")  # Athena's dialect parses it
    assert response.headers["X-Query-Engine"] == "athena"
    assert response.headers["X-Athena-Bytes-Scanned"] == "0"
    # moto scans nothing; Athena bills at least 10 MB a query: $5/TB of that.
    assert float(response.headers["X-Athena-Cost-USD"]) == pytest.approx(10 * 2**20 / 2**40 * 5)
    query_id = response.headers["X-Athena-Query-Id"]
    (logged,) = [r.getMessage() for r in caplog.records if query_id in r.getMessage()]
    assert "scope=client=c-1 engine=athena" in logged and "bytes_scanned=0 cost_usd=" in logged


def test_an_injection_attempt_goes_to_athena_as_one_quoted_literal(app_and_keys, sent):
    app, keys = app_and_keys
    queue_athena_rows(STATS_COLUMNS, [])

    response = TestClient(app).get(
        "/v1/web-requests/stats",
        params={
            "level": "client",
            "from": "2024-01-01",
            "to": "2024-01-01",
            "client_id": "x' OR '1'='1",
        },
        headers={"Authorization": f"Bearer {keys['global']}"},
    )

    assert response.status_code == 200
    assert sent[0]["ExecutionParameters"][-1] == "'x'' OR ''1''=''1'"
    assert "'1'" not in sent[0]["QueryString"]


def test_the_secret_decides_who_gets_in(app_and_keys):
    app, keys = app_and_keys
    client = TestClient(app)
    params = {"level": "global", "from": "2024-01-01", "to": "2024-01-01"}

    wrong = client.get(
        "/v1/web-requests/stats", params=params, headers={"Authorization": "Bearer ak_x"}
    )
    scoped = client.get(
        "/v1/web-requests/stats",
        params=params,
        headers={"Authorization": f"Bearer {keys['client=c-1']}"},
    )

    assert wrong.status_code == 401
    assert scoped.status_code == 403
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    assert all(token not in stored for token in keys.values())


def test_a_key_added_to_the_secret_counts_once_the_cache_expires(aws):
    secrets = boto3.client("secretsmanager")
    reader = SecretsManagerKeyStore(SECRET, secrets, cache_seconds=0)
    cached = SecretsManagerKeyStore(SECRET, secrets, cache_seconds=3600)
    assert reader.scopes() == {} and cached.scopes() == {}  # no secret yet: no keys

    token = SecretsManagerKeyStore(SECRET, secrets).add_key(Scope.parse("reseller=c-1/r-1"))

    assert reader.scope_for(token) == Scope("c-1", "r-1")
    assert cached.scope_for(token) is None  # still within its cache period


def test_a_malformed_secret_is_an_error_naming_it(aws):
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name=SECRET, SecretString='{"keys": [{"scope": "global"}]}')

    with pytest.raises(ValueError, match=f"secret {SECRET} is malformed"):
        SecretsManagerKeyStore(SECRET, secrets).scope_for("ak_anything")


def test_the_aws_deployment_refuses_to_start_without_a_key_secret(aws, tmp_path):
    settings = provisioned_aws_settings(tmp_path)

    with pytest.raises(ValueError, match="ANALYTICS_API_KEYS_SECRET"):
        create_app(settings)


def test_a_query_athena_refuses_is_a_502_with_athenas_reason(app_and_keys):
    app, keys = app_and_keys
    boto3.client("athena").delete_work_group(WorkGroup=WORKGROUP, RecursiveDeleteOption=True)

    response = TestClient(app).get(
        "/v1/web-requests/stats",
        params={"level": "global", "from": "2024-01-01", "to": "2024-01-01"},
        headers={"Authorization": f"Bearer {keys['global']}"},
    )

    assert response.status_code == 502
    assert "Athena failed the query" in response.json()["detail"]
    assert "WorkGroup does not exist" in response.json()["detail"]
