"""The table catalog on AWS: Glue Data Catalog tables over the lake's Parquet, one partition a day.

A day is rewritten under a fresh version prefix (parquet/<table>/dt=D/<version>/) and then
repointed with UpdatePartition, so Athena readers switch versions atomically. Glue stores a
partition's directory; the file URI the caller registered is kept in the partition's
parameters so the Catalog interface hands back exactly what it was given.

Partition projection is one switch per table (`projected_tables`). With it, Athena ignores
every partition registered in Glue and reads `storage.location.template`, a fixed
`.../dt=${dt}/` that cannot name a version: it would read every version under the day at
once. So a projected table must keep a fixed, non-versioned layout (one object per day,
replaced by a single PUT, or the files the Athena scale path writes), and registering a
versioned location for it is refused with ProjectionLayoutError instead of silently serving
duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from analytics_pipeline.lake.athena_compaction_sql import SCRATCH_TABLE_PREFIX
from analytics_pipeline.lake.versioned_days import (
    ProjectionLayoutError,
    validate_dt,
    validate_identifier,
)
from analytics_pipeline.resources.aws.errors import error_code
from analytics_pipeline.resources.aws.glue_inputs import (
    dt_expressions,
    merged_parameters,
    partition_input,
    registered_location,
    storage_descriptor,
    table_input,
)
from analytics_pipeline.resources.catalog import Catalog, TableDef, check_compatible

# Glue API limits per call: BatchCreatePartition 100, BatchUpdatePartition 100,
# BatchDeletePartition 25.
CREATE_PARTITIONS_PER_CALL = 100
UPDATE_PARTITIONS_PER_CALL = 100
DELETE_PARTITIONS_PER_CALL = 25
GET_PARTITIONS_PER_CALL = 1000


class GlueCatalogError(RuntimeError):
    """Glue refused a partition for a reason other than it already existing."""


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class GlueCatalog(Catalog):
    """Tables and daily partitions in the Glue Data Catalog, over s3://<lake_bucket>/parquet/."""

    database: str
    lake_bucket: str
    region_name: str | None = None
    # Tables whose days Athena projects (projection.dt.*) instead of reading Glue partitions.
    projected_tables: list[str] = []
    # The first day a projected table can hold (projection.dt.range start).
    projection_start: str = "2020-01-01"

    _client: Any = PrivateAttr(default=None)

    def glue_client(self) -> Any:
        if self._client is None:
            # Adaptive retries: a backfill registers hundreds of partitions in bursts.
            config = Config(retries={"mode": "adaptive", "max_attempts": 10})
            self._client = boto3.client("glue", region_name=self.region_name, config=config)
        return self._client

    # tables

    def table_location(self, table: str) -> str:
        return f"s3://{self.lake_bucket}/parquet/{validate_identifier(table)}/"

    def is_projected(self, table: str) -> bool:
        return table in self.projected_tables

    def table_input(self, table: TableDef) -> dict[str, Any]:
        """The Glue TableInput for a table of the lake: external, Parquet, partitioned by dt."""
        projected = self.is_projected(validate_identifier(table.name))
        return table_input(
            table,
            self.table_location(table.name),
            self.projection_start if projected else None,
        )

    def ensure_table(self, table: TableDef) -> str:
        """Create the table, or add new columns; 'created', 'updated' or 'unchanged'."""
        wanted = self.table_input(table)
        glue = self.glue_client()
        existing = self._get_table(table.name)
        if existing is None:
            try:
                glue.create_table(DatabaseName=self.database, TableInput=wanted)
            except ClientError as error:
                if error_code(error) != "EntityNotFoundException":
                    raise
                # Terraform owns the database; against a bare emulator, create it.
                glue.create_database(DatabaseInput={"Name": self.database})
                glue.create_table(DatabaseName=self.database, TableInput=wanted)
            return "created"
        current = TableDef(
            existing["Name"],
            tuple((c["Name"], c["Type"]) for c in existing["StorageDescriptor"].get("Columns", [])),
            existing.get("Description", ""),
        )
        if current.columns != table.columns:
            check_compatible(current, table)
        merged = merged_parameters(existing.get("Parameters", {}), wanted["Parameters"])
        if (
            current == table
            and merged == existing.get("Parameters", {})
            and existing["StorageDescriptor"].get("Location") == self.table_location(table.name)
            and existing.get("PartitionKeys") == wanted["PartitionKeys"]
        ):
            return "unchanged"
        glue.update_table(DatabaseName=self.database, TableInput={**wanted, "Parameters": merged})
        return "updated"

    def tables(self) -> list[str]:
        paginator = self.glue_client().get_paginator("get_tables")
        return sorted(
            t["Name"]
            for page in paginator.paginate(DatabaseName=self.database)
            for t in page["TableList"]
        )

    # partitions

    def register_partition(self, table: str, dt: str, location: str) -> str | None:
        """Point the table's day at a new location; returns the location it replaced."""
        directory = self._partition_directory(table, dt, location)
        if self.is_projected(table):
            # Athena reads the template, not Glue: there is nothing to register.
            return None
        glue = self.glue_client()
        storage = self._table_storage(table)
        partition = partition_input(storage, dt, directory, location)
        existing = self._get_partition(table, dt)
        if existing is None:
            errors = glue.batch_create_partition(
                DatabaseName=self.database, TableName=table, PartitionInputList=[partition]
            ).get("Errors", [])
            if not errors:
                return None
            self._raise_unless_already_exists(table, errors)
            # Another writer created it between our read and our create: repoint it.
            existing = self._get_partition(table, dt)
        glue.update_partition(
            DatabaseName=self.database,
            TableName=table,
            PartitionValueList=[dt],
            PartitionInput=partition,
        )
        return registered_location(existing) if existing else None

    def register_partitions(self, table: str, locations: dict[str, str]) -> dict[str, str | None]:
        """Register many days at once (a backfill); returns each day's replaced location."""
        directories = {
            dt: self._partition_directory(table, dt, loc) for dt, loc in locations.items()
        }
        previous: dict[str, str | None] = dict.fromkeys(locations)
        if self.is_projected(table) or not locations:
            return previous
        glue = self.glue_client()
        storage = self._table_storage(table)
        inputs = {
            dt: partition_input(storage, dt, directories[dt], locations[dt])
            for dt in sorted(locations)
        }
        existing: list[str] = []
        for chunk in _chunks(list(inputs), CREATE_PARTITIONS_PER_CALL):
            errors = glue.batch_create_partition(
                DatabaseName=self.database,
                TableName=table,
                PartitionInputList=[inputs[dt] for dt in chunk],
            ).get("Errors", [])
            self._raise_unless_already_exists(table, errors)
            existing += [e["PartitionValues"][0] for e in errors]
        for chunk in _chunks(sorted(existing), GET_PARTITIONS_PER_CALL):
            found = glue.batch_get_partition(
                DatabaseName=self.database,
                TableName=table,
                PartitionsToGet=[{"Values": [dt]} for dt in chunk],
            )["Partitions"]
            previous.update({p["Values"][0]: registered_location(p) for p in found})
        for chunk in _chunks(sorted(existing), UPDATE_PARTITIONS_PER_CALL):
            response = glue.batch_update_partition(
                DatabaseName=self.database,
                TableName=table,
                Entries=[
                    {"PartitionValueList": [dt], "PartitionInput": inputs[dt]} for dt in chunk
                ],
            )
            if response.get("Errors"):
                failed = response["Errors"][0]
                raise GlueCatalogError(
                    f"table {self.database}.{table}: could not repoint "
                    f"dt={failed['PartitionValueList'][0]}: "
                    f"{failed['ErrorDetail'].get('ErrorMessage', failed['ErrorDetail'])}"
                )
        return previous

    def delete_partitions(self, table: str, dts: Iterable[str]) -> None:
        """Deregister days (their objects stay); days that are not registered are fine."""
        glue = self.glue_client()
        for chunk in _chunks(sorted({validate_dt(dt) for dt in dts}), DELETE_PARTITIONS_PER_CALL):
            errors = glue.batch_delete_partition(
                DatabaseName=self.database,
                TableName=validate_identifier(table),
                PartitionsToDelete=[{"Values": [dt]} for dt in chunk],
            ).get("Errors", [])
            real = [e for e in errors if e["ErrorDetail"]["ErrorCode"] != "EntityNotFoundException"]
            if real:
                raise GlueCatalogError(
                    f"table {self.database}.{table}: could not delete dt="
                    f"{real[0]['PartitionValues'][0]}: {real[0]['ErrorDetail']}"
                )

    def partition_location(self, table: str, dt: str) -> str | None:
        partition = self._get_partition(validate_identifier(table), validate_dt(dt))
        return registered_location(partition) if partition else None

    def partitions(self, table: str, dts: Iterable[str] | None = None) -> dict[str, str]:
        """Registered days and their locations; `dts` limits the listing to those days."""
        paginator = self.glue_client().get_paginator("get_partitions")
        expressions: list[str | None] = [None] if dts is None else list(dt_expressions(dts))
        found: dict[str, str] = {}
        for expression in expressions:
            kwargs: dict[str, Any] = {
                "DatabaseName": self.database,
                "TableName": validate_identifier(table),
            }
            if expression is not None:
                kwargs["Expression"] = expression
            for page in paginator.paginate(**kwargs):
                for partition in page["Partitions"]:
                    found[partition["Values"][0]] = registered_location(partition)
        return dict(sorted(found.items()))

    # scratch tables (the Athena scale path writes through one; see athena_compaction.py)

    def create_scratch_table(self, name: str, like: TableDef, locations: dict[str, str]) -> None:
        """A table shaped like `like`, its days registered at the given directories, which
        may lie under another table's location: an INSERT INTO it writes each day's files
        into that directory. Its name must start with SCRATCH_TABLE_PREFIX (the only
        tables deleted, and the only ones the pipeline role may delete)."""
        name = _scratch_name(name)
        table = TableDef(name, like.columns, f"scratch table for {like.name}; safe to delete")
        glue = self.glue_client()
        glue.create_table(DatabaseName=self.database, TableInput=self.table_input(table))
        storage = storage_descriptor(table, self.table_location(name))
        inputs = []
        for dt, location in sorted(locations.items()):
            if not location.startswith(f"s3://{self.lake_bucket}/parquet/"):
                raise ValueError(f"scratch partition dt={dt}: {location!r} is not under parquet/")
            directory = location if location.endswith("/") else f"{location}/"
            inputs.append(partition_input(storage, validate_dt(dt), directory, directory))
        for chunk in _chunks(inputs, CREATE_PARTITIONS_PER_CALL):
            errors = glue.batch_create_partition(
                DatabaseName=self.database, TableName=name, PartitionInputList=chunk
            ).get("Errors", [])
            if errors:
                self._raise_unless_already_exists(name, errors)

    def delete_scratch_table(self, name: str) -> None:
        """Drop a scratch table (its partitions go with it; no object is deleted)."""
        try:
            self.glue_client().delete_table(DatabaseName=self.database, Name=_scratch_name(name))
        except ClientError as error:
            if error_code(error) != "EntityNotFoundException":
                raise

    # helpers

    def _partition_directory(self, table: str, dt: str, location: str) -> str:
        """The directory Glue must point at: the version folder holding the registered file."""
        prefix = f"{self.table_location(table)}dt={validate_dt(dt)}/"
        if not location.startswith(prefix) or ".." in location[len(prefix) :].split("/"):
            raise ValueError(
                f"table {table}: partition dt={dt} location {location!r} is not under {prefix}"
            )
        rest = location[len(prefix) :]
        if self.is_projected(table) and "/" in rest:
            raise ProjectionLayoutError(
                f"table {table} uses partition projection: Athena reads every object under "
                f"{prefix}, so a versioned location {location!r} would be read together with "
                f"the day's other versions. Write this table's days directly under {prefix} "
                "(one object per day, replaced in one PUT), or remove the table from "
                "projected_tables to register versions in Glue"
            )
        return location if location.endswith("/") else location.rsplit("/", 1)[0] + "/"

    def _table_storage(self, table: str) -> dict[str, Any]:
        existing = self._get_table(validate_identifier(table))
        if existing is None:
            raise KeyError(f"table {table!r} is not in Glue database {self.database}; create it")
        storage = existing["StorageDescriptor"]
        keys = ("Columns", "InputFormat", "OutputFormat", "SerdeInfo")
        return {k: storage[k] for k in keys if k in storage}

    def table_columns(self, name: str) -> list[tuple[str, str]] | None:
        """The table's (name, type) columns as Glue holds them; None if there is no table."""
        found = self._get_table(validate_identifier(name))
        if found is None:
            return None
        columns = found.get("StorageDescriptor", {}).get("Columns", [])
        return [(c["Name"], c["Type"]) for c in columns]

    def _get_table(self, name: str) -> dict[str, Any] | None:
        try:
            return self.glue_client().get_table(DatabaseName=self.database, Name=name)["Table"]
        except ClientError as error:
            if error_code(error) == "EntityNotFoundException":
                return None
            raise

    def _get_partition(self, table: str, dt: str) -> dict[str, Any] | None:
        try:
            return self.glue_client().get_partition(
                DatabaseName=self.database, TableName=table, PartitionValues=[dt]
            )["Partition"]
        except ClientError as error:
            if error_code(error) == "EntityNotFoundException":
                return None
            raise

    def _raise_unless_already_exists(self, table: str, errors: list[dict[str, Any]]) -> None:
        for error in errors:
            detail = error["ErrorDetail"]
            if detail.get("ErrorCode") != "AlreadyExistsException":
                raise GlueCatalogError(
                    f"table {self.database}.{table}: could not create partition "
                    f"dt={error['PartitionValues'][0]}: {detail.get('ErrorCode')}: "
                    f"{detail.get('ErrorMessage')}"
                )


def _scratch_name(name: str) -> str:
    if not validate_identifier(name).startswith(SCRATCH_TABLE_PREFIX):
        raise ValueError(f"{name!r} is not a scratch table name ({SCRATCH_TABLE_PREFIX}*)")
    return name


__all__ = [
    "GlueCatalog",
    "GlueCatalogError",
    "ProjectionLayoutError",
    "SCRATCH_TABLE_PREFIX",
]
