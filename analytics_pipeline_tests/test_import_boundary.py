"""Loading the local deployment's definitions must not import what only AWS or a running
step needs: every process (code server, run worker, `make process`) pays for each import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# AWS clients belong to the aws deployment; DuckDB and sqlglot to the steps that query,
# pandas to the steps that parse.
NOT_AT_LOAD = ("boto3", "botocore", "pyathena", "moto", "duckdb", "sqlglot", "pandas")

PROBE = """
import json, sys
import analytics_pipeline.definitions as d
assert d.defs.resolve_asset_graph().get_all_asset_keys()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
"""


def test_local_definitions_load_without_aws_or_query_modules(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ANALYTICS_PIPELINE_ENV": "local",
        "ANALYTICS_LAKE_DIR": str(tmp_path / "lake"),
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE % (NOT_AT_LOAD,)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == []


def test_the_probe_would_notice_an_eager_import(tmp_path: Path) -> None:
    # The same probe, after importing one of the modules, reports it: the check can fail.
    done = subprocess.run(
        [sys.executable, "-c", "import duckdb\n" + PROBE % (NOT_AT_LOAD,)],
        env={
            **os.environ,
            "ANALYTICS_LAKE_DIR": str(tmp_path / "lake"),
            "PYTHONWARNINGS": "ignore",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "duckdb" in json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_leaves_the_garbage_collector_on_when_imported() -> None:
    """Only `python -m ...process|demo` pauses the collector while loading; tests, the code
    server and any other importer keep it on."""
    import gc

    import analytics_pipeline.cli.process  # noqa: F401

    assert gc.isenabled()
