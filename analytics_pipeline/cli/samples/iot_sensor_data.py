"""iot_sensor_data: NDJSON from two gateways, every value a string; an outage's readings
arrive later as one backlog file."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from analytics_pipeline.cli.samples.common import (
    SampleFiles,
    day_path,
    ndjson,
    scaled_count,
    seeded_rng,
)

# A device's uplink fails every OUTAGE_CYCLE_DAYS days (by calendar, not by window); that
# day's readings arrive LATE_BY_DAYS later as one backlog file. With the default 14-day
# window exactly one backlog falls inside it (12 consecutive candidate days, cycle 12).
LATE_BY_DAYS = 2
OUTAGE_CYCLE_DAYS = 12


@dataclass(frozen=True)
class _Device:
    deviceid: int
    gateway: int
    temperature_offset: float
    prevailing_wind: int


def _devices(seed: int, scale: float) -> list[_Device]:
    rng = seeded_rng(seed, "iot_sensor_data", "devices")
    return [
        _Device(1001 + i, 1 + i % 2, rng.uniform(-3, 3), rng.randrange(360))
        for i in range(scaled_count(10, scale, 2))
    ]


def _is_outage_day(day: date) -> bool:
    return day.toordinal() % OUTAGE_CYCLE_DAYS == 0


def iot_sensor_data(window: list[date], seed: int, scale: float) -> SampleFiles:
    ds = SampleFiles("iot_sensor_data")
    devices = _devices(seed, scale)
    flaky = devices[-1]  # the station whose uplink fails on outage days
    per_day = scaled_count(144, scale, 6)
    interval = 86_400 // per_day
    batch_hours = (0, 6, 12, 18)
    for day in window:
        rng = seeded_rng(seed, ds.name, day)
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
                    f"{day_path(day)}/gw-{gateway:02d}-{day:%Y%m%d}T{hour:02d}00.ndjson",
                    ndjson(rows, newline),
                )
                ds.good("iot_sensor_data", day, len(rows))
        delivered = day + timedelta(days=LATE_BY_DAYS)
        if backlog and delivered <= window[-1]:
            # Late data: arrives in a later day's batch, must update this day's partition.
            key = (
                f"{day_path(delivered)}/gw-{flaky.gateway:02d}-backlog-"
                f"{flaky.deviceid}-{day:%Y%m%d}.ndjson"
            )
            ds.add_file(key, ndjson(sorted(backlog, key=lambda r: r["datetime"])))
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
        f"{day_path(end)}/gw-01-resend-{end:%Y%m%d}T2359.ndjson",
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
