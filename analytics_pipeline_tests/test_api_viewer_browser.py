"""The viewer in real headless Chromium, against `make api`'s server (uvicorn) on a free
127.0.0.1 port over a real local lake: charts and tables for a key, a scoped key refused
another client's rows, and nothing fetched from anywhere but the API itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from analytics_pipeline.serving.api_keys import KeyFile
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline_tests.browser import ARTIFACTS, chromium
from analytics_pipeline_tests.local_lake import fresh_lake
from analytics_pipeline_tests.web_requests_lake import (
    LINES,
    publish_web_requests,
    request_rows_by_day,
)
from local_servers.dev_server import PROJECT_ROOT, free_port

UI_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The API as `make api` runs it, and a key per scope the tests use."""
    root = tmp_path_factory.mktemp("viewer")
    fresh_lake(root / "lake")
    publish_web_requests(root / "lake", request_rows_by_day(LINES))
    store = KeyFile(root / "keys.json")
    keys = {scope: store.add_key(Scope.parse(scope)) for scope in ("global", "client=c-1")}
    port = free_port()
    env = {
        **os.environ,
        "ANALYTICS_PIPELINE_ENV": "local",
        "ANALYTICS_LAKE_DIR": str(root / "lake"),
        "ANALYTICS_API_KEYS_FILE": str(root / "keys.json"),
    }
    command = [sys.executable, "-m", "uvicorn", "--factory"]
    command += ["analytics_pipeline.serving.app:create_app", "--host", "127.0.0.1"]
    with open(root / "api.log", "wb") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, root / "api.log")
        yield url, keys
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("the API did not answer within 60 s")


@pytest.fixture(scope="module")
def browser(api: tuple[str, dict[str, str]]) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser, api: tuple[str, dict[str, str]]) -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    opened = context.new_page()
    requested: list[str] = []
    opened.on("request", lambda request: requested.append(request.url))
    opened.goto(api[0] + "/")
    try:
        yield opened
    finally:
        context.close()
    # No CDN, no font service: the page and its library come from the API alone.
    assert requested and all(url.startswith(api[0]) for url in requested), requested


def ask(page: Page, key: str, level: str, client_id: str = "") -> None:
    page.fill("#key", key)
    page.select_option("#level", level)
    page.fill("#from", "2024-01-01")
    page.fill("#to", "2024-01-03")
    if client_id or page.is_enabled("#client_id"):
        page.fill("#client_id", client_id)
    page.click("#show")


def cells(page: Page, table: str) -> list[list[str]]:
    rows = page.locator(f"#{table} tbody tr")
    return [row.locator("td").all_inner_texts() for row in rows.all()]


def test_a_global_key_sees_every_client_as_charts_and_tables(page: Page, api):
    ask(page, api[1]["global"], "client")

    expect(page.locator("#totals tbody tr")).to_have_count(2)
    assert [row[:3] for row in cells(page, "totals")] == [["c-1", "3", "4"], ["c-2", "1", "2"]]
    # c-1 on three days, c-2 on one; and one chart line per client in each chart.
    expect(page.locator("#daily tbody tr")).to_have_count(4)
    for chart in ("#chart-sessions", "#chart-rps"):
        expect(page.locator(f"{chart} canvas")).to_have_count(1)
        expect(page.locator(f"{chart} .u-legend .u-series")).to_have_count(3)  # x + 2 clients
    page.screenshot(path=ARTIFACTS / "api-viewer-global.png", full_page=True)


def test_a_client_key_sees_only_its_client_and_is_refused_another(page: Page, api):
    ask(page, api[1]["client=c-1"], "user")
    expect(page.locator("#totals tbody tr")).to_have_count(3)
    assert {row[0] for row in cells(page, "totals")} == {"c-1"}

    ask(page, api[1]["client=c-1"], "client", client_id="c-2")

    expect(page.locator("#error")).to_contain_text("403: this key (client=c-1) may not see")
    expect(page.locator("#totals tbody tr")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "api-viewer-refused.png", full_page=True)


def test_a_level_the_key_cannot_ask_and_a_wrong_key_show_the_apis_reason(page: Page, api):
    ask(page, api[1]["client=c-1"], "global")
    expect(page.locator("#error")).to_contain_text("cannot ask level=global")

    ask(page, "ak_wrong", "client")
    expect(page.locator("#error")).to_contain_text("401: unknown API key")


def test_the_filters_a_level_does_not_take_are_disabled(page: Page):
    page.select_option("#level", "reseller")

    assert page.is_enabled("#client_id") and page.is_enabled("#reseller_id")
    assert not page.is_enabled("#user_id")
