"""Revoking API keys with `python -m analytics_pipeline.cli.api_key --revoke`: the key is
refused by an API that is already running, from the next request on; the others still work."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from analytics_pipeline.cli import api_key
from analytics_pipeline.serving.api_keys import KeyFile, SecretsManagerKeyStore, key_digest
from analytics_pipeline.serving.app import create_app
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.local_lake import fresh_lake
from analytics_pipeline_tests.web_requests_lake import (
    LINES,
    publish_web_requests,
    request_rows_by_day,
)

STATS = "/v1/web-requests/stats"
PERIOD = {"level": "client", "from": "2024-01-01", "to": "2024-01-03"}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    lake_dir = tmp_path / "lake"
    settings = fresh_lake(lake_dir)
    publish_web_requests(lake_dir, request_rows_by_day(LINES))
    keys_file = tmp_path / "keys.json"
    monkeypatch.setenv("ANALYTICS_PIPELINE_ENV", "local")
    monkeypatch.setenv("ANALYTICS_API_KEYS_FILE", str(keys_file))
    return dataclasses.replace(settings, api_keys_file=keys_file)


@pytest.fixture
def store(settings: Settings) -> KeyFile:
    return KeyFile(settings.api_keys_file)


def status(client: TestClient, token: str) -> int:
    return client.get(
        STATS, params=PERIOD, headers={"Authorization": f"Bearer {token}"}
    ).status_code


def key_id(token: str) -> str:
    return key_digest(token)[:12]


def revoke(selector: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        api_key.main(["--revoke", selector])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_revoked_key_is_refused_by_the_running_api_at_once(settings, store, capsys):
    kept, revoked = store.add_key(Scope.parse("global")), store.add_key(Scope.parse("client=c-1"))
    client = TestClient(create_app(settings))
    assert (status(client, kept), status(client, revoked)) == (200, 200)

    code, out, _ = revoke(key_id(revoked)[:6], capsys)

    assert code == 0
    assert out.startswith(f"revoked {key_id(revoked)} (client=c-1, created ")
    assert (status(client, kept), status(client, revoked)) == (200, 401)
    assert [e["id"] for e in store.entries()] == [key_id(kept)]


def test_a_key_can_be_revoked_by_the_key_itself(settings, store, capsys):
    token = store.add_key(Scope.parse("client=c-2"))
    client = TestClient(create_app(settings))
    assert status(client, token) == 200

    assert revoke(token, capsys)[0] == 0

    assert status(client, token) == 401
    assert store.entries() == []


def test_an_unknown_id_is_an_error_and_removes_nothing(settings, store, capsys):
    store.add_key(Scope.parse("global"))
    before = settings.api_keys_file.read_text()

    code, _, err = revoke("zzzzzz", capsys)  # not hex: no id starts with it

    assert code == 1
    assert "no API key with id" in err and str(settings.api_keys_file) in err
    assert settings.api_keys_file.read_text() == before


def test_an_unknown_key_is_an_error_that_does_not_echo_it(settings, store, capsys):
    store.add_key(Scope.parse("global"))
    code, _, err = revoke("ak_not-a-key-that-was-issued", capsys)
    assert code == 1
    assert "no API key with that key" in err
    assert "not-a-key" not in err


def test_a_prefix_of_several_ids_or_too_short_removes_nothing(settings, store, capsys):
    entries = [
        {"id": f"abcd{n}{n}{n}{n}0000", "sha256": f"abcd{n}{n}{n}{n}" + "0" * 56, "scope": "global"}
        for n in (1, 2)
    ]
    store.save({"keys": [{**e, "created": "2026-01-01T00:00:00+00:00"} for e in entries]})

    code, _, err = revoke("abcd", capsys)
    assert code == 1
    assert "'abcd' is the start of 2 key ids (abcd11110000, abcd22220000): give more" in err
    code, _, err = revoke("abc", capsys)
    assert code == 1 and "at least 4 characters" in err
    assert len(store.entries()) == 2
    assert revoke("abcd2", capsys)[0] == 0
    assert [e["id"] for e in store.entries()] == ["abcd11110000"]


def test_list_shows_ids_and_scopes_never_keys_or_digests(settings, store, capsys):
    token = store.add_key(Scope.parse("reseller=c-1/r-1"))
    api_key.main(["--list"])
    out = capsys.readouterr().out
    assert out.startswith(f"{key_id(token)}  reseller=c-1/r-1  ")
    assert token not in out and key_digest(token) not in out


def test_scope_and_revoke_together_are_refused(capsys):
    with pytest.raises(SystemExit):
        api_key.main(["--scope", "global", "--revoke", "abcd"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_revoking_from_the_secret_reaches_the_api_when_its_cache_expires():
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        cli_store = SecretsManagerKeyStore("api-keys", client)
        token = cli_store.add_key(Scope.parse("client=c-1"))
        api_store = SecretsManagerKeyStore("api-keys", client, cache_seconds=0)
        assert str(api_store.scope_for(token)) == "client=c-1"

        cli_store.revoke(key_id(token))

        assert cli_store.scope_for(token) is None  # the writer's own cache is dropped
        assert api_store.scope_for(token) is None
        stored = json.loads(client.get_secret_value(SecretId="api-keys")["SecretString"])
        assert stored == {"keys": []}
