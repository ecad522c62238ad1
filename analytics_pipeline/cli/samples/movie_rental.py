"""A Sakila-subset movie rental database on any SQLAlchemy URL (SQLite, PostgreSQL, MariaDB),
with seeded, realistic rentals and payments over a configurable number of days."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

metadata = sa.MetaData()


def _last_update() -> sa.Column[datetime]:
    return sa.Column("last_update", sa.DateTime, nullable=True)


film = sa.Table(
    "film",
    metadata,
    sa.Column("film_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("release_year", sa.Integer),
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
    sa.Column("film_id", sa.Integer, sa.ForeignKey("film.film_id"), primary_key=True),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("category.category_id"), primary_key=True),
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
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("create_date", sa.DateTime, nullable=False),
    _last_update(),
)
inventory = sa.Table(
    "inventory",
    metadata,
    sa.Column("inventory_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("film_id", sa.Integer, sa.ForeignKey("film.film_id"), nullable=False),
    sa.Column("store_id", sa.SmallInteger, nullable=False),
    _last_update(),
)
rental = sa.Table(
    "rental",
    metadata,
    sa.Column("rental_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rental_date", sa.DateTime, nullable=False),
    sa.Column("inventory_id", sa.Integer, sa.ForeignKey("inventory.inventory_id"), nullable=False),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.customer_id"), nullable=False),
    sa.Column("return_date", sa.DateTime),
    sa.Column("staff_id", sa.SmallInteger, nullable=False),
    _last_update(),
)
payment = sa.Table(
    "payment",
    metadata,
    sa.Column("payment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.customer_id"), nullable=False),
    sa.Column("staff_id", sa.SmallInteger, nullable=False),
    sa.Column("rental_id", sa.Integer, sa.ForeignKey("rental.rental_id")),
    sa.Column("amount", sa.Numeric(5, 2), nullable=False),
    sa.Column("payment_date", sa.DateTime, nullable=False),
    _last_update(),
)

CATEGORIES = (
    "Action",
    "Animation",
    "Children",
    "Classics",
    "Comedy",
    "Documentary",
    "Drama",
    "Family",
)
RATINGS = ("G", "PG", "PG-13", "R", "NC-17")
WORDS = (
    "ACADEMY",
    "DINOSAUR",
    "ACE",
    "GOLDFINGER",
    "AFRICAN",
    "EGG",
    "AGENT",
    "TRUMAN",
    "ALADDIN",
    "CALENDAR",
)
FIRST_NAMES = ("MARY", "PATRICIA", "LINDA", "BARBARA", "JOHN", "ROBERT", "MICHAEL", "DAVID")
LAST_NAMES = ("SMITH", "JOHNSON", "WILLIAMS", "JONES", "BROWN", "DAVIS", "MILLER", "WILSON")


def create_movie_rental_database(
    url: str,
    days: int = 7,
    seed: int = 0,
    end: datetime = datetime(2026, 1, 8),
    films: int = 50,
    customers: int = 40,
    rentals_per_day: int = 30,
) -> dict[str, int]:
    """Create (replacing) the Sakila subset at `url`, with rentals over `days` days before `end`.

    Returns the row count per table. The same arguments always produce the same rows.
    """
    rng = random.Random(seed)
    start = end - timedelta(days=days)
    rows = _dimension_rows(rng, start, films, customers)
    rows.update(_fact_rows(rng, start, days, rentals_per_day, rows))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            metadata.drop_all(connection)
            metadata.create_all(connection)
            for table in metadata.sorted_tables:
                if rows[table.name]:
                    connection.execute(table.insert(), rows[table.name])
    finally:
        engine.dispose()
    return {name: len(table_rows) for name, table_rows in rows.items()}


def _dimension_rows(
    rng: random.Random, start: datetime, films: int, customers: int
) -> dict[str, list[dict[str, object]]]:
    loaded = start - timedelta(days=30)
    film_rows = [
        {
            "film_id": film_id,
            "title": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {film_id}",
            "description": "A thoughtful drama of a sumo wrestler and a robot",
            "release_year": 2006,
            "language_id": 1,
            "rental_duration": rng.randint(3, 7),
            "rental_rate": Decimal(rng.choice(("0.99", "2.99", "4.99"))),
            "length": rng.randint(46, 185),
            "replacement_cost": Decimal(f"{rng.randint(9, 29)}.99"),
            "rating": rng.choice(RATINGS),
            "last_update": loaded,
        }
        for film_id in range(1, films + 1)
    ]
    category_rows = [
        {"category_id": index, "name": name, "last_update": loaded}
        for index, name in enumerate(CATEGORIES, 1)
    ]
    film_category_rows = [
        {
            "film_id": row["film_id"],
            "category_id": rng.randint(1, len(CATEGORIES)),
            "last_update": loaded,
        }
        for row in film_rows
    ]
    customer_rows = [
        {
            "customer_id": customer_id,
            "store_id": rng.randint(1, 2),
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": rng.choice(LAST_NAMES),
            "email": f"customer{customer_id}@example.org",
            "active": rng.random() > 0.05,
            "create_date": loaded,
            "last_update": loaded,
        }
        for customer_id in range(1, customers + 1)
    ]
    inventory_rows = [
        {"inventory_id": index, "film_id": film_id, "store_id": store_id, "last_update": loaded}
        for index, (film_id, store_id) in enumerate(
            ((row["film_id"], store) for row in film_rows for store in (1, 2)), 1
        )
    ]
    return {
        "film": film_rows,
        "category": category_rows,
        "film_category": film_category_rows,
        "customer": customer_rows,
        "inventory": inventory_rows,
    }


def _fact_rows(
    rng: random.Random,
    start: datetime,
    days: int,
    per_day: int,
    dims: dict[str, list[dict[str, object]]],
) -> dict[str, list[dict[str, object]]]:
    rates = {row["film_id"]: row["rental_rate"] for row in dims["film"]}
    inventory_film = {row["inventory_id"]: row["film_id"] for row in dims["inventory"]}
    rental_rows: list[dict[str, object]] = []
    payment_rows: list[dict[str, object]] = []
    for day in range(days):
        for _ in range(per_day):
            rented = start + timedelta(days=day, seconds=rng.randint(0, 86_399))
            inventory_id = rng.choice(list(inventory_film))
            customer_id = rng.randint(1, len(dims["customer"]))
            returned = rented + timedelta(hours=rng.randint(2, 24 * 7))
            rental_id = len(rental_rows) + 1
            rental_rows.append(
                {
                    "rental_id": rental_id,
                    "rental_date": rented,
                    "inventory_id": inventory_id,
                    "customer_id": customer_id,
                    "return_date": returned,
                    "staff_id": rng.randint(1, 2),
                    "last_update": returned,
                }
            )
            paid = rented + timedelta(minutes=rng.randint(0, 30))
            payment_rows.append(
                {
                    "payment_id": len(payment_rows) + 1,
                    "customer_id": customer_id,
                    "staff_id": rng.randint(1, 2),
                    "rental_id": rental_id,
                    "amount": rates[inventory_film[inventory_id]],
                    "payment_date": paid,
                    "last_update": paid,
                }
            )
    return {"rental": rental_rows, "payment": payment_rows}
