"""One JSON object per file, named <id>.json."""

from analytics_pipeline.datasets.spec import DatasetSpec, Field, TableSpec

PRODUCTS = DatasetSpec(
    name="products",
    description="Product purchases, one JSON object per landing file.",
    layout="json",
    fields=(
        Field("id", "bigint"),
        Field("date", "date"),
        Field("product", "string", allowed=("A", "B", "C")),
    ),
    event_time_field="date",
    tables=(
        TableSpec(
            "products",
            ("id", "date", "product"),
            key=("id",),
            description="One row per product record.",
        ),
    ),
)
