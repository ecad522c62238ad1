"""Realistic sample data for every dataset, dropped into landing/ as producers would.

Every landing key has one content for a given seed and scale, whatever the window: a day's
files depend only on that day, and the special files (bad records, the late backlog) are
extra keys. So generating a window again, or a window that overlaps an earlier one,
re-delivers identical files, which the lake must not count twice.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from analytics_pipeline.datasets.app_events import (
    SIGN_IN_EVENT,
    SIGN_UP_EVENT,
    USERAUTH_SIGN_IN,
    USERAUTH_SIGN_UP,
)

# A device's uplink fails every OUTAGE_CYCLE_DAYS days (by calendar, not by window); that
# day's readings arrive LATE_BY_DAYS later as one backlog file. With the default 14-day
# window exactly one backlog falls inside it (12 consecutive candidate days, cycle 12).
LATE_BY_DAYS = 2
OUTAGE_CYCLE_DAYS = 12

_DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)


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


@dataclass
class SampleSummary:
    lake_dir: Path
    start_date: date
    end_date: date
    seed: int
    scale: float
    datasets: dict[str, DatasetSample]
    table_days: dict[str, dict[str, int]]  # output table -> event date -> good records

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
            "  good records per table: "
            + ", ".join(f"{name} {rows}" for name, rows in self.tables.items())
        )
        return out


class _Dataset:
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
        _products(window, seed, scale),
        _iot_sensor_data(window, seed, scale),
        _app_events(window, seed, scale),
        _web_requests(window, seed, scale),
    ]
    table_days: dict[str, dict[str, int]] = {}
    for ds in built:
        base = Path(lake_dir) / "landing" / ds.name
        for key, data in sorted(ds.files.items()):
            _write_atomically(base / key, data)
        ds.summary.files = len(ds.files)
        ds.summary.keys = sorted(ds.files)
        table_days.update({t: dict(sorted(d.items())) for t, d in ds.table_days.items()})
    return SampleSummary(
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


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _count(base: float, scale: float, minimum: int) -> int:
    return max(minimum, round(base * scale))


def _ndjson(rows: list[dict[str, Any]], newline: str = "\n") -> bytes:
    return "".join(json.dumps(row, separators=(",", ":")) + newline for row in rows).encode()


def _day_path(day: date) -> str:
    return day.strftime("%Y/%m/%d")


# products: one JSON object per file, <id>.json


def _products(window: list[date], seed: int, scale: float) -> _Dataset:
    ds = _Dataset("products")
    for day in window:
        rng = _rng(seed, ds.name, day)
        n = max(1, round(_count(20, scale, 1) * rng.uniform(0.7, 1.3)))
        for i in range(1, n + 1):
            product = rng.choices("ABC", weights=(5, 3, 2))[0]
            obj = {"id": _product_id(day, i), "date": day.isoformat(), "product": product}
            ds.add_file(f"{obj['id']}.json", (json.dumps(obj, indent=2) + "\n").encode())
            ds.good("products", day)
    # Bad files on the last day only: they are extra keys, so no other day's files change.
    end = window[-1]
    first_bad = _product_id(end, 9001)
    ds.add_file(
        f"{first_bad}.json",
        json.dumps({"id": first_bad, "date": end.isoformat(), "product": "D"}).encode(),
    )
    ds.bad("product 'D' is not A, B or C")
    ds.add_file(
        f"{first_bad + 1}.json",
        json.dumps({"id": first_bad + 1, "date": "2020-02-30", "product": "A"}).encode(),
    )
    ds.bad("impossible date 2020-02-30")
    ds.add_file(f"{first_bad + 2}.json", b"")
    ds.bad("empty file")
    return ds


def _product_id(day: date, i: int) -> int:
    return int(f"{day:%Y%m%d}{i:04d}")


# iot_sensor_data: NDJSON from two gateways, every value a string


@dataclass(frozen=True)
class _Device:
    deviceid: int
    gateway: int
    temperature_offset: float
    prevailing_wind: int


def _devices(seed: int, scale: float) -> list[_Device]:
    rng = _rng(seed, "iot_sensor_data", "devices")
    return [
        _Device(1001 + i, 1 + i % 2, rng.uniform(-3, 3), rng.randrange(360))
        for i in range(_count(10, scale, 2))
    ]


def _is_outage_day(day: date) -> bool:
    return day.toordinal() % OUTAGE_CYCLE_DAYS == 0


def _iot_sensor_data(window: list[date], seed: int, scale: float) -> _Dataset:
    ds = _Dataset("iot_sensor_data")
    devices = _devices(seed, scale)
    flaky = devices[-1]  # the station whose uplink fails on outage days
    per_day = _count(144, scale, 6)
    interval = 86_400 // per_day
    batch_hours = (0, 6, 12, 18)
    for day in window:
        rng = _rng(seed, ds.name, day)
        batches: dict[tuple[int, int], list[dict[str, str]]] = defaultdict(list)
        backlog: list[dict[str, str]] = []
        for device in devices:
            offset = device.deviceid * 37 % interval
            for j in range(per_day):
                second = j * interval + offset
                reading = _reading(rng, device, day, second)
                if device is flaky and _is_outage_day(day):
                    backlog.append(reading)
                else:
                    batches[(device.gateway, second // 3600 // 6 * 6)].append(reading)
        for gateway in (1, 2):
            for hour in batch_hours:
                rows = sorted(batches[(gateway, hour)], key=lambda r: r["datetime"])
                if not rows:
                    continue
                # Gateway 2 runs Windows and writes CRLF line endings; they are not records.
                newline = "\r\n" if gateway == 2 else "\n"
                ds.add_file(
                    f"{_day_path(day)}/gw-{gateway:02d}-{day:%Y%m%d}T{hour:02d}00.ndjson",
                    _ndjson(rows, newline),
                )
                ds.good("iot_sensor_data", day, len(rows))
        delivered = day + timedelta(days=LATE_BY_DAYS)
        if backlog and delivered <= window[-1]:
            # Late data: arrives in a later day's batch, must update this day's partition.
            key = (
                f"{_day_path(delivered)}/gw-{flaky.gateway:02d}-backlog-"
                f"{flaky.deviceid}-{day:%Y%m%d}.ndjson"
            )
            ds.add_file(key, _ndjson(sorted(backlog, key=lambda r: r["datetime"])))
            ds.good("iot_sensor_data", day, len(backlog))
            ds.summary.late_keys.append(key)
    end = window[-1]
    resend = [
        # A gateway crashed mid-write and resent: a truncated line and a sensor error value.
        '{"deviceid":"1001","datetime":"' + f"{end} 23:59:00" + '","temperature":"1',
        json.dumps(
            {
                "deviceid": str(devices[0].deviceid),
                "datetime": f"{end} 23:59:30",
                "temperature": "n/a",
                "humidity": "81",
                "winddirection": "200",
                "windintensity": "12",
                "rainheight": "0",
            },
            separators=(",", ":"),
        ),
    ]
    ds.add_file(
        f"{_day_path(end)}/gw-01-resend-{end:%Y%m%d}T2359.ndjson",
        ("\n".join(resend) + "\n").encode(),
    )
    ds.bad("malformed JSON line")
    ds.bad("wrong type: temperature 'n/a'")
    return ds


def _reading(rng: random.Random, device: _Device, day: date, second: int) -> dict[str, str]:
    hour = second / 3600
    temperature = 11 + device.temperature_offset + 7 * math.sin((hour - 9) / 24 * 2 * math.pi)
    raining = rng.random() < 0.12
    stamp = datetime(day.year, day.month, day.day) + timedelta(seconds=second)
    return {
        "deviceid": str(device.deviceid),
        "datetime": stamp.strftime("%Y-%m-%d %H:%M:%S"),
        "temperature": str(round(temperature + rng.gauss(0, 1))),
        "humidity": str(min(100, max(15, round(70 - 2 * (temperature - 11) + rng.gauss(0, 6))))),
        "winddirection": str(round(device.prevailing_wind + rng.gauss(0, 25)) % 360),
        "windintensity": str(max(0, round(rng.gammavariate(2.0, 6.0)))),
        "rainheight": str(rng.randint(1, 14) if raining else 0),
    }


# app_events: Pinpoint events as Kinesis Firehose delivers them, yyyy/mm/dd/HH/ prefixes

# fmt: off
_FIRST = ("ana", "ben", "chloe", "dev", "elif", "femi", "gita", "hugo", "ines", "jon", "kira",
          "liam", "maya", "noah", "olga", "pablo", "quinn", "rosa", "sami", "tara")
_LAST = ("silva", "okafor", "muller", "tanaka", "novak", "garcia", "smith", "kowalski", "rossi",
         "haddad", "berg", "chen", "dubois")
# fmt: on


@dataclass(frozen=True)
class _User:
    id: str
    email: str
    is_test_user: str
    user_type: str


def _app_users(seed: int, scale: float) -> list[_User]:
    rng = _rng(seed, "app_events", "users")
    users = []
    for n in range(_count(120, scale, 6)):
        test = rng.random() < 0.08
        email = (
            f"qa+{n}@test.example.com"
            if test
            else f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{n}@example.com"
        )
        users.append(
            _User(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                email=email,
                # Older app builds send no flag at all: Pinpoint writes the string "null".
                is_test_user="true" if test else rng.choices(("false", "null"), (9, 1))[0],
                user_type=rng.choices(("customer", "reseller", "admin", "null"), (14, 4, 1, 1))[0],
            )
        )
    return users


def _app_events(window: list[date], seed: int, scale: float) -> _Dataset:
    ds = _Dataset("app_events")
    users = _app_users(seed, scale)
    for day in window:
        rng = _rng(seed, ds.name, day)
        by_hour: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for n in range(_count(60, scale, 4)):
            # The event's time is its endpoint's EffectiveDate; the client's clock
            # (event_timestamp) runs a little later, sometimes into the next day.
            millis = _epoch_millis(day) + rng.randrange(_DAY_MS)
            # Mostly the app's custom events; a few of Amplify's standard auth events.
            standard = n % 8 == 1
            if rng.random() < 0.35:
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                email = f"{first}.{last}.{day:%Y%m%d}{n}@example.org"
                kind = USERAUTH_SIGN_UP if standard else SIGN_UP_EVENT
                event = _pinpoint_event(rng, kind, millis, {"email": email})
                table = "sign_up_events"
            else:
                user = rng.choice(users)
                attributes = {
                    "email": user.email,
                    "id": user.id,
                    "is_test_user": user.is_test_user,
                    "user_type": user.user_type,
                }
                kind = USERAUTH_SIGN_IN if standard else SIGN_IN_EVENT
                event = _pinpoint_event(rng, kind, millis, attributes)
                table = "sign_in_events"
            by_hour[millis % _DAY_MS // 3_600_000].append(event)
            ds.good(table, day)
        for _, events in sorted(by_hour.items()):
            events.sort(key=lambda e: e["event_timestamp"])
            # Firehose names an object by its delivery time.
            ds.add_file(_firehose_key(rng, events[0]["arrival_timestamp"]), _ndjson(events))
    end = window[-1]
    rng = _rng(seed, ds.name, end, "bad")
    base = _epoch_millis(end) + 23 * 3_600_000
    invalid_email = _pinpoint_event(
        rng, SIGN_UP_EVENT, base + 1_000, {"email": "maria.garcia@example"}
    )
    # Events the app records that no table takes: valid, quarantined as unrouted.
    page_views = [
        _pinpoint_event(rng, "PageView", base + 2_000 + n, {"page": page})
        for n, page in enumerate(("/pricing", "/signup", "/docs"))
    ]
    no_session = _pinpoint_event(
        rng,
        SIGN_IN_EVENT,
        base + 3_000,
        {
            "email": users[0].email,
            "id": users[0].id,
            "is_test_user": users[0].is_test_user,
            "user_type": users[0].user_type,
        },
    )
    del no_session["session"]
    ds.add_file(_firehose_key(rng, base + 1_000), _ndjson([invalid_email, *page_views, no_session]))
    ds.bad("invalid email 'maria.garcia@example'")
    ds.unrouted(len(page_views))
    ds.bad("missing required field session.session_id")
    return ds


def _epoch_millis(day: date) -> int:
    return (day - _EPOCH).days * _DAY_MS


def _iso_millis(millis: int) -> str:
    stamp = datetime(1970, 1, 1) + timedelta(milliseconds=millis)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def _pinpoint_event(
    rng: random.Random, event_type: str, millis: int, attributes: dict[str, str]
) -> dict[str, Any]:
    """An event effective (endpoint.EffectiveDate) at `millis`; the client stamps it later."""
    client_millis = millis + rng.randrange(0, 90_000)
    session_start = millis - rng.randrange(1_000, 120_000)
    platform = rng.choice(("web", "ios", "android"))
    channel = {"web": "IN_APP", "ios": "APNS", "android": "GCM"}[platform]
    return {
        "event_type": event_type,
        "event_timestamp": client_millis,
        "arrival_timestamp": client_millis + rng.randrange(200, 5_000),
        "event_version": "3.1",
        "application": {
            "app_id": "4c5e8a1b2d3f4e5a9b8c7d6e5f4a3b2c",
            "sdk": {"name": "aws-amplify", "version": "6.0.9"},
        },
        "client": {"client_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))},
        "device": {"platform": {"name": platform}},
        "session": {"session_id": f"{rng.getrandbits(64):016x}", "start_timestamp": session_start},
        "attributes": attributes,
        "endpoint": {
            "ChannelType": channel,
            "EffectiveDate": _iso_millis(millis),
            "OptOut": "NONE",
        },
        "awsAccountId": "123456789012",
    }


def _firehose_key(rng: random.Random, first_millis: int) -> str:
    # Firehose's default naming: yyyy/MM/dd/HH/<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>
    stamp = datetime(1970, 1, 1) + timedelta(milliseconds=first_millis)
    name = f"firehose-pinpoint-events-1-{stamp:%Y-%m-%d-%H-%M-%S}-" + str(
        uuid.UUID(int=rng.getrandbits(128), version=4)
    )
    return f"{stamp:%Y/%m/%d/%H}/{name}.json"


# web_requests: NDJSON request logs, client > reseller > user


@dataclass(frozen=True)
class _Tenant:
    client_id: str
    reseller_id: str
    user_id: str


_CLIENTS = ("acme", "globex", "initech", "umbrella", "hooli")
_PATHS = ("/login", "/dashboard", "/api/search", "/api/products/{}", "/api/cart", "/api/checkout")


def _tenants(seed: int, scale: float) -> list[_Tenant]:
    rng = _rng(seed, "web_requests", "tenants")
    tenants = []
    for client in _CLIENTS[: min(len(_CLIENTS), _count(3, scale, 2))]:
        for r in range(1, rng.randint(2, 3) + 1):
            for u in range(1, rng.randint(2, 4) + 1):
                tenants.append(
                    _Tenant(
                        f"client-{client}",
                        f"reseller-{client}-{r:02d}",
                        f"user-{client}-{r:02d}-{u:02d}",
                    )
                )
    return tenants


def _web_requests(window: list[date], seed: int, scale: float) -> _Dataset:
    ds = _Dataset("web_requests")
    tenants = _tenants(seed, scale)
    products = [f"P-{1000 + i}" for i in range(40)]
    for day in window:
        rng = _rng(seed, ds.name, day)
        files: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
        for _ in range(_count(50, scale, 3)):
            tenant = rng.choice(tenants)
            server = rng.randint(1, 2)
            session_id = f"{rng.getrandbits(64):016x}"
            # Sessions start by 22:00 and last well under an hour: they stay within the day.
            millis = _epoch_millis(day) + rng.randrange(22 * 3_600_000)
            for line in _session_lines(rng, tenant, session_id, millis, products):
                hour = int(line["timestamp"][11:13])
                files[(server, hour // 6 * 6)].append(line)
        for (server, hour), lines in sorted(files.items()):
            lines.sort(key=lambda line: line["timestamp"])
            data = _ndjson(lines)
            if server == 2:
                # This server's log shipper leaves blank lines at flushes; they are not records.
                middle = len(lines) // 2
                data = _ndjson(lines[:middle]) + b"\n" + _ndjson(lines[middle:]) + b"\n"
            ds.add_file(f"{_day_path(day)}/web-{server:02d}-{day:%Y%m%d}T{hour:02d}.ndjson", data)
            ds.good("web_requests", day, len(lines))
    end = window[-1]
    rng = _rng(seed, ds.name, end, "bad")
    tenant = tenants[0]
    # A freshly booted server logs before its clock is set: 1970 is before the partition start.
    boot = {
        "timestamp": "1970-01-01T00:00:07.000Z",
        "session_id": f"{rng.getrandbits(64):016x}",
        "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "client_id": tenant.client_id,
        "reseller_id": tenant.reseller_id,
        "user_id": tenant.user_id,
        "path": "/healthz",
        "method": "GET",
        "status": 200,
        "latency_ms": 3,
    }
    ds.add_file(f"{_day_path(end)}/web-03-{end:%Y%m%d}T00-boot.ndjson", _ndjson([boot]))
    ds.bad("timestamp 1970-01-01 before the partition start")
    # A legacy proxy writes Latin-1: the whole file is rejected as one quarantine entry.
    legacy = list(
        _session_lines(
            rng,
            tenant,
            f"{rng.getrandbits(64):016x}",
            _epoch_millis(end) + 12 * 3_600_000,
            products,
        )
    )
    for line in legacy:
        line["path"] = "/catálogo/ofertas"
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in legacy)
    ds.add_file(f"{_day_path(end)}/legacy-proxy-{end:%Y%m%d}.ndjson", text.encode("latin-1"))
    ds.bad("file not UTF-8 (Latin-1)")
    return ds


def _session_lines(
    rng: random.Random, tenant: _Tenant, session_id: str, millis: int, products: list[str]
) -> Iterator[dict[str, Any]]:
    for _ in range(rng.randint(1, 8)):
        millis += rng.randrange(2_000, 120_000)
        request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        template = rng.choices(_PATHS, weights=(1, 3, 3, 4, 2, 1))[0]
        touched: list[str | None]
        if template == "/api/products/{}":
            touched = [rng.choice(products)]
        elif template in ("/api/cart", "/api/checkout"):
            touched = list(rng.sample(products, rng.randint(1, 4)))
        else:
            touched = [None]
        path = template.format(touched[0])
        for product in touched:
            line: dict[str, Any] = {
                "timestamp": _iso_millis(millis),
                "session_id": session_id,
                "request_id": request_id,
                "client_id": tenant.client_id,
                "reseller_id": tenant.reseller_id,
                "user_id": tenant.user_id,
            }
            if product is not None:
                line["product_id"] = product
            line |= {
                "path": path,
                "method": "POST" if "cart" in path or "checkout" in path else "GET",
                "status": 200,
                "latency_ms": rng.randint(8, 400),
            }
            yield line


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
