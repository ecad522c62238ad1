"""Every dataset the lake takes in. Adding one is a spec here and a test."""

from analytics_pipeline.datasets.app_events import APP_EVENTS
from analytics_pipeline.datasets.iot_sensor_data import IOT_SENSOR_DATA
from analytics_pipeline.datasets.products import PRODUCTS
from analytics_pipeline.datasets.spec import DatasetSpec, Field, TableSpec
from analytics_pipeline.datasets.web_requests import WEB_REQUESTS

DATASETS: tuple[DatasetSpec, ...] = (PRODUCTS, IOT_SENSOR_DATA, APP_EVENTS, WEB_REQUESTS)


def dataset(name: str) -> DatasetSpec:
    for spec in DATASETS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown dataset {name!r}; known: {[s.name for s in DATASETS]}")


__all__ = ["DATASETS", "DatasetSpec", "Field", "TableSpec", "dataset"]
