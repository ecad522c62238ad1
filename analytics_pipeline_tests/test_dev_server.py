"""`make dev` for real: the daemon's sensors and automation move dropped files into the tables.

One `dagster dev` serves the whole module (starting one costs 5-40 s on this machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from analytics_pipeline_tests.lake_helpers import drop, landing_files, ndjson, query
from local_servers.dev_server import DevServer, dagster_dev

# "About a minute" is the promise; the bound leaves slack for a loaded 2-core CI machine.
ARRIVAL_DEADLINE = 240.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    base = tmp_path_factory.mktemp("dev")
    with dagster_dev(base / "lake", base / "dagster_home") as running:
        yield running


def _wait_for(server: DevServer, what: str, condition: Callable[[], bool]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < ARRIVAL_DEADLINE:
        if condition():
            return time.monotonic() - started
        time.sleep(1)
    log = server.log_path.read_text()[-4000:]
    files = sorted(str(p.relative_to(server.lake_dir)) for p in server.lake_dir.rglob("*"))
    pytest.fail(
        f"{what} did not happen within {ARRIVAL_DEADLINE}s; lake files: {files}\n"
        f"dagster dev log tail:\n{log}"
    )


def _rows(lake_dir: Path, sql: str) -> list | None:
    try:
        return query(lake_dir, sql)
    except Exception:  # the catalog or the view does not exist yet
        return None


def test_dropped_files_reach_the_tables_with_no_click(server: DevServer) -> None:
    lake = server.lake_dir
    drop(lake, "products", "1.json", '{"id": 1, "date": "2024-03-02", "product": "A"}')
    drop(lake, "products", "2.json", '{"id": 2, "date": "2024-03-03", "product": "B"}')
    drop(lake, "products", "bad.json", '{"id": 3, "date": "2024-03-03", "product": "D"}')
    seconds = _wait_for(
        server,
        "both days in daily_product_counts",
        lambda: _rows(lake, "SELECT count(*) FROM daily_product_counts") == [(2,)],
    )
    print(f"landing -> analytics in {seconds:.0f}s")
    assert _rows(lake, "SELECT id FROM products ORDER BY id") == [(1,), (2,)]
    assert landing_files(lake, "products") == []
    quarantined = list((lake / "quarantine" / "products").glob("*.jsonl"))
    assert len(quarantined) == 1
    assert "value 'D' in field product is not one of A, B, C" in quarantined[0].read_text()


def test_late_data_updates_the_old_day(server: DevServer) -> None:
    lake = server.lake_dir
    drop(lake, "products", "late.json", '{"id": 4, "date": "2024-03-02", "product": "A"}')
    _wait_for(
        server,
        "the late record in the old day's analytics",
        lambda: (
            _rows(
                lake,
                "SELECT product_count FROM daily_product_counts "
                "WHERE dt = '2024-03-02' AND product = 'A'",
            )
            == [(2,)]
        ),
    )
    assert _rows(lake, "SELECT count(*) FROM products WHERE dt = '2024-03-02'") == [(2,)]


def test_iot_ndjson_reaches_its_analytics(server: DevServer) -> None:
    rows = [
        {
            "deviceid": "7",
            "datetime": f"2024-03-02 10:0{i}:00",
            "temperature": str(20 + i),
            "humidity": "50",
            "winddirection": "180",
            "windintensity": "3",
            "rainheight": "0",
        }
        for i in range(3)
    ]
    drop(server.lake_dir, "iot_sensor_data", "station/2024-03-02.json", ndjson(rows))
    _wait_for(
        server,
        "IoT analytics",
        lambda: (
            _rows(
                server.lake_dir,
                "SELECT min_temperature, max_temperature FROM iot_daily_device_stats",
            )
            == [(20, 22)]
        ),
    )
