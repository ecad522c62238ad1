"""Which days are older than a parent day, reading only what changed since the last check.

A day can only turn stale when a parent day gets a newer materialization. So a check reads
each parent's materializations after the newest one it read last time, compares just those
days (and the days still stale last time) with the asset's own, and carries the stale days
forward until they are rebuilt. Its work follows what changed, not the years of history.
The first check, with nothing to start from, reads every day once.
"""

import itertools
import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol

import dagster as dg

MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION
# More days than this are read as the whole asset and filtered here: a `partition IN (...)`
# list that long would pass SQLite's limit on bound parameters.
MAX_LISTED_DAYS = 500
# How many materializations of a snapshot are read back to find its latest change: an hour
# apart (the extract's schedule), two days of them; the race it closes lasts one tick.
SNAPSHOT_WALK = 48
DATA_VERSION_TAG = "dagster/data_version"
USER_DATA_VERSION_TAG = "dagster/data_version_is_user_provided"


class AssetGraphLike(Protocol):
    """What a check reads of an asset graph: `Definitions.resolve_asset_graph()` and
    `context.repository_def.asset_graph` both give one, under a type dagster keeps private."""

    @property
    def materializable_asset_keys(self) -> AbstractSet[dg.AssetKey]: ...

    def get(self, key: dg.AssetKey) -> Any: ...


