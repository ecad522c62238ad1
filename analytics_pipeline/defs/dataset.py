"""One spec in, one dataset's definitions out: landing -> staged -> parquet -> table, per
table, with the ingest job and the landing sensor that starts it."""

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.defs.ingest import ingest_asset_specs, ingest_checks, ingest_job
from analytics_pipeline.defs.parquet import parquet_asset
from analytics_pipeline.defs.sensors import build_landing_sensor
from analytics_pipeline.defs.tables import table_asset
from analytics_pipeline.settings import Settings


def build_dataset_definitions(
    spec: DatasetSpec, partitions_def: dg.PartitionsDefinition, settings: Settings
) -> dg.Definitions:
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [*ingest_asset_specs(spec, partitions_def)]
    for table in spec.tables:
        assets.append(parquet_asset(spec, table, partitions_def))
        hours = settings.freshness_window_hours(spec.name, spec.freshness_hours)
        assets.append(table_asset(spec, table, partitions_def, settings.env, hours))
    job = ingest_job(spec, settings)
    return dg.Definitions(
        assets=assets,
        asset_checks=ingest_checks(spec, settings),
        jobs=[job],
        sensors=[build_landing_sensor(spec, job, settings)],
    )
