"""The code location: assets, jobs and sensors, with resources picked by deployment."""

from __future__ import annotations

import dagster as dg

from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.defs.abandoned_runs import build_abandoned_runs_sensor
from analytics_pipeline.defs.alerts import build_alert_sensors
from analytics_pipeline.defs.analytics import ANALYTICS, build_analytics_asset
from analytics_pipeline.defs.dataset import build_dataset_definitions
from analytics_pipeline.defs.source_tables import build_source_definitions, source_resource_key
from analytics_pipeline.defs.staleness import build_stale_days_sensor
from analytics_pipeline.defs.web_log_export import web_log_export_definitions
from analytics_pipeline.memory_pool import use_system_memory_pool
from analytics_pipeline.resources.alerts import LogAlertSink
from analytics_pipeline.resources.arrivals import LandingArrivals
from analytics_pipeline.resources.day_builder import DayBuilder
from analytics_pipeline.resources.local.arrivals import DirectoryArrivals
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.engine import DuckDBEngine
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.source_database import SourceDatabase
from analytics_pipeline.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # end_offset=2: records up to a day ahead of now are valid, so tomorrow must exist.
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start.isoformat(), end_offset=2
    )


def local_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    lake = str(settings.lake_dir)
    return {
        source_resource_key(MOVIE_RENTAL.name): SourceDatabase(
            source=MOVIE_RENTAL.name, url=settings.movie_rental_url
        ),
        "store": LocalLakeStore(lake_dir=lake),
        "catalog": DuckDBCatalog(lake_dir=lake),
        "engine": DuckDBEngine(lake_dir=lake),
        "day_builder": DayBuilder(),
        "arrivals": DirectoryArrivals(lake_dir=lake),
        "alerts": LogAlertSink(),
    }


def aws_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    # Imported here so the local deployment never needs AWS configuration to load.
    from analytics_pipeline.resources.aws.athena_day_builder import AthenaDayBuilder
    from analytics_pipeline.resources.aws.athena_engine import AthenaEngine
    from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog
    from analytics_pipeline.resources.aws.s3_listing import S3ListingArrivals
    from analytics_pipeline.resources.aws.s3_store import S3LakeStore
    from analytics_pipeline.resources.aws.source_secret import SecretSourceDatabase
    from analytics_pipeline.resources.aws.sqs_arrivals import SqsArrivals

    aws = settings.aws
    if aws is None:
        raise ValueError("the aws deployment needs its ANALYTICS_* settings")
    # S3 notifications from SQS where Terraform wired them, else listings of the bucket.
    arrivals: LandingArrivals = (
        SqsArrivals(queue_url=aws.landing_queue_url, datasets=[s.name for s in DATASETS])
        if aws.landing_queue_url
        else S3ListingArrivals(
            landing_bucket=aws.landing_bucket,
            lake_bucket=aws.lake_bucket,
            time_ordered_datasets=[s.name for s in DATASETS if settings.keys_time_ordered(s.name)],
        )
    )
    resources: dict[str, dg.ConfigurableResource] = {
        "store": S3LakeStore(landing_bucket=aws.landing_bucket, lake_bucket=aws.lake_bucket),
        "catalog": GlueCatalog(database=aws.glue_database, lake_bucket=aws.lake_bucket),
        "engine": AthenaEngine(
            database=aws.glue_database,
            workgroup=aws.athena_workgroup,
            output_location=aws.athena_output,
        ),
        # ANALYTICS_ATHENA_COMPACTION: the datasets whose Parquet days Athena builds.
        "day_builder": AthenaDayBuilder(
            datasets=list(settings.athena_compaction),
            partitions_start=settings.partitions_start.isoformat(),
        )
        if settings.athena_compaction
        else DayBuilder(),
        "arrivals": arrivals,
        # A URL given wins; else the RDS secret, read by the run that first connects.
        source_resource_key(MOVIE_RENTAL.name): SourceDatabase(
            source=MOVIE_RENTAL.name, url=settings.movie_rental_db_url
        )
        if settings.movie_rental_db_url
        else SecretSourceDatabase(
            source=MOVIE_RENTAL.name,
            secret_id=settings.movie_rental_db_secret or "",
        ),
    }
    if settings.alerts_topic_arn:
        from analytics_pipeline.resources.aws.sns_alerts import SnsAlertSink

        resources["alerts"] = SnsAlertSink(topic_arn=settings.alerts_topic_arn)
    else:
        resources["alerts"] = LogAlertSink()
    if aws.web_log_group:
        from analytics_pipeline.resources.aws.cloudwatch_logs import CloudWatchLogEvents

        resources["web_logs"] = CloudWatchLogEvents(log_group=aws.web_log_group)
    return resources


RESOURCES_BY_DEPLOYMENT = {"local": local_resources, "aws": aws_resources}


def build_definitions(settings: Settings) -> dg.Definitions:
    daily = daily_partitions(settings)
    settings.check_dataset_names((spec.name for spec in DATASETS), sources=[MOVIE_RENTAL.name])
    datasets = [build_dataset_definitions(spec, daily, settings) for spec in DATASETS]
    lake_wide = dg.Definitions(
        assets=[build_analytics_asset(spec, daily, settings.env) for spec in ANALYTICS],
        sensors=[
            build_abandoned_runs_sensor(),
            *build_alert_sensors(),
            build_stale_days_sensor(),
            dg.AutomationConditionSensorDefinition(
                "lake_automation_sensor",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=10,
                description="Rebuilds each day's Parquet, table and analytics when its staged day "
                "changes, including old days that late data touched; refreshes today's and "
                "yesterday's analytics every hour at :30 UTC.",
            ),
        ],
        resources=RESOURCES_BY_DEPLOYMENT[settings.env](settings),
        # A step's work is small next to starting a Python process for it (~4 s here).
        executor=dg.in_process_executor,
    )
    # The log export runs where there is a log group to export: the aws deployment.
    exports = [web_log_export_definitions()] if settings.aws and settings.aws.web_log_group else []
    return dg.Definitions.merge(
        *datasets,
        *exports,
        build_source_definitions(MOVIE_RENTAL, settings, daily),
        lake_wide,
    )


# This module is the entry point of the code server and of every run worker (workspace.yaml),
# the processes that ingest, so they choose Arrow's allocator here.
use_system_memory_pool()
defs = build_definitions(Settings.from_env())
