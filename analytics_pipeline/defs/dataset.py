"""One spec in, one dataset's definitions out: landing -> staged -> parquet -> table, per table."""

from dataclasses import dataclass

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.defs.ingest import ingest_asset_specs, ingest_checks, ingest_job
from analytics_pipeline.defs.parquet import parquet_asset
from analytics_pipeline.defs.tables import table_asset
from analytics_pipeline.settings import Settings


@dataclass(frozen=True)
class DatasetDefinitions:
    assets: list[dg.AssetsDefinition | dg.AssetSpec]
    ingest_job: dg.JobDefinition
    checks: list[dg.AssetChecksDefinition]


def build_dataset_definitions(
    spec: DatasetSpec, partitions_def: dg.PartitionsDefinition, settings: Settings
) -> DatasetDefinitions:
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [*ingest_asset_specs(spec, partitions_def)]
    for table in spec.tables:
        assets.append(parquet_asset(spec, table, partitions_def))
        assets.append(table_asset(spec, table, partitions_def, settings.env))
    return DatasetDefinitions(assets, ingest_job(spec, settings), ingest_checks(spec, settings))
