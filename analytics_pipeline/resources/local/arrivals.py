"""Arrivals in the local lake: the landing directory, listed every tick."""

from __future__ import annotations

from analytics_pipeline.resources.arrivals import (
    ArrivalTick,
    LandingArrivals,
    RunLookup,
    TickLimits,
    listing_tick,
)
from analytics_pipeline.resources.local.store import LocalLakeStore


class DirectoryArrivals(LandingArrivals):
    """Lists landing/<dataset>/ of the local lake directory every tick."""

    lake_dir: str

    def poll(
        self,
        dataset: str,
        cursor: str | None,
        runs: RunLookup,
        *,
        now: float,
        limits: TickLimits,
    ) -> ArrivalTick:
        listing = LocalLakeStore(lake_dir=self.lake_dir).list_landing(dataset)
        return listing_tick(listing, dataset, cursor, now=now, limits=limits)
