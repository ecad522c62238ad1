"""The analytics API over a real local lake (Parquet + the DuckDB catalog): counts over the
whole period, every key scope against every level, bad input, and the key store."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analytics_pipeline.cli import api_key
from analytics_pipeline.serving.api_keys import KeyFile, key_digest
from analytics_pipeline.serving.app import create_app
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.local_lake import fresh_lake
from analytics_pipeline_tests.web_requests_lake import (
    LINES,
    line,
    publish_web_requests,
    request_rows_by_day,
)

PERIOD = {"from": "2024-01-01", "to": "2024-01-03"}
SCOPES = ("global", "client=c-1", "reseller=c-1/r-1", "client=c-2")


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    lake_dir = tmp_path / "lake"
    settings = fresh_lake(lake_dir)
    publish_web_requests(lake_dir, request_rows_by_day(LINES))
    return dataclasses.replace(settings, api_keys_file=tmp_path / "keys.json")


@pytest.fixture
def keys(api_settings: Settings) -> dict[str, str]:
    store = KeyFile(api_settings.api_keys_file)
    return {scope: store.add_key(Scope.parse(scope)) for scope in SCOPES}


@pytest.fixture
def client(api_settings: Settings) -> TestClient:
    return TestClient(create_app(api_settings))


def get(client: TestClient, key: str | None, path: str, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(path, params=params, headers=headers)


def stats(client: TestClient, key: str | None, **params: str) -> Any:
    return get(client, key, "/v1/web-requests/stats", **{**PERIOD, **params})


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return ["/".join(str(v) for k, v in row.items() if k.endswith("_id")) for row in rows]


# counts


def test_global_counts_a_session_over_two_days_once(client, keys):
    response = stats(client, keys["global"], level="global")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "level": "global",
        "from": "2024-01-01",
        "to": "2024-01-03",
        "rows": [
            {
                "unique_sessions": 4,
                "requests": 6,
                "requests_per_session": 1.5,
                "products_per_request": pytest.approx(4 / 6),
            }
        ],
    }
    assert response.headers["X-Query-Engine"] == "duckdb"


def test_by_day_gives_each_days_distinct_counts_whose_sum_is_not_the_period(client, keys):
    rows = stats(client, keys["global"], level="global", by="day").json()["rows"]

    assert [(r["dt"], r["unique_sessions"], r["requests"]) for r in rows] == [
        ("2024-01-01", 2, 3),
        ("2024-01-02", 2, 2),
        ("2024-01-03", 1, 1),
    ]
    assert sum(r["unique_sessions"] for r in rows) == 5  # s-1 twice: why the period is asked


def test_each_level_groups_by_its_ids(client, keys):
    def table(level: str) -> list[tuple[str, int, int]]:
        rows = stats(client, keys["global"], level=level).json()["rows"]
        pairs = zip(ids(rows), rows, strict=True)
        return [(i, r["unique_sessions"], r["requests"]) for i, r in pairs]

    assert table("client") == [("c-1", 3, 4), ("c-2", 1, 2)]
    assert table("reseller") == [("c-1/r-1", 2, 3), ("c-1/r-2", 1, 1), ("c-2/r-1", 1, 2)]
    assert table("user") == [
        ("c-1/r-1/u-1", 1, 2),
        ("c-1/r-1/u-2", 1, 1),
        ("c-1/r-2/u-3", 1, 1),
        ("c-2/r-1/u-9", 1, 2),
    ]
    user_row = stats(client, keys["global"], level="user", user_id="u-1").json()["rows"][0]
    assert set(user_row) == {
        "client_id",
        "reseller_id",
        "user_id",
        "unique_sessions",
        "requests",
        "requests_per_session",
        "products_per_request",
    }
    assert user_row["products_per_request"] == 1.0  # q-1 touched two products, q-2 none


def test_a_period_without_data_has_no_rows(client, keys):
    response = stats(
        client, keys["global"], level="global", **{"from": "2023-01-01", "to": "2023-01-31"}
    )

    assert response.status_code == 200
    assert response.json()["rows"] == []


def test_a_day_published_while_the_api_runs_is_served_without_a_restart(client, keys, api_settings):
    def sessions() -> int:
        rows = stats(client, keys["global"], level="global", to="2024-01-04").json()["rows"]
        return rows[0]["unique_sessions"]

    before = sessions()
    publish_web_requests(
        api_settings.lake_dir,
        request_rows_by_day([line("2024-01-04T18:00:00", "s-9", "q-9", "c-2/r-1/u-9")]),
    )

    assert (before, sessions()) == (4, 5)


def test_a_lake_without_a_catalog_is_unavailable_not_an_error(tmp_path, keys, api_settings):
    empty = dataclasses.replace(api_settings, lake_dir=tmp_path / "empty")

    response = stats(TestClient(create_app(empty)), keys["global"], level="global")

    assert response.status_code == 503
    assert "no catalog yet" in response.json()["detail"]


# scopes x levels

# scope -> level -> the ids it sees with no filter, or 403
VISIBLE: dict[str, dict[str, list[str] | int]] = {
    "global": {
        "global": [""],
        "client": ["c-1", "c-2"],
        "reseller": ["c-1/r-1", "c-1/r-2", "c-2/r-1"],
        "user": ["c-1/r-1/u-1", "c-1/r-1/u-2", "c-1/r-2/u-3", "c-2/r-1/u-9"],
    },
    "client=c-1": {
        "global": 403,
        "client": ["c-1"],
        "reseller": ["c-1/r-1", "c-1/r-2"],
        "user": ["c-1/r-1/u-1", "c-1/r-1/u-2", "c-1/r-2/u-3"],
    },
    "reseller=c-1/r-1": {
        "global": 403,
        "client": 403,
        "reseller": ["c-1/r-1"],
        "user": ["c-1/r-1/u-1", "c-1/r-1/u-2"],
    },
}


@pytest.mark.parametrize(
    ("scope", "level"), [(s, lv) for s, levels in VISIBLE.items() for lv in levels]
)
def test_a_key_sees_only_its_rows_at_every_level(client, keys, scope, level):
    response = stats(client, keys[scope], level=level)

    expected = VISIBLE[scope][level]
    if expected == 403:
        assert response.status_code == 403
        assert f"cannot ask level={level}" in response.json()["detail"]
    else:
        assert response.status_code == 200, response.text
        assert ids(response.json()["rows"]) == expected


@pytest.mark.parametrize(
    ("scope", "level", "filters"),
    [
        ("client=c-1", "client", {"client_id": "c-2"}),
        ("client=c-1", "reseller", {"client_id": "c-2", "reseller_id": "r-1"}),
        ("client=c-1", "user", {"client_id": "c-2"}),
        ("reseller=c-1/r-1", "reseller", {"reseller_id": "r-2"}),
        ("reseller=c-1/r-1", "user", {"client_id": "c-2"}),  # c-2 has an r-1 too
        ("reseller=c-1/r-1", "user", {"client_id": "c-2", "reseller_id": "r-1"}),
    ],
)
def test_another_tenants_id_is_forbidden(client, keys, scope, level, filters):
    response = stats(client, keys[scope], level=level, **filters)

    assert response.status_code == 403
    assert "may not see" in response.json()["detail"]


def test_a_filter_inside_the_scope_narrows_it(client, keys):
    response = stats(client, keys["client=c-1"], level="user", reseller_id="r-2")

    assert ids(response.json()["rows"]) == ["c-1/r-2/u-3"]


def test_a_reseller_key_filtering_on_a_user_of_another_reseller_sees_nothing(client, keys):
    response = stats(client, keys["reseller=c-1/r-1"], level="user", user_id="u-3")

    assert response.status_code == 200
    assert response.json()["rows"] == []


# auth


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ak_not-a-key", "Basic dXNlcjpwYXNz", "Bearer"],
)
def test_no_key_or_a_wrong_key_is_401(client, keys, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(
        "/v1/web-requests/stats", params={"level": "global", **PERIOD}, headers=headers
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_keys_are_stored_only_as_their_digest(keys, api_settings):
    stored = api_settings.api_keys_file.read_text()

    assert all(token not in stored for token in keys.values())
    digests = {entry["sha256"] for entry in json.loads(stored)["keys"]}
    assert digests == {key_digest(token) for token in keys.values()}
    assert api_settings.api_keys_file.stat().st_mode & 0o777 == 0o600


def test_the_cli_prints_a_new_key_once_and_it_works(client, api_settings, monkeypatch, capsys):
    monkeypatch.setenv("ANALYTICS_API_KEYS_FILE", str(api_settings.api_keys_file))
    monkeypatch.setenv("ANALYTICS_PIPELINE_ENV", "local")

    api_key.main(["--scope", "client=c-2"])

    token = capsys.readouterr().out.strip()
    assert token.startswith("ak_")
    assert ids(stats(client, token, level="client").json()["rows"]) == ["c-2"]


def test_the_cli_refuses_an_unknown_scope(capsys):
    with pytest.raises(SystemExit):
        api_key.main(["--scope", "tenant=c-1"])

    assert "unknown scope 'tenant=c-1'" in capsys.readouterr().err


# bad input


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"level": "global", "from": "2024-02-30", "to": "2024-03-01"},
            "from='2024-02-30' is not a date",
        ),
        (
            {"level": "global", "from": "2024-01-01", "to": "20240301"},
            "to='20240301' is not a date",
        ),
        ({"level": "global", "to": "2024-03-01"}, "missing parameter 'from'"),
        ({"level": "global", "from": "2024-03-02", "to": "2024-03-01"}, "is before from"),
        ({"level": "global", "from": "2023-01-01", "to": "2024-01-02"}, "at most 366"),
        ({"level": "planet", **PERIOD}, "unknown level 'planet'"),
        ({**PERIOD}, "missing parameter 'level'"),
        (
            {"level": "client", "reseller_id": "r-1", **PERIOD},
            "level=client does not take reseller_id",
        ),
        ({"level": "global", "client_id": "c-1", **PERIOD}, "level=global does not take client_id"),
        ({"level": "user", "client_id": "", **PERIOD}, "client_id must be 1 to 200"),
        ({"level": "global", "by": "week", **PERIOD}, "by='week' is not supported"),
        ({"level": "global", "clientid": "c-1", **PERIOD}, "unknown parameter 'clientid'"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(client, keys, params, message):
    response = client.get(
        "/v1/web-requests/stats",
        params=params,
        headers={"Authorization": f"Bearer {keys['global']}"},
    )

    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


def test_a_leap_year_of_366_days_is_allowed(client, keys):
    response = stats(
        client, keys["global"], level="global", **{"from": "2024-01-01", "to": "2024-12-31"}
    )

    assert response.status_code == 200


def test_an_injection_attempt_is_a_value_not_sql(client, keys):
    attack = "c-1' OR '1'='1"

    as_global = stats(client, keys["global"], level="client", client_id=attack)
    as_client = stats(client, keys["client=c-1"], level="client", client_id=attack)
    as_session = get(client, keys["global"], "/v1/web-requests/sessions/x' OR '1'='1", **PERIOD)

    assert (as_global.status_code, as_global.json()["rows"]) == (200, [])
    assert as_client.status_code == 403
    assert as_session.status_code == 404


# sessions


def test_a_session_lists_its_requests_with_their_products(client, keys):
    response = get(client, keys["client=c-1"], "/v1/web-requests/sessions/s-1", **PERIOD)

    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["request_id"], r["timestamp"], r["products"]) for r in body["requests"]] == [
        ("q-1", "2024-01-01T23:58:00.000Z", ["P-1", "P-2"]),
        ("q-2", "2024-01-02T00:01:00.000Z", []),
    ]
    assert body["requests"][0]["user_id"] == "u-1"


def test_a_session_is_read_only_within_the_dates_asked(client, keys):
    response = get(
        client,
        keys["global"],
        "/v1/web-requests/sessions/s-1",
        **{"from": "2024-01-02", "to": "2024-01-02"},
    )

    assert [r["request_id"] for r in response.json()["requests"]] == ["q-2"]


def test_another_tenants_session_is_not_found(client, keys):
    response = get(client, keys["client=c-2"], "/v1/web-requests/sessions/s-1", **PERIOD)

    assert response.status_code == 404


def test_a_session_refuses_an_unknown_parameter(client, keys):
    response = get(client, keys["global"], "/v1/web-requests/sessions/s-1", **PERIOD, user="u-1")

    assert response.status_code == 400
    assert "unknown parameter 'user'" in response.json()["detail"]


def test_a_session_needs_a_valid_range(client, keys):
    response = get(
        client, keys["global"], "/v1/web-requests/sessions/s-1", **{"from": "2024-01-01"}
    )

    assert response.status_code == 400
    assert "missing parameter 'to'" in response.json()["detail"]


# documentation


def test_openapi_and_docs_are_served_without_a_cdn(client):
    spec = client.get("/openapi.json").json()
    docs = client.get("/docs").text

    assert "/v1/web-requests/stats" in spec["paths"]
    assert "cdn" not in docs and "/swagger/swagger-ui-bundle.js" in docs
    assert client.get("/swagger/swagger-ui-bundle.js").status_code == 200
