"""The movie-rental OLTP database (a Sakila subset): dimensions as snapshots, facts by day."""

from __future__ import annotations

from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind

MOVIE_RENTAL = SourceSpec(
    name="movie_rental",
    tables=(
        SourceTable("film", ("film_id",)),
        SourceTable("category", ("category_id",)),
        SourceTable("film_category", ("film_id", "category_id")),
        SourceTable("customer", ("customer_id",)),
        SourceTable("inventory", ("inventory_id",)),
        SourceTable("rental", ("rental_id",), TableKind.INCREMENTAL, event_date="rental_date"),
        SourceTable("payment", ("payment_id",), TableKind.INCREMENTAL, event_date="payment_date"),
    ),
)