@dataclass(frozen=True)
class StaleCheck:
    """Where a check stopped, and what it found."""

    # Per parent asset: the newest materialization the checks have read.
    read_up_to: Mapping[dg.AssetKey, int] = field(default_factory=dict)
    # Per automated asset: each stale day and the newest materialization of a parent day.
    stale: Mapping[dg.AssetKey, Mapping[str, int]] = field(default_factory=dict)
    # The days this check compared: what it cost, for tests and the benchmark.
    days_compared: int = 0
    # Per asset over a snapshot: the snapshot change its days were all compared with.
    snapshot_at: Mapping[dg.AssetKey, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "read_up_to": {k.to_user_string(): v for k, v in self.read_up_to.items()},
                "stale": {k.to_user_string(): dict(v) for k, v in self.stale.items()},
                "snapshot_at": {k.to_user_string(): v for k, v in self.snapshot_at.items()},
            }
        )

    @staticmethod
    def from_json(text: str | None) -> "StaleCheck | None":
        """The check a cursor saved; None (start from every day) for no or another cursor."""
        try:
            saved = json.loads(text or "")
            return StaleCheck(
                read_up_to={
                    dg.AssetKey.from_user_string(k): int(v) for k, v in saved["read_up_to"].items()
                },
                stale={
                    dg.AssetKey.from_user_string(k): {str(d): int(i) for d, i in days.items()}
                    for k, days in saved["stale"].items()
                },
                snapshot_at={
                    dg.AssetKey.from_user_string(k): int(v)
                    for k, v in saved.get("snapshot_at", {}).items()
                },
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def check_stale(
    graph: AssetGraphLike, instance: dg.DagsterInstance, since: StaleCheck | None = None
) -> StaleCheck:
    """The automated days materialized before a day they are built from, comparing only the
    parent days updated after `since` and the days `since` found stale."""
    since = since or StaleCheck()
    nodes = [graph.get(key) for key in sorted(graph.materializable_asset_keys)]
    automated = [
        n for n in nodes if n.partitions_def is not None and n.automation_condition is not None
    ]

    def day_parents(node: Any) -> list[dg.AssetKey]:
        return sorted(p for p in node.parent_keys if graph.get(p).partitions_def is not None)

    newest_of = newest_materializations(instance, {p for n in automated for p in day_parents(n)})
    updated: dict[dg.AssetKey, Mapping[str, int]] = {}
    # Assets read whole by this check (never read before, or many days changed): read once.
    whole: dict[dg.AssetKey, Mapping[str, int]] = {}
    stale: dict[dg.AssetKey, dict[str, int]] = {}
    compared = 0
    for node in automated:
        key = node.key
        parents = day_parents(node)
        days = set(since.stale.get(key, {}))
        for parent in parents:
            if parent not in updated:
                after = since.read_up_to.get(parent)
                if newest_of.get(parent, -1) <= (-1 if after is None else after):
                    updated[parent] = {}  # nothing new: no need to ask for its days
                else:
                    updated[parent] = instance.get_latest_storage_id_by_partition(
                        parent, MATERIALIZATION, after_cursor=after
                    )
                if after is None:
                    whole[parent] = updated[parent]
            days |= updated[parent].keys()
        if not days:
            continue
        compared += len(days)
        newest: dict[str, int] = {}
        for parent in parents:
            for day, storage_id in latest_on_days(instance, parent, days, whole).items():
                newest[day] = max(storage_id, newest.get(day, -1))
        own = latest_on_days(instance, key, days, whole)
        found = {day: sid for day, sid in newest.items() if sid > own.get(day, -1)}
        if found:
            stale[key] = found
    snapshot_at: dict[dg.AssetKey, int] = {}
    for node in automated:
        found, at = snapshot_stale_days(
            instance,
            node,
            day_parents(node),
            since.snapshot_at.get(node.key),
            since.stale.get(node.key, {}),
        )
        if at is not None:
            snapshot_at[node.key] = at
        if found:
            stale.setdefault(node.key, {}).update(found)
    read_up_to = dict(since.read_up_to)
    for parent, by_day in updated.items():
        if by_day:
            read_up_to[parent] = max(read_up_to.get(parent, -1), *by_day.values())
    return StaleCheck(read_up_to, stale, compared, snapshot_at)


def newest_materializations(
    instance: dg.DagsterInstance, keys: AbstractSet[dg.AssetKey]
) -> dict[dg.AssetKey, int]:
    """Each asset's newest materialization, from one read of the asset records."""
    return {
        record.asset_entry.asset_key: record.asset_entry.last_materialization_storage_id
        for record in instance.get_asset_records(sorted(keys))
        if record.asset_entry.last_materialization_storage_id is not None
    }


def latest_on_days(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    days: AbstractSet[str],
    whole: dict[dg.AssetKey, Mapping[str, int]],
) -> Mapping[str, int]:
    """The latest materialization of `key` on each of these days that has one; `whole` holds
    the assets already read whole, and gets those this reads whole."""
    if key not in whole and len(days) <= MAX_LISTED_DAYS:
        return instance.get_latest_storage_id_by_partition(
            key, MATERIALIZATION, partitions=set(days)
        )
    if key not in whole:
        whole[key] = instance.get_latest_storage_id_by_partition(key, MATERIALIZATION)
    return {day: sid for day, sid in whole[key].items() if day in days}


def snapshot_stale_days(
    instance: dg.DagsterInstance,
    node: Any,
    partitioned: list[dg.AssetKey],
    checked_at: int | None = None,
    carried: Mapping[str, int] | None = None,
) -> tuple[dict[str, int], int | None]:
    """The days built before an unpartitioned parent (a source's snapshot) last changed its
    content: every day with rows in a partitioned parent reads it. Those are read whole once
    per change: a change the last check compared already (`checked_at`) leaves only the days
    it found (`carried`) to look at again. Also returns the change (None: no recent one)."""
    changed = [
        at
        for parent in sorted(set(node.parent_keys) - set(partitioned))
        if (at := snapshot_changed_at(instance, parent)) is not None
    ]
    if not changed:
        return {}, None
    at = max(changed)
    if at == checked_at:
        days = {day for day, sid in (carried or {}).items() if sid == at}
        own = latest_on_days(instance, node.key, days, {}) if days else {}
        return {day: at for day in days if own.get(day, -1) < at}, at
    days = set()
    for parent in partitioned:
        days |= instance.get_latest_storage_id_by_partition(parent, MATERIALIZATION).keys()
    own = instance.get_latest_storage_id_by_partition(node.key, MATERIALIZATION)
    return {day: at for day in days if own.get(day, -1) < at}, at


def snapshot_changed_at(
    instance: dg.DagsterInstance, key: dg.AssetKey, walk: int = SNAPSHOT_WALK
) -> int | None:
    """The storage id of the materialization that brought an asset's current content, by
    its own data version; None if the newest `walk` all carry it (an older change, whose
    days were long since rebuilt) or the asset sets no data version of its own."""
    records = instance.fetch_materializations(key, limit=walk).records
    versions = [
        (record.storage_id, _user_data_version(record.asset_materialization)) for record in records
    ]
    current = versions[0][1] if versions else None
    if current is None:
        return None
    for (newer, _), (_, older_version) in itertools.pairwise(versions):
        if older_version != current:
            return newer
    return None


def _user_data_version(materialization: dg.AssetMaterialization | None) -> str | None:
    tags = materialization.tags if materialization else None
    if not tags or tags.get(USER_DATA_VERSION_TAG) != "true":
        return None
    return tags.get(DATA_VERSION_TAG)
