"""A realistic movie-rental database (Sakila's columns) on any SQLAlchemy URL, for the demo
and the tests: the same seed, window and scale give the same rows."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from analytics_pipeline.lake.database_types import column_athena_type
from analytics_pipeline.lake.table_definition import TableDef

metadata = sa.MetaData()


def _last_update() -> sa.Column[datetime]:
    return sa.Column("last_update", sa.DateTime, nullable=True)


film = sa.Table(
    "film",
    metadata,
    sa.Column("film_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("release_year", sa.SmallInteger),
    sa.Column("language_id", sa.SmallInteger, nullable=False),
    sa.Column("rental_duration", sa.SmallInteger, nullable=False),
    sa.Column("rental_rate", sa.Numeric(4, 2), nullable=False),
    sa.Column("length", sa.SmallInteger),
    sa.Column("replacement_cost", sa.Numeric(5, 2), nullable=False),
    sa.Column("rating", sa.String(5)),
    _last_update(),
)
category = sa.Table(
    "category",
    metadata,
    sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(25), nullable=False),
    _last_update(),
)
film_category = sa.Table(
    "film_category",
    metadata,
    sa.Column("film_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=False),
    _last_update(),
)
customer = sa.Table(
    "customer",
    metadata,
    sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("store_id", sa.SmallInteger, nullable=False),
    sa.Column("first_name", sa.String(45), nullable=False),
    sa.Column("last_name", sa.String(45), nullable=False),
    sa.Column("email", sa.String(50)),
    sa.Column("address_id", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("create_date", sa.DateTime, nullable=False),
    _last_update(),
)
inventory = sa.Table(
    "inventory",
    metadata,
    sa.Column("inventory_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("film_id", sa.Integer, nullable=False),
    sa.Column("store_id", sa.SmallInteger, nullable=False),
    _last_update(),
)
rental = sa.Table(
    "rental",
    metadata,
    sa.Column("rental_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rental_date", sa.DateTime, nullable=False),
    sa.Column("inventory_id", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("return_date", sa.DateTime),
    sa.Column("staff_id", sa.SmallInteger, nullable=False),
    _last_update(),
)
payment = sa.Table(
    "payment",
    metadata,
    sa.Column("payment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("staff_id", sa.SmallInteger, nullable=False),
    sa.Column("rental_id", sa.Integer),
    sa.Column("amount", sa.Numeric(5, 2), nullable=False),
    sa.Column("payment_date", sa.DateTime, nullable=False),
    _last_update(),
)


def sample_table_defs() -> list[TableDef]:
    """The sample's tables as the extract types them: the schema the movie-rental analytics
    are typed against (a real source's tables are typed from its own database)."""
    return [
        TableDef(
            table.name,
            tuple(
                (c.name, column_athena_type("movie_rental", table.name, c.name, c.type))
                for c in table.columns
            ),
        )
        for table in metadata.sorted_tables
    ]


CATEGORIES = [
    "Action",
    "Animation",
    "Children",
    "Classics",
    "Comedy",
    "Documentary",
    "Drama",
    "Family",
    "Foreign",
    "Games",
    "Horror",
    "Music",
    "New",
    "Sci-Fi",
    "Sports",
    "Travel",
]
_WORDS = [
    "ACADEMY",
    "DINOSAUR",
    "ACE",
    "GOLDFINGER",
    "ADAPTATION",
    "HOLES",
    "AFFAIR",
    "PREJUDICE",
    "AGENT",
    "TRUMAN",
]
_NAMES = [
    "MARY",
    "PATRICIA",
    "LINDA",
    "BARBARA",
    "ELIZABETH",
    "JENNIFER",
    "MARIA",
    "SUSAN",
    "MARGARET",
    "DOROTHY",
]
_SURNAMES = [
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "JONES",
    "BROWN",
    "DAVIS",
    "MILLER",
    "WILSON",
    "MOORE",
    "TAYLOR",
]


def create_movie_rental(
    url: str, *, end_date: date, days: int = 14, seed: int = 7, scale: float = 1.0
) -> dict[str, int]:
    """(Re)create the tables at `url` and fill them; returns rows per table."""
    rng = random.Random(seed)
    start = datetime.combine(end_date - timedelta(days=days - 1), time())
    films = max(int(100 * scale), 10)
    customers = max(int(60 * scale), 5)
    rows: dict[sa.Table, list[dict[str, object]]] = {
        category: [
            {"category_id": i, "name": name, "last_update": start}
            for i, name in enumerate(CATEGORIES, 1)
        ],
        film: [_film(rng, i, start) for i in range(1, films + 1)],
        customer: [_customer(rng, i, start) for i in range(1, customers + 1)],
    }
    rows[film_category] = [
        {"film_id": i, "category_id": rng.randint(1, len(CATEGORIES)), "last_update": start}
        for i in range(1, films + 1)
    ]
    rows[inventory] = [
        {"inventory_id": i, "film_id": rng.randint(1, films), "store_id": rng.randint(1, 2)}
        | {"last_update": start}
        for i in range(1, films * 3 + 1)
    ]
    rows[rental], rows[payment] = _rentals(rng, start, days, films * 3, customers, scale)
    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as connection:
            for table, table_rows in rows.items():
                connection.execute(table.insert(), table_rows)
    finally:
        engine.dispose()
    return {table.name: len(table_rows) for table, table_rows in rows.items()}


def _film(rng: random.Random, film_id: int, start: datetime) -> dict[str, object]:
    return {
        "film_id": film_id,
        "title": f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {film_id}",
        "description": "A Epic Drama of a Feminist And a Mad Scientist",
        "release_year": 2006,
        "language_id": 1,
        "rental_duration": rng.randint(3, 7),
        "rental_rate": Decimal(rng.choice(("0.99", "2.99", "4.99"))),
        "length": rng.randint(46, 185),
        "replacement_cost": Decimal(f"{rng.randint(9, 29)}.99"),
        "rating": rng.choice(("G", "PG", "PG-13", "R", "NC-17")),
        "last_update": start,
    }


def _customer(rng: random.Random, customer_id: int, start: datetime) -> dict[str, object]:
    first, last = rng.choice(_NAMES), rng.choice(_SURNAMES)
    return {
        "customer_id": customer_id,
        "store_id": rng.randint(1, 2),
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}{customer_id}@sakilacustomer.org".lower(),
        "address_id": customer_id + 4,
        "active": rng.random() > 0.05,
        "create_date": start - timedelta(days=rng.randint(30, 900)),
        "last_update": start,
    }


