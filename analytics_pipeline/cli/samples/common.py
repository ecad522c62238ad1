"""What the sample generators share: a dataset's files with exact good/bad accounting, seeded
randomness that depends only on (seed, dataset, day), and NDJSON and time formatting."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)


@dataclass
class DatasetSample:
    """What was delivered for one dataset, counted as the lake must count it."""

    files: int = 0
    good_records: int = 0
    bad_records: int = 0  # malformed records, or whole files, that must end in quarantine
    bad_kinds: list[str] = field(default_factory=list)
    # Valid records of a type no table takes: quarantined too, but counted apart.
    unrouted_records: int = 0
    keys: list[str] = field(default_factory=list)  # landing keys, relative to landing/<dataset>/
    late_keys: list[str] = field(default_factory=list)


class SampleFiles:
    """Files of one dataset being built, with exact good/bad accounting."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.files: dict[str, bytes] = {}
        self.summary = DatasetSample()
        self.table_days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add_file(self, key: str, data: bytes) -> None:
        if key in self.files:
            raise AssertionError(f"{self.name}: key {key} generated twice")
        self.files[key] = data

    def good(self, table: str, day: date, n: int = 1) -> None:
        self.summary.good_records += n
        self.table_days[table][day.isoformat()] += n

    def bad(self, kind: str, n: int = 1) -> None:
        self.summary.bad_records += n
        self.summary.bad_kinds.append(kind)

    def unrouted(self, n: int = 1) -> None:
        self.summary.unrouted_records += n


def seeded_rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def scaled_count(base: float, scale: float, minimum: int) -> int:
    return max(minimum, round(base * scale))


def ndjson(rows: list[dict[str, Any]], newline: str = "\n") -> bytes:
    return "".join(json.dumps(row, separators=(",", ":")) + newline for row in rows).encode()


def day_path(day: date) -> str:
    return day.strftime("%Y/%m/%d")


def epoch_millis(day: date) -> int:
    return (day - EPOCH).days * DAY_MS


def iso_millis(millis: int) -> str:
    stamp = datetime(1970, 1, 1) + timedelta(milliseconds=millis)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
