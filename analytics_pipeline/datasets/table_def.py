"""A spec's table as the catalog declares it: columns in Athena types, partitioned by dt."""

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.lake.table_definition import TableDef


def table_def(spec: DatasetSpec, table: TableSpec) -> TableDef:
    return TableDef(
        table.name,
        tuple((f.name, f.athena_type) for f in spec.table_fields(table)),
        table.description,
    )
