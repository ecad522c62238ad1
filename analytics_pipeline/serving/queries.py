"""The API's two questions as validated values and as parameterised Athena-dialect SQL.

Every value a caller sends is bound as a `?` parameter; the only text spliced into SQL is
column names from LEVEL_IDS. One SQL text serves both engines (DuckDB transpiles it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from analytics_pipeline.serving.errors import BadRequest
from analytics_pipeline.serving.scopes import LEVEL_IDS, Scope, check_filters

MAX_RANGE_DAYS = 366
TABLE = "web_requests"
# The analytics table of one row per session per day (sql/web_session_days.sql).
SESSION_DAYS = "web_session_days"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> DateRange:
        """from/to as YYYY-MM-DD, to not before from, at most MAX_RANGE_DAYS days inclusive."""
        first, last = _parse_date("from", start), _parse_date("to", end)
        if last < first:
            raise BadRequest(f"to ({last}) is before from ({first})")
        days = (last - first).days + 1
        if days > MAX_RANGE_DAYS:
            raise BadRequest(f"the range is {days} days; at most {MAX_RANGE_DAYS} may be asked")
        return cls(first, last)

    @property
    def params(self) -> list[str]:
        return [self.start.isoformat(), self.end.isoformat()]


def _parse_date(name: str, value: str | None) -> date:
    if not value:
        raise BadRequest(f"missing parameter {name!r} (a date, YYYY-MM-DD)")
    try:
        if not _ISO_DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}={value!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class StatsQuery:
    level: str
    dates: DateRange
    filters: dict[str, str]
    by_day: bool

    @classmethod
    def parse(
        cls,
        scope: Scope,
        level: str | None,
        start: str | None,
        end: str | None,
        filters: dict[str, str | None],
        by: str | None,
    ) -> StatsQuery:
        """Validate the caller's parameters (400) and narrow them to the key's scope (403)."""
        if not level:
            raise BadRequest("missing parameter 'level' (global, client, reseller or user)")
        given = {column: value for column, value in filters.items() if value is not None}
        check_filters(level, given)
        dates = DateRange.parse(start, end)
        if by not in (None, "day"):
            raise BadRequest(f"by={by!r} is not supported: use by=day or leave it out")
        return cls(level, dates, scope.restrict(level, given), by == "day")

    def sql(self) -> tuple[str, list[str]]:
        ids = list(LEVEL_IDS[self.level])
        keys = (["dt"] if self.by_day else []) + ids
        where, params = _where(self.dates, self.filters)
        select = "".join(f"{key}, " for key in keys)
        grouping = f"GROUP BY {', '.join(keys)}\n" if keys else ""
        ordering = f"ORDER BY {', '.join(keys)}" if keys else ""
        # Over the per-session days: requests are summed (a request is on one day only),
        # sessions counted distinct over the whole period. HAVING drops the one all-empty row
        # an ungrouped aggregate returns for no data.
        sql = (
            f"SELECT {select}count(DISTINCT session_id) AS unique_sessions,\n"
            "    sum(requests) AS requests,\n"
            "    CAST(sum(requests) AS double)"
            " / count(DISTINCT session_id) AS requests_per_session,\n"
            "    CAST(sum(products) AS double) / sum(requests) AS products_per_request\n"
            f"FROM {SESSION_DAYS}\nWHERE {where}\n{grouping}HAVING count(*) > 0\n{ordering}"
        )
        return sql.rstrip(), params


@dataclass(frozen=True)
class SessionQuery:
    session_id: str
    dates: DateRange
    filters: dict[str, str]

    @classmethod
    def parse(
        cls, scope: Scope, session_id: str, start: str | None, end: str | None
    ) -> SessionQuery:
        dates = DateRange.parse(start, end)
        return cls(session_id, dates, scope.restrict(scope.level, {}))

    def sql(self) -> tuple[str, list[str]]:
        where, params = _where(self.dates, self.filters)
        sql = (
            'SELECT "timestamp", request_id, path, product_id, client_id, reseller_id, user_id\n'
            f"FROM {TABLE}\nWHERE session_id = ? AND {where}\n"
            'ORDER BY "timestamp", request_id, product_id'
        )
        return sql, [self.session_id, *params]


def _where(dates: DateRange, filters: dict[str, str]) -> tuple[str, list[str]]:
    """dt BETWEEN first: the engines prune to the days asked before reading a row."""
    columns = [column for column in ("client_id", "reseller_id", "user_id") if column in filters]
    where = " AND ".join(["dt BETWEEN ? AND ?", *(f"{column} = ?" for column in columns)])
    return where, [*dates.params, *(filters[column] for column in columns)]
