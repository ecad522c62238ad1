"""The one place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The earliest data of the systems this project replaces.
DEFAULT_PARTITIONS_START = "2020-01-01"


@dataclass(frozen=True)
class Settings:
    env: str
    lake_dir: Path
    partitions_start: date
    ingest_batch_files: int
    max_landing_file_bytes: int
    landing_settle_seconds: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        env = environ.get("ANALYTICS_PIPELINE_ENV", "local")
        if env not in ("local", "aws"):
            raise ValueError(f"ANALYTICS_PIPELINE_ENV must be 'local' or 'aws', got {env!r}")
        lake_dir = Path(environ.get("ANALYTICS_LAKE_DIR") or PROJECT_ROOT / ".lake")
        return cls(
            env=env,
            lake_dir=lake_dir.resolve(),
            partitions_start=date.fromisoformat(
                environ.get("ANALYTICS_PARTITIONS_START", DEFAULT_PARTITIONS_START)
            ),
            ingest_batch_files=int(environ.get("ANALYTICS_INGEST_BATCH_FILES", "2000")),
            max_landing_file_bytes=int(
                environ.get("ANALYTICS_MAX_LANDING_FILE_BYTES", str(1024**3))
            ),
            # A producer may still be writing a file this young; wait before reading it.
            landing_settle_seconds=float(environ.get("ANALYTICS_LANDING_SETTLE_SECONDS", "1")),
        )
