"""What an API key may see: everything, one client, or one reseller of one client."""

from __future__ import annotations

from dataclasses import dataclass

from analytics_pipeline.serving.errors import BadRequest, Forbidden

# Levels from the top of the tenancy down; a key scoped at one may ask it or any below.
LEVELS = ("global", "client", "reseller", "user")
LEVEL_IDS: dict[str, tuple[str, ...]] = {
    "global": (),
    "client": ("client_id",),
    "reseller": ("client_id", "reseller_id"),
    "user": ("client_id", "reseller_id", "user_id"),
}
MAX_ID_LENGTH = 200


@dataclass(frozen=True)
class Scope:
    client_id: str | None = None
    reseller_id: str | None = None

    @property
    def level(self) -> str:
        if self.reseller_id is not None:
            return "reseller"
        return "client" if self.client_id is not None else "global"

    @property
    def ids(self) -> dict[str, str]:
        """The id columns this scope pins, e.g. {"client_id": "c-1"}."""
        pinned = {"client_id": self.client_id, "reseller_id": self.reseller_id}
        return {column: value for column, value in pinned.items() if value is not None}

    def __str__(self) -> str:
        if self.reseller_id is not None:
            return f"reseller={self.client_id}/{self.reseller_id}"
        return f"client={self.client_id}" if self.client_id is not None else "global"

    @classmethod
    def parse(cls, text: str) -> Scope:
        """'global', 'client=<id>' or 'reseller=<client id>/<reseller id>'."""
        kind, _, value = text.strip().partition("=")
        if kind == "global" and not value:
            return cls()
        if kind == "client" and value and "/" not in value:
            return cls(client_id=value)
        client, _, reseller = value.partition("/")
        if kind == "reseller" and client and reseller and "/" not in reseller:
            return cls(client_id=client, reseller_id=reseller)
        raise ValueError(
            f"unknown scope {text!r}: use global, client=<id> or reseller=<client id>/<id>"
        )

    def restrict(self, level: str, filters: dict[str, str]) -> dict[str, str]:
        """The filters narrowed to this scope: a level above the scope, or an id of another
        tenant, is refused (403); ids the caller left out are pinned to the scope's."""
        if LEVELS.index(level) < LEVELS.index(self.level):
            raise Forbidden(
                f"a key scoped to {self} cannot ask level={level}; "
                f"ask level={self.level} or a level below it"
            )
        for column, value in self.ids.items():
            if filters.get(column, value) != value:
                raise Forbidden(f"this key ({self}) may not see {column}={filters[column]}")
        return {**filters, **self.ids}


def check_filters(level: str, filters: dict[str, str]) -> None:
    """400 for a filter the level does not have, or an id no tenant could have."""
    if level not in LEVELS:
        raise BadRequest(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    for column, value in filters.items():
        if column not in LEVEL_IDS[level]:
            takes = ", ".join(LEVEL_IDS[level]) or "no id filters"
            raise BadRequest(f"level={level} does not take {column} (it takes {takes})")
        if not value or len(value) > MAX_ID_LENGTH:
            raise BadRequest(f"{column} must be 1 to {MAX_ID_LENGTH} characters")
