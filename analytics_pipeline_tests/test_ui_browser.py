"""The Dagster UI of `make dev`, tried in headless Chromium as a user would.

One `dagster dev` on a small sample lake serves the whole module; every check reads the page
(texts, the drawn graph, switches), and every wait is bounded by a Playwright timeout, so a page
that does not show what it should fails with the locator it waited for, never hangs.
Screenshots go to test-artifacts/ (the graph and a partition view, and the page of any failure).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.defs.analytics import ANALYTICS
from analytics_pipeline_tests.browser import ARTIFACTS, chromium
from analytics_pipeline_tests.lake_helpers import drop, ndjson, query
from local_servers.dev_server import DevServer, dagster_dev

LOCATION = "analytics_pipeline.definitions"
PROCESSED_DEADLINE = 240.0  # the daemon's sensors and automation on a loaded 2-core machine
UI_TIMEOUT_MS = 45_000  # one page element
BACKFILL_TIMEOUT_MS = 240_000  # three runs of parquet/products_parquet, one at a time
VIEWPORT = {"width": 1280, "height": 800}
PRODUCT_DAYS = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
BACKFILL_DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]


def _sample_lake(lake: Path) -> None:
    for day in PRODUCT_DAYS:
        drop(
            lake,
            "products",
            f"{day}-a.json",
            json.dumps({"id": int(day[-2:]), "date": day, "product": "A"}),
        )
    drop(lake, "products", "2024-03-05-b.json", '{"id": 50, "date": "2024-03-05", "product": "B"}')
    drop(lake, "products", "bad.json", '{"id": 51, "date": "2024-03-05", "product": "D"}')
    readings = [
        {
            "deviceid": "7",
            "datetime": f"2024-03-05 10:0{i}:00",
            "temperature": str(20 + i),
            "humidity": "50",
            "winddirection": "180",
            "windintensity": "3",
            "rainheight": "0",
        }
        for i in range(3)
    ]
    drop(lake, "iot_sensor_data", "station/2024-03-05.json", ndjson(readings))


def _rows(lake: Path, sql: str) -> list | None:
    try:
        return query(lake, sql)
    except Exception:  # the catalog or the view does not exist yet
        return None


def _processed(lake: Path) -> bool:
    return _rows(lake, "SELECT count(DISTINCT dt) FROM daily_product_counts") == [(4,)] and (
        _rows(lake, "SELECT count(*) FROM iot_daily_device_stats") == [(1,)]
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    base = tmp_path_factory.mktemp("ui")
    _sample_lake(base / "lake")
    with dagster_dev(base / "lake", base / "dagster_home") as running:
        # The "Join the Dagster community" modal would cover every page.
        assert running.graphql("mutation { setNuxSeen }") == {"data": {"setNuxSeen": True}}
        started = time.monotonic()
        while not _processed(running.lake_dir):
            if time.monotonic() - started > PROCESSED_DEADLINE:
                pytest.fail(
                    f"the daemon did not process the sample lake in {PROCESSED_DEADLINE}s; "
                    f"dagster dev log tail:\n{running.log_path.read_text()[-4000:]}"
                )
            time.sleep(1)
        yield running


@pytest.fixture(scope="module")
def browser(server: DevServer) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    opened = context.new_page()
    failed_before = request.session.testsfailed
    try:
        yield opened
    finally:
        # The call's report is logged before teardown, so a failure has been counted by now.
        if request.session.testsfailed > failed_before:
            opened.screenshot(path=ARTIFACTS / f"failed-{request.node.name}.png")
        context.close()


def _open(page: Page, server: DevServer, path: str) -> None:
    page.goto(server.url + path)


def _chains_in_group(group: str) -> list[tuple[str, list[str]]]:
    """(analytics asset, the node labels from landing to it) for each of the dataset's tables
    that feeds an analytics asset: nodes are labelled by the last part of their key."""
    spec = next(s for s in DATASETS if s.name == group)
    return [
        (a.name, [f"{group}_landing", f"{group}_staged", f"{t.name}_parquet", t.name, a.name])
        for a in ANALYTICS
        for t in spec.tables
        if t.name in a.tables
    ]


# Node boxes and arrow ends as drawn, in page pixels.
_DRAWN_GRAPH = """() => {
  const svg = [...document.querySelectorAll('svg')].find(s => s.querySelector('foreignObject'));
  if (!svg) return {nodes: [], edges: []};
  const nodes = [...svg.querySelectorAll('foreignObject')].map(fo => {
    const r = fo.getBoundingClientRect();
    const name = fo.querySelector('[class*="assetName"]') || fo;
    return {label: name.textContent.trim(), left: r.left, right: r.right,
            top: r.top, bottom: r.bottom};
  });
  const edges = [...svg.querySelectorAll('path[marker-end]')].map(p => {
    const m = p.getScreenCTM();
    const a = p.getPointAtLength(0).matrixTransform(m);
    const b = p.getPointAtLength(p.getTotalLength()).matrixTransform(m);
    return {x1: a.x, y1: a.y, x2: b.x, y2: b.y};
  });
  return {nodes, edges};
}"""
_EDGE_SLACK = 12  # pixels between a node's side and the end of its arrow


def _chains(page: Page, labels: list[str]) -> int:
    """How many drawn paths of arrows visit nodes labelled `labels`, in order."""
    drawn = page.evaluate(_DRAWN_GRAPH)
    nodes, arrows = drawn["nodes"], set()
    for edge in drawn["edges"]:
        starts = [
            i
            for i, n in enumerate(nodes)
            if abs(edge["x1"] - n["right"]) < _EDGE_SLACK and n["top"] <= edge["y1"] <= n["bottom"]
        ]
        ends = [
            i
            for i, n in enumerate(nodes)
            if abs(edge["x2"] - n["left"]) < _EDGE_SLACK and n["top"] <= edge["y2"] <= n["bottom"]
        ]
        arrows |= {(s, e) for s in starts for e in ends}
    paths = [[i] for i, n in enumerate(nodes) if _shows(n["label"], labels[0])]
    for label in labels[1:]:
        paths = [
            p + [j]
            for p in paths
            for (i, j) in arrows
            if i == p[-1] and _shows(nodes[j]["label"], label)
        ]
    return len(paths)


def _shows(label: str, name: str) -> bool:
    """Whether a node label shows this asset name: in full, or cut in the middle as the
    zoomed-out graph draws long names ("iot_…_data_landing")."""
    if "…" not in label:
        return label == name
    start, end = label.split("…", 1)
    return len(start) + len(end) < len(name) and name.startswith(start) and name.endswith(end)


@pytest.mark.parametrize("group", [spec.name for spec in DATASETS])
def test_asset_graph_draws_landing_staged_parquet_table_analytics(
    page: Page, server: DevServer, group: str
) -> None:
    _open(page, server, f"/locations/{LOCATION}/asset-groups/{group}/lineage")
    chains = _chains_in_group(group)
    assert chains, f"{group} feeds no analytics asset"
    for analytics, chain in chains:
        expect(page.locator("svg foreignObject").filter(has_text=analytics)).to_be_visible()
        expect(page.locator("svg foreignObject").filter(has_text="_landing")).to_be_visible()
        # The layout settles a moment after the nodes appear: look again for up to 10 s.
        drawn = _chains(page, chain)
        for _ in range(20):
            if drawn == 1:
                break
            page.wait_for_timeout(500)
            drawn = _chains(page, chain)
        assert drawn == 1, f"{group}: {drawn} drawn chains {' -> '.join(chain)}, not 1"
    page.screenshot(path=ARTIFACTS / f"asset-graph-{group}.png")


def _select_partitions(page: Page, selection: str) -> None:
    field = page.get_by_placeholder(re.compile(r"^ex: \d{4}-"))
    field.fill(selection)
    field.press("Enter")


def test_partitions_view_shows_which_days_are_materialised(page: Page, server: DevServer) -> None:
    _open(page, server, "/assets/parquet/products_parquet?view=partitions")
    _select_partitions(page, "[2024-03-04...2024-03-10]")
    expect(page.get_by_text("Materialized (4)", exact=True)).to_be_visible()
    expect(page.get_by_text("Missing (3)", exact=True)).to_be_visible()
    page.screenshot(path=ARTIFACTS / "partitions.png")
    page.get_by_text("Missing (3)", exact=True).click()  # list only the materialised days
    for day in PRODUCT_DAYS:
        expect(page.get_by_text(day, exact=True).first).to_be_visible()
    for day in ["2024-03-08", "2024-03-09", "2024-03-10"]:
        expect(page.get_by_text(day, exact=True)).to_have_count(0)


def test_backfill_of_three_days_launched_by_clicking_materialises_them(
    page: Page, server: DevServer
) -> None:
    _open(page, server, "/assets/parquet/products_parquet?view=partitions")
    _select_partitions(page, f"[{BACKFILL_DAYS[0]}...{BACKFILL_DAYS[-1]}]")
    expect(page.get_by_text("Missing (3)", exact=True)).to_be_visible()

    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Show all partitions").click()  # 2024 is older than the default 90 days
    field = dialog.get_by_placeholder(re.compile(r"^ex: \d{4}-"))
    field.fill(f"[{BACKFILL_DAYS[0]}...{BACKFILL_DAYS[-1]}]")
    field.press("Enter")
    expect(dialog.get_by_text("3 partitions", exact=True)).to_be_visible()
    dialog.get_by_role("button", name="Launch backfill").click()
    expect(page.get_by_text(re.compile(r"^Created backfill "))).to_be_visible()
    page.get_by_text("View", exact=True).click()

    status = page.locator("xpath=//div[div[normalize-space()='Status']]//span[@data-tooltip]")
    expect(status).to_be_visible()
    expect(status).not_to_have_text(
        re.compile("In progress|Requested|Queued|Canceling"), timeout=BACKFILL_TIMEOUT_MS
    )
    expect(status).to_have_text("Succeeded")

    _open(page, server, "/assets/parquet/products_parquet?view=partitions")
    _select_partitions(page, f"[{BACKFILL_DAYS[0]}...{BACKFILL_DAYS[-1]}]")
    expect(page.get_by_text("Materialized (3)", exact=True)).to_be_visible()
    expect(page.get_by_text("Missing (0)", exact=True)).to_be_visible()


def _metadata_cells(page: Page, key: str) -> Locator:
    """The cells of the metadata table row whose first cell is `key`."""
    first_cell = page.locator("td:first-child").get_by_text(key, exact=True)
    return page.locator("tr").filter(has=first_cell).last.locator("> td")


def test_parquet_materialisation_shows_rows_and_bytes(page: Page, server: DevServer) -> None:
    _open(page, server, "/assets/parquet/products_parquet?view=partitions&partition=2024-03-05")
    # A partition's metadata: key, value.
    expect(_metadata_cells(page, "dagster/row_count").nth(1)).to_have_text("2")
    shown_bytes = _metadata_cells(page, "bytes").nth(1)
    expect(shown_bytes).to_have_text(re.compile(r"^[1-9]\d*$"))
    shown_path = _metadata_cells(page, "path").nth(1).inner_text().strip()
    assert int(shown_bytes.inner_text()) == (server.lake_dir / shown_path).stat().st_size


def test_quarantine_materialisation_shows_rejected_records(page: Page, server: DevServer) -> None:
    _open(page, server, "/assets/quarantine/products_quarantine")
    # The asset's latest metadata: key, timestamp, value.
    expect(_metadata_cells(page, "rejected_records").nth(2)).to_have_text("1")
    expect(_metadata_cells(page, "reasons").nth(2)).to_contain_text("not one of A, B, C")


def test_sql_asset_shows_its_query_and_preview(page: Page, server: DevServer) -> None:
    _open(
        page, server, "/assets/analytics/daily_product_counts?view=partitions&partition=2024-03-05"
    )
    expect(_metadata_cells(page, "query").nth(1)).to_contain_text("FROM products")
    preview = _metadata_cells(page, "preview").nth(1).locator("table")
    expect(preview.locator("th")).to_have_text(["product", "product_count"])
    expect(preview.locator("tbody tr")).to_have_text([re.compile(r"A\s*1"), re.compile(r"B\s*1")])


@pytest.mark.parametrize(
    ("asset", "checks"),
    [
        ("parquet/products_parquet", ["rows_reconcile_with_staged", "schema_matches_spec"]),
        ("table/products", ["rows_match_parquet", "no_duplicate_keys"]),
    ],
)
def test_asset_checks_appear_with_their_results(
    page: Page, server: DevServer, asset: str, checks: list[str]
) -> None:
    _open(page, server, f"/assets/{asset}?view=checks")
    expect(page.get_by_text(f"Checks ({len(checks)})", exact=True)).to_be_visible()
    for check in checks:
        # In the list of checks: the name, then the latest result.
        expect(page.locator(f'div[title="{check}"] + span')).to_have_text("Succeeded")


def test_sensors_appear_on_automation_page(page: Page, server: DevServer) -> None:
    _open(page, server, "/automation")
    names = [f"{spec.name}_landing_sensor" for spec in DATASETS]
    names += ["lake_automation_sensor"]
    for name in names:
        expect(page.get_by_text(name, exact=True)).to_be_visible()


@pytest.mark.parametrize(
    "path",
    [
        "sensors/products_landing_sensor",
        "sensors/lake_automation_sensor",
    ],
)
def test_automation_is_running(page: Page, server: DevServer, path: str) -> None:
    _open(page, server, f"/locations/{LOCATION}/{path}")
    switch = page.locator("tr").filter(has=page.get_by_text("Running", exact=True))
    expect(switch.get_by_role("checkbox")).to_be_checked()
