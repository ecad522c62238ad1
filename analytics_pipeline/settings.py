"""The one place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

# The source checkout, for the repository tools (terraform/tables.json); not for data.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The earliest data of the systems this project replaces.
DEFAULT_PARTITIONS_START = "2020-01-01"

# The embedded movie-rental database, relative to the lake (make sample-data writes it).
MOVIE_RENTAL_FILE = "sources/movie_rental.sqlite"


@dataclass(frozen=True)
class AwsSettings:
    """The AWS deployment's names, rendered from `terraform output` (see terraform/README.md).

    Credentials and region come from the standard AWS chain; AWS_ENDPOINT_URL (read by
    boto3 itself) points every client at an emulator such as moto's server.
    """

    landing_bucket: str
    lake_bucket: str
    athena_output: str
    glue_database: str
    athena_workgroup: str
    landing_queue_url: str | None
    # ANALYTICS_WEB_LOG_GROUP: the CloudWatch Logs group exported into landing/web_requests/.
    web_log_group: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AwsSettings:
        required = {
            "landing_bucket": "ANALYTICS_LANDING_BUCKET",
            "lake_bucket": "ANALYTICS_LAKE_BUCKET",
            "athena_output": "ANALYTICS_ATHENA_OUTPUT",
            "glue_database": "ANALYTICS_GLUE_DATABASE",
            "athena_workgroup": "ANALYTICS_ATHENA_WORKGROUP",
        }
        missing = [name for name in required.values() if not environ.get(name)]
        if missing:
            raise ValueError(
                f"ANALYTICS_PIPELINE_ENV=aws needs {', '.join(missing)} "
                "(render them with `make aws-env` from terraform output)"
            )
        values = {field: environ[name] for field, name in required.items()}
        if not values["athena_output"].startswith("s3://"):
            raise ValueError("ANALYTICS_ATHENA_OUTPUT must be an s3:// URI")
        return cls(
            **values,
            landing_queue_url=environ.get("ANALYTICS_LANDING_QUEUE_URL") or None,
            web_log_group=environ.get("ANALYTICS_WEB_LOG_GROUP") or None,
        )


# Per ingest run Dagster stores a staged materialization for every day the run touched
# (~11 CPU-ms each here, more in wall time): one-object files spread over a year cost
# days x runs events, so they want few, big runs (100,000 files over 366 days: 1 run, not 2,
# 366 events and ~4 CPU-s fewer; benchmarks/README.md). What it costs: a run's config holds
# its keys (1-10 MB at 100,000 keys, under Dagster's 100 MB gRPC limit), and a failed run's
# retry redoes its whole batch. Bytes bound a run's duration.
DEFAULT_INGEST_BATCH_FILES = 100_000
DEFAULT_INGEST_BATCH_BYTES = 1 << 30
# A dropped file reaches its table in its ingest run, not after an automation tick and a second
# run worker's start (~15-25 s in `make dev`); a bigger spread of days is a backfill's shape,
# which the ranged runs build in one go.
DEFAULT_INGEST_BUILD_DAYS = 7


@dataclass(frozen=True)
class Settings:
    env: str
    lake_dir: Path
    partitions_start: date
    ingest_batch_files: int
    max_landing_file_bytes: int
    landing_settle_seconds: float
    aws: AwsSettings | None = None
    # Datasets whose landing keys sort by arrival time ("*": all); see keys_time_ordered.
    landing_keys_time_ordered: tuple[str, ...] = ()
    # In that mode, how long after a later-sorting key an earlier one may still appear.
    landing_reorder_seconds: float = 300.0
    # Datasets whose Parquet step runs inside Athena (the scale path; "*": all); aws only.
    athena_compaction: tuple[str, ...] = ()
    # An ingest run takes at most ingest_batch_files files and this many bytes of them.
    ingest_batch_bytes: int = DEFAULT_INGEST_BATCH_BYTES
    # The API's keys (hashed): a local JSON file, or on AWS a Secrets Manager secret.
    api_keys_file: Path = Path(".api_keys.json")
    api_keys_secret: str | None = None
    # Dataset or source -> hours after which its tables fail freshness (ANALYTICS_FRESHNESS_HOURS,
    # "products=48,movie_rental=6"); a dataset not named keeps its spec's window.
    freshness_hours: dict[str, int] = field(default_factory=dict)
    # Where alerts go on AWS (ANALYTICS_ALERTS_TOPIC_ARN); locally, and when unset, the log.
    alerts_topic_arn: str | None = None
    # The movie-rental database (a SQLAlchemy URL); the demo's SQLite file under the lake.
    movie_rental_db_url: str | None = None
    # On AWS, without that URL: the Secrets Manager secret (name or ARN, RDS format) holding it.
    movie_rental_db_secret: str | None = None
    # An ingest run that staged at most this many days builds their Parquet and table itself
    # (ANALYTICS_INGEST_BUILD_DAYS; 0: never); more days go to the automation's ranged runs.
    # Unset: DEFAULT_INGEST_BUILD_DAYS under the daemon, every day in `make process`.
    ingest_build_days: int | None = None

    @property
    def movie_rental_url(self) -> str:
        """ANALYTICS_MOVIE_RENTAL_DB_URL, or the SQLite file that make sample-data writes."""
        return self.movie_rental_db_url or sqlite_url(self.lake_dir / MOVIE_RENTAL_FILE)

    def check_dataset_names(self, names: Iterable[str], sources: Iterable[str] = ()) -> None:
        """The per-dataset switches may only name datasets that exist (freshness: or sources)."""
        known = set(names)
        for variable, chosen, allowed in (
            ("ANALYTICS_LANDING_KEYS_TIME_ORDERED", self.landing_keys_time_ordered, known),
            ("ANALYTICS_ATHENA_COMPACTION", self.athena_compaction, known),
            ("ANALYTICS_FRESHNESS_HOURS", tuple(self.freshness_hours), known | set(sources)),
        ):
            unknown = sorted(set(chosen) - {"*", *allowed})
            if unknown:
                raise ValueError(
                    f"{variable} names unknown datasets {unknown}; "
                    f"known: {sorted(allowed)} (or 1 for all)"
                )

    def keys_time_ordered(self, dataset: str) -> bool:
        """Whether the dataset's landing sensor lists from a StartAfter cursor instead of the
        whole prefix: only on AWS without a queue (the queue sensor replaces listing), and
        only for the datasets ANALYTICS_LANDING_KEYS_TIME_ORDERED names."""
        if self.aws is None or self.aws.landing_queue_url:
            return False
        return "*" in self.landing_keys_time_ordered or dataset in self.landing_keys_time_ordered

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        env = environ.get("ANALYTICS_PIPELINE_ENV", "local")
        if env not in ("local", "aws"):
            raise ValueError(f"ANALYTICS_PIPELINE_ENV must be 'local' or 'aws', got {env!r}")
        # Relative to the working directory, not to the installed package (a wheel has no
        # project around it); `make` runs from the project, so its lake stays `.lake/` there.
        lake_dir = Path(environ.get("ANALYTICS_LAKE_DIR") or ".lake")
        return cls(
            env=env,
            lake_dir=lake_dir.resolve(),
            partitions_start=date.fromisoformat(
                environ.get("ANALYTICS_PARTITIONS_START", DEFAULT_PARTITIONS_START)
            ),
            ingest_batch_files=int(
                environ.get("ANALYTICS_INGEST_BATCH_FILES", str(DEFAULT_INGEST_BATCH_FILES))
            ),
            ingest_batch_bytes=int(
                environ.get("ANALYTICS_INGEST_BATCH_BYTES", str(DEFAULT_INGEST_BATCH_BYTES))
            ),
            max_landing_file_bytes=int(
                environ.get("ANALYTICS_MAX_LANDING_FILE_BYTES", str(1024**3))
            ),
            # A producer may still be writing a file this young; wait before reading it.
            landing_settle_seconds=float(environ.get("ANALYTICS_LANDING_SETTLE_SECONDS", "1")),
            aws=AwsSettings.from_env(environ) if env == "aws" else None,
            landing_keys_time_ordered=_dataset_list(
                environ.get("ANALYTICS_LANDING_KEYS_TIME_ORDERED", "")
            ),
            landing_reorder_seconds=float(environ.get("ANALYTICS_LANDING_REORDER_SECONDS", "300")),
            athena_compaction=_dataset_list(environ.get("ANALYTICS_ATHENA_COMPACTION", "")),
            api_keys_file=Path(
                environ.get("ANALYTICS_API_KEYS_FILE") or ".api_keys.json"
            ).resolve(),
            api_keys_secret=environ.get("ANALYTICS_API_KEYS_SECRET") or None,
            freshness_hours=_hours_by_dataset(environ.get("ANALYTICS_FRESHNESS_HOURS", "")),
            alerts_topic_arn=environ.get("ANALYTICS_ALERTS_TOPIC_ARN") or None,
            movie_rental_db_url=environ.get("ANALYTICS_MOVIE_RENTAL_DB_URL") or None,
            movie_rental_db_secret=environ.get("ANALYTICS_MOVIE_RENTAL_DB_SECRET", "").strip()
            or None,
            ingest_build_days=(
                int(environ["ANALYTICS_INGEST_BUILD_DAYS"])
                if environ.get("ANALYTICS_INGEST_BUILD_DAYS", "").strip()
                else None
            ),
        )

    def freshness_window_hours(self, dataset: str, default: int) -> int:
        return self.freshness_hours.get(dataset, default)


def _hours_by_dataset(value: str) -> dict[str, int]:
    """'products=48,iot_sensor_data=2' -> {'products': 48, 'iot_sensor_data': 2}."""
    hours: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, number = item.partition("=")
        if not number.strip().isdigit() or int(number) < 1:
            raise ValueError(
                f"ANALYTICS_FRESHNESS_HOURS: {item!r} is not <dataset>=<whole hours, at least 1>"
            )
        hours[name.strip()] = int(number)
    return hours


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _dataset_list(value: str) -> tuple[str, ...]:
    """'' / '0' / 'false': none; '1' / 'true' / 'all' / '*': every dataset; else names."""
    value = value.strip()
    if value.lower() in ("", "0", "false", "no", "off"):
        return ()
    if value.lower() in ("1", "true", "yes", "on", "all", "*"):
        return ("*",)
    return tuple(sorted({name.strip() for name in value.split(",") if name.strip()}))
