"""web_requests: NDJSON request logs of a multi-tenant app, client > reseller > user."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from analytics_pipeline.cli.samples.common import (
    SampleFiles,
    day_path,
    epoch_millis,
    iso_millis,
    ndjson,
    scaled_count,
    seeded_rng,
)


@dataclass(frozen=True)
class _Tenant:
    client_id: str
    reseller_id: str
    user_id: str


_CLIENTS = ("acme", "globex", "initech", "umbrella", "hooli")
_PATHS = ("/login", "/dashboard", "/api/search", "/api/products/{}", "/api/cart", "/api/checkout")


def _tenants(seed: int, scale: float) -> list[_Tenant]:
    rng = seeded_rng(seed, "web_requests", "tenants")
    tenants = []
    for client in _CLIENTS[: min(len(_CLIENTS), scaled_count(3, scale, 2))]:
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


def web_requests(window: list[date], seed: int, scale: float) -> SampleFiles:
    ds = SampleFiles("web_requests")
    tenants = _tenants(seed, scale)
    products = [f"P-{1000 + i}" for i in range(40)]
    for day in window:
        rng = seeded_rng(seed, ds.name, day)
        files: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
        for _ in range(scaled_count(50, scale, 3)):
            tenant = rng.choice(tenants)
            server = rng.randint(1, 2)
            session_id = f"{rng.getrandbits(64):016x}"
            # Sessions start by 22:00 and last well under an hour: they stay within the day.
            millis = epoch_millis(day) + rng.randrange(22 * 3_600_000)
            for line in _session_lines(rng, tenant, session_id, millis, products):
                hour = int(line["timestamp"][11:13])
                files[(server, hour // 6 * 6)].append(line)
        for (server, hour), lines in sorted(files.items()):
            lines.sort(key=lambda line: line["timestamp"])
            data = ndjson(lines)
            if server == 2:
                # This server's log shipper leaves blank lines at flushes; they are not records.
                middle = len(lines) // 2
                data = ndjson(lines[:middle]) + b"\n" + ndjson(lines[middle:]) + b"\n"
            ds.add_file(f"{day_path(day)}/web-{server:02d}-{day:%Y%m%d}T{hour:02d}.ndjson", data)
            ds.good("web_requests", day, len(lines))
    end = window[-1]
    rng = seeded_rng(seed, ds.name, end, "bad")
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
    ds.add_file(f"{day_path(end)}/web-03-{end:%Y%m%d}T00-boot.ndjson", ndjson([boot]))
    ds.bad("timestamp 1970-01-01 before the partition start")
    # A legacy proxy writes Latin-1: the whole file is rejected as one quarantine entry.
    legacy = list(
        _session_lines(
            rng,
            tenant,
            f"{rng.getrandbits(64):016x}",
            epoch_millis(end) + 12 * 3_600_000,
            products,
        )
    )
    for line in legacy:
        line["path"] = "/catálogo/ofertas"
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in legacy)
    ds.add_file(f"{day_path(end)}/legacy-proxy-{end:%Y%m%d}.ndjson", text.encode("latin-1"))
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
                "timestamp": iso_millis(millis),
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