def _rentals(
    rng: random.Random, start: datetime, days: int, inventories: int, customers: int, scale: float
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Rentals over the window, most returned days later; one payment per returned rental."""
    rentals: list[dict[str, object]] = []
    payments: list[dict[str, object]] = []
    per_day = max(int(40 * scale), 2)
    for day in range(days):
        for _ in range(rng.randint(per_day // 2, per_day)):
            rented = start + timedelta(days=day, seconds=rng.randint(0, 86_399))
            returned = rented + timedelta(days=rng.randint(1, 7), seconds=rng.randint(0, 3600))
            end = start + timedelta(days=days)
            rental_id = len(rentals) + 1
            customer_id = rng.randint(1, customers)
            rentals.append(
                {
                    "rental_id": rental_id,
                    "rental_date": rented,
                    "inventory_id": rng.randint(1, inventories),
                    "customer_id": customer_id,
                    "return_date": returned if returned < end else None,
                    "staff_id": rng.randint(1, 2),
                    "last_update": min(returned, end) if returned < end else rented,
                }
            )
            payments.append(
                {
                    "payment_id": len(payments) + 1,
                    "customer_id": customer_id,
                    "staff_id": rng.randint(1, 2),
                    "rental_id": rental_id,
                    "amount": Decimal(rng.choice(("0.99", "2.99", "4.99", "5.99"))),
                    "payment_date": rented,
                    "last_update": rented,
                }
            )
    return rentals, payments
