"""products: one JSON object per file, <id>.json; three bad files on the last day."""

from __future__ import annotations

import json
from datetime import date

from analytics_pipeline.cli.samples.common import SampleFiles, scaled_count, seeded_rng


def products(window: list[date], seed: int, scale: float) -> SampleFiles:
    ds = SampleFiles("products")
    for day in window:
        rng = seeded_rng(seed, ds.name, day)
        n = max(1, round(scaled_count(20, scale, 1) * rng.uniform(0.7, 1.3)))
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
