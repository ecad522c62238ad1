"""The code location loads, its graph has the promised lineage, and it matches its snapshot."""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.settings import Settings


def test_definitions_load_and_validate(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)


def test_every_table_has_lineage_from_landing_to_analytics(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for spec in DATASETS:
        for table in spec.tables:
            upstream = graph.get(dg.AssetKey(["table", table.name])).parent_keys
            assert upstream == {dg.AssetKey(["parquet", f"{table.name}_parquet"])}
            assert graph.get(dg.AssetKey(["parquet", f"{table.name}_parquet"])).parent_keys == {
                dg.AssetKey(["staged", f"{spec.name}_staged"])
            }
        assert graph.get(dg.AssetKey(["staged", f"{spec.name}_staged"])).parent_keys == {
            dg.AssetKey(["landing", f"{spec.name}_landing"])
        }
    analytics_parents = set().union(
        *(graph.get(k).parent_keys for k in graph.get_all_asset_keys() if k.path[0] == "analytics")
    )
    assert {k.path[0] for k in analytics_parents} == {"table"}
    assert {k.path[1] for k in analytics_parents} == {
        t.name for spec in DATASETS for t in spec.tables
    } | {"payment", "rental", "inventory", "film_category", "category"}


def test_landing_sensors_and_automation_run_by_default(defs: dg.Definitions) -> None:
    for spec in DATASETS:
        sensor = defs.resolve_sensor_def(f"{spec.name}_landing_sensor")
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    automation = defs.resolve_sensor_def("lake_automation_sensor")
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING


# --- snapshot ---------------------------------------------------------------------------------
# What the UI and the daemon see of the code location, per deployment, against a committed file.
# After an intended change, regenerate it with
#   UPDATE_DEFINITIONS_SNAPSHOT=1 uv run --frozen pytest -q \
#       analytics_pipeline_tests/test_definitions.py
# and review the diff of definitions_snapshot.json.
SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")

FAKE_AWS = {
    "ANALYTICS_PIPELINE_ENV": "aws",
    "ANALYTICS_LANDING_BUCKET": "fake-landing",
    "ANALYTICS_LAKE_BUCKET": "fake-lake",
    "ANALYTICS_ATHENA_OUTPUT": "s3://fake-results/",
    "ANALYTICS_GLUE_DATABASE": "fake_db",
    "ANALYTICS_ATHENA_WORKGROUP": "fake_workgroup",
}


def shape(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    repo = defs.get_repository_def()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    return {
        "assets": {k.to_user_string(): graph.get(k).group_name for k in keys},
        "checks": sorted(
            f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys
        ),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        # The UI shows each table's freshness state against this window.
        "freshness": {
            k.to_user_string(): str(graph.get(k).freshness_policy.fail_window.to_timedelta())
            for k in keys
            if graph.get(k).freshness_policy is not None
        },
    }


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and an endpoint nothing listens on: any AWS call would fail."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "fake",
        "AWS_SECRET_ACCESS_KEY": "fake",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def shapes(no_aws: None, tmp_path: Path) -> dict[str, dict[str, Any]]:
    local = Settings.from_env({"ANALYTICS_LAKE_DIR": str(tmp_path / "lake")})
    aws = Settings.from_env(FAKE_AWS)
    return {"local": shape(build_definitions(local)), "aws": shape(build_definitions(aws))}


def test_definitions_match_the_snapshot(shapes: dict[str, dict[str, Any]]) -> None:
    if os.environ.get("UPDATE_DEFINITIONS_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(shapes, indent=2, sort_keys=True) + "\n")
    assert shapes == json.loads(SNAPSHOT.read_text())


def test_local_and_aws_have_the_same_definitions(shapes: dict[str, dict[str, Any]]) -> None:
    assert shapes["local"] == shapes["aws"]


@pytest.mark.parametrize(
    "arrivals",
    [
        {"ANALYTICS_LANDING_QUEUE_URL": "http://127.0.0.1:9/000000000000/fake-landing"},
        {"ANALYTICS_LANDING_KEYS_TIME_ORDERED": "1"},
    ],
    ids=["sqs", "time-ordered"],
)
def test_how_arrivals_are_detected_changes_no_definition(
    no_aws: None, tmp_path: Path, shapes: dict[str, dict[str, Any]], arrivals: dict[str, str]
) -> None:
    """The arrivals source is a resource: the sensors are the same whichever is chosen."""
    chosen = build_definitions(Settings.from_env({**FAKE_AWS, **arrivals}))
    local = build_definitions(Settings.from_env({"ANALYTICS_LAKE_DIR": str(tmp_path / "lake")}))
    assert shape(chosen) == shapes["aws"]
    assert sensor_details(chosen) == sensor_details(local)


def sensor_details(defs: dg.Definitions) -> dict[str, Any]:
    return {
        s.name: (sorted(j.name for j in s.jobs) if s.has_jobs else [], s.default_status, s.tags)
        for s in defs.get_repository_def().sensor_defs
    }


def test_a_datasets_freshness_window_is_set_from_the_environment(tmp_path: Path) -> None:
    from datetime import timedelta

    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.settings import Settings

    env = {"ANALYTICS_LAKE_DIR": str(tmp_path), "ANALYTICS_FRESHNESS_HOURS": "products=48"}
    graph = build_definitions(Settings.from_env(env)).resolve_asset_graph()
    window = graph.get(dg.AssetKey(["table", "products"])).freshness_policy.fail_window
    assert window.to_timedelta() == timedelta(hours=48)
    other = graph.get(dg.AssetKey(["table", "iot_sensor_data"])).freshness_policy.fail_window
    assert other.to_timedelta() == timedelta(hours=26)  # the spec's default

    for bad, named in (("products=0", "products=0"), ("products", "products"), ("nope=3", "nope")):
        with pytest.raises(ValueError, match=named):
            build_definitions(Settings.from_env({**env, "ANALYTICS_FRESHNESS_HOURS": bad}))


def test_the_source_tables_freshness_window_is_the_sources(tmp_path: Path) -> None:
    from datetime import timedelta

    TABLES = ("rental", "film")

    def windows(environ: dict[str, str]) -> dict[str, timedelta]:
        graph = build_definitions(Settings.from_env(environ)).resolve_asset_graph()
        policies = {t: graph.get(dg.AssetKey(["table", t])).freshness_policy for t in TABLES}
        return {t: policy.fail_window.to_timedelta() for t, policy in policies.items()}

    env = {"ANALYTICS_LAKE_DIR": str(tmp_path)}
    assert windows(env) == {"rental": timedelta(hours=3), "film": timedelta(hours=3)}
    six = windows({**env, "ANALYTICS_FRESHNESS_HOURS": "movie_rental=6"})
    assert six == {"rental": timedelta(hours=6), "film": timedelta(hours=6)}
    with pytest.raises(ValueError, match="ANALYTICS_ATHENA_COMPACTION names unknown datasets"):
        build_definitions(Settings.from_env({**env, "ANALYTICS_ATHENA_COMPACTION": "movie_rental"}))
