"""The code location loads, its graph has the promised lineage, and it matches its snapshot."""

import dagster as dg

from analytics_pipeline.datasets import DATASETS


def test_definitions_load_and_validate(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)


def test_every_table_has_lineage_from_landing_to_analytics(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for spec in DATASETS:
        for table in spec.tables:
            upstream = graph.get(dg.AssetKey([table.name, "table"])).parent_keys
            assert upstream == {dg.AssetKey([table.name, "parquet"])}
            assert graph.get(dg.AssetKey([table.name, "parquet"])).parent_keys == {
                dg.AssetKey([spec.name, "staged"])
            }
        assert graph.get(dg.AssetKey([spec.name, "staged"])).parent_keys == {
            dg.AssetKey([spec.name, "landing"])
        }
    analytics_parents = set().union(
        *(graph.get(k).parent_keys for k in graph.get_all_asset_keys() if k.path[0] == "analytics")
    )
    assert {k.path[0] for k in analytics_parents} == {
        t.name for spec in DATASETS for t in spec.tables
    }


def test_landing_sensors_and_automation_run_by_default(defs: dg.Definitions) -> None:
    for spec in DATASETS:
        sensor = defs.resolve_sensor_def(f"{spec.name}_landing_sensor")
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    automation = defs.resolve_sensor_def("lake_automation_sensor")
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
