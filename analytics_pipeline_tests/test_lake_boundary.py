"""The lake is pure logic: it is handed a store, catalog or engine and never loads a client."""

from __future__ import annotations

import json
import subprocess
import sys

# Run in a fresh interpreter: this test process has loaded dagster through other tests.
_IMPORT_EVERY_LAKE_MODULE = """
import importlib, json, pkgutil, sys
import analytics_pipeline.lake as lake
for module in pkgutil.walk_packages(lake.__path__, "analytics_pipeline.lake."):
    importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_lake_loads_no_dagster_client_or_resource() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_LAKE_MODULE],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "analytics_pipeline.lake.staging.stager" in loaded  # the walk did import the lake
    assert not {m.split(".")[0] for m in loaded} & {"dagster", "boto3", "botocore", "duckdb"}
    assert not [m for m in loaded if m.startswith("analytics_pipeline.resources")]
