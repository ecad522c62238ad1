"""Source rows typed into Arrow, untypable rows rejected with a reason, merges by key."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from analytics_pipeline.lake.source_rows import (
    SchemaDriftError,
    athena_type,
    check_drift,
    merge_days,
    to_arrow,
)

COLUMNS = {"rental_id": "bigint", "rental_date": "timestamp", "amount": "double"}


def _rows(*rows: tuple[object, ...]) -> pa.Table:
    return to_arrow(COLUMNS, rows, "rental_date").table


def test_database_python_types_map_to_athena_types() -> None:
    assert athena_type("t", "c", bool) == "boolean"
    assert athena_type("t", "c", Decimal) == "double"
    assert athena_type("t", "c", datetime) == "timestamp"
    assert athena_type("t", "c", date) == "date"
    with pytest.raises(TypeError, match=r"t\.c: no Athena type for database type bytes"):
        athena_type("t", "c", bytes)


def test_untypable_rows_are_rejected_with_their_reason_and_the_rest_kept() -> None:
    typed = to_arrow(
        COLUMNS,
        [
            (1, datetime(2026, 1, 1, 10), Decimal("2.99")),
            (2, "not a time", Decimal("1.00")),
            (3, None, Decimal("0.99")),
        ],
        "rental_date",
    )
    assert typed.table["rental_id"].to_pylist() == [1]
    assert typed.table["dt"].to_pylist() == ["2026-01-01"]
    assert typed.table["amount"].to_pylist() == [2.99]
    reasons = [entry["reason"] for entry in typed.rejected]
    assert reasons[0].startswith("column rental_date: value 'not a time'")
    assert "event date is NULL" in reasons[1]
    assert typed.rejected[1]["row"] == {"rental_id": 3, "rental_date": None, "amount": "0.99"}


def test_merge_replaces_by_key_moves_days_drops_deletes_and_never_doubles() -> None:
    day1 = _rows((1, datetime(2026, 1, 1, 9), 1.0), (2, datetime(2026, 1, 1, 10), 2.0))
    day2 = _rows((3, datetime(2026, 1, 2, 9), 3.0))
    day1, day2 = day1.drop_columns(["dt"]), day2.drop_columns(["dt"])
    changed = _rows(
        (1, datetime(2026, 1, 1, 9), 1.5),  # an update, read twice (the overlap)
        (1, datetime(2026, 1, 1, 9), 1.5),
        (3, datetime(2026, 1, 3, 9), 3.0),  # its event date moved to another day
        (4, datetime(2026, 1, 2, 11), 4.0),  # new
    )
    removed = pa.table({"rental_id": pa.array([2], pa.int64())})
    merged = merge_days({"2026-01-01": day1, "2026-01-02": day2}, changed, removed, ["rental_id"])
    assert {day: t["rental_id"].to_pylist() for day, t in merged.items()} == {
        "2026-01-01": [1],
        "2026-01-02": [4],
        "2026-01-03": [3],
    }
    assert merged["2026-01-01"]["amount"].to_pylist() == [1.5]
    assert all("dt" not in table.column_names for table in merged.values())


def test_an_added_column_is_reported_and_a_changed_type_stops_naming_the_column() -> None:
    assert check_drift("film", {"a": "bigint"}, {"a": "bigint", "b": "string"}) == ["b"]
    with pytest.raises(SchemaDriftError, match=r"film\.a: type changed from bigint to string"):
        check_drift("film", {"a": "bigint"}, {"a": "string"})
