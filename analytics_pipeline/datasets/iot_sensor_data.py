"""NDJSON from weather stations; every value arrives as a string."""

from analytics_pipeline.datasets.spec import DatasetSpec, Field, TableSpec

_MEASURES = ("temperature", "humidity", "winddirection", "windintensity", "rainheight")

IOT_SENSOR_DATA = DatasetSpec(
    name="iot_sensor_data",
    description="Weather-station readings, NDJSON, all values as strings.",
    layout="ndjson",
    fields=(
        Field("deviceid", "int"),
        Field("datetime", "timestamp", timestamp_format="%Y-%m-%d %H:%M:%S"),
        *(Field(name, "smallint") for name in _MEASURES),
    ),
    event_time_field="datetime",
    tables=(
        TableSpec(
            "iot_sensor_data",
            ("deviceid", "datetime", *_MEASURES),
            key=("deviceid", "datetime"),
            description="One row per device reading.",
        ),
    ),
)
