"""Realistic sample data for every dataset, dropped into landing/ as producers would.

Every landing key has one content for a given seed and scale, whatever the window: a day's
files depend only on that day, and the special files (bad records, the late backlog) are
extra keys. So generating a window again, or a window that overlaps an earlier one,
re-delivers identical files, which the lake must not count twice.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from analytics_pipeline.cli.samples.app_events import app_events
from analytics_pipeline.cli.samples.common import DatasetSample
from analytics_pipeline.cli.samples.iot_sensor_data import iot_sensor_data
from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.cli.samples.products import products
from analytics_pipeline.cli.samples.web_requests import web_requests
from analytics_pipeline.settings import MOVIE_RENTAL_FILE, sqlite_url


@dataclass
class SampleSummary:
    lake_dir: Path
    start_date: date
    end_date: date
    seed: int
    scale: float
    datasets: dict[str, DatasetSample]
    table_days: dict[str, dict[str, int]]  # output table -> event date -> good records
    database_rows: dict[str, int] = field(default_factory=dict)  # movie_rental table -> rows

    @property
    def tables(self) -> dict[str, int]:
        """Good records per output table."""
        return {name: sum(days.values()) for name, days in sorted(self.table_days.items())}

    def lines(self) -> list[str]:
        out = [
            f"sample data {self.start_date} .. {self.end_date} (seed {self.seed}, scale "
            f"{self.scale:g}) in {self.lake_dir / 'landing'}",
            f"  {'dataset':<16} {'files':>6} {'good':>7} {'bad':>4} {'unrouted':>8}  bad kinds",
        ]
        for name, ds in self.datasets.items():
            out.append(
                f"  {name:<16} {ds.files:>6} {ds.good_records:>7} {ds.bad_records:>4} "
                f"{ds.unrouted_records:>8}  " + "; ".join(ds.bad_kinds)
            )
        out.append(
            f"  movie_rental database {self.lake_dir / MOVIE_RENTAL_FILE}: "
            + ", ".join(f"{name} {rows}" for name, rows in self.database_rows.items())
        )
        out.append(
            "  good records per table: "
            + ", ".join(f"{name} {rows}" for name, rows in self.tables.items())
        )
        return out


def generate(
    lake_dir: Path, *, end_date: date, days: int = 14, seed: int = 7, scale: float = 1.0
) -> SampleSummary:
    """Write `days` days of every dataset, ending at end_date, into <lake_dir>/landing/."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be a positive number, got {scale}")
    window = [end_date - timedelta(days=days - 1 - i) for i in range(days)]
    built = [
        products(window, seed, scale),
        iot_sensor_data(window, seed, scale),
        app_events(window, seed, scale),
        web_requests(window, seed, scale),
    ]
    table_days: dict[str, dict[str, int]] = {}
    for ds in built:
        base = Path(lake_dir) / "landing" / ds.name
        for key, data in sorted(ds.files.items()):
            _write_atomically(base / key, data)
        ds.summary.files = len(ds.files)
        ds.summary.keys = sorted(ds.files)
        table_days.update({t: dict(sorted(d.items())) for t, d in ds.table_days.items()})
    (Path(lake_dir) / MOVIE_RENTAL_FILE).parent.mkdir(parents=True, exist_ok=True)
    database_rows = create_movie_rental(
        sqlite_url(Path(lake_dir) / MOVIE_RENTAL_FILE),
        end_date=end_date,
        days=days,
        seed=seed,
        scale=scale,
    )
    return SampleSummary(
        database_rows=database_rows,
        lake_dir=Path(lake_dir),
        start_date=window[0],
        end_date=end_date,
        seed=seed,
        scale=scale,
        datasets={ds.name: ds.summary for ds in built},
        table_days=table_days,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    # A dot-file is invisible to the landing sensor until the rename makes it whole.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def main(argv: list[str] | None = None) -> int:
    from analytics_pipeline.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lake-dir",
        type=Path,
        default=None,
        help="the lake directory (default: $ANALYTICS_LAKE_DIR or .lake/)",
    )
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument(
        "--end-date",
        type=date.fromisoformat,
        default=None,
        help="last day, YYYY-MM-DD (default: yesterday, UTC)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    lake_dir = args.lake_dir or Settings.from_env().lake_dir
    summary = generate(
        lake_dir,
        end_date=args.end_date or _yesterday(),
        days=args.days,
        seed=args.seed,
        scale=args.scale,
    )
    for line in summary.lines():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
