"""The movie_rental source: a Sakila subset of dimensions read whole and facts read by cursor."""

from __future__ import annotations

from analytics_pipeline.datasets.source_spec import INCREMENTAL, SourceSpec, SourceTable

MOVIE_RENTAL = SourceSpec(
    name="movie_rental",
    tables=(
        SourceTable("film", ("film_id",)),
        SourceTable("category", ("category_id",)),
        SourceTable("film_category", ("film_id", "category_id")),
        SourceTable("customer", ("customer_id",)),
        SourceTable("inventory", ("inventory_id",)),
        SourceTable("rental", ("rental_id",), kind=INCREMENTAL, event_date_column="rental_date"),
        SourceTable("payment", ("payment_id",), kind=INCREMENTAL, event_date_column="payment_date"),
    ),
)
