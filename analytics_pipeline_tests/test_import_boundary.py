"""Loading the local deployment's definitions must not import what only AWS or a running
step needs: every process (code server, run worker, `make process`) pays for each import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# AWS clients belong to the aws deployment; DuckDB and sqlglot to the steps that query,
# pandas to the steps that parse.
NOT_AT_LOAD = ("boto3", "botocore", "pyathena", "moto", "duckdb", "sqlglot", "pandas")

PROBE = """
import json, sys
import analytics_pipeline.definitions as d
assert d.defs.resolve_asset_graph().get_all_asset_keys()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
"""


def _probe(
    code: str, *args: str, env: dict[str, str], cwd: Path | None = None, timeout: int = 120
) -> Any:
    """Run `code` in a fresh interpreter; the JSON of its last printed line."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_local_definitions_load_without_aws_or_query_modules(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ANALYTICS_PIPELINE_ENV": "local",
        "ANALYTICS_LAKE_DIR": str(tmp_path / "lake"),
        "PYTHONWARNINGS": "ignore",
    }
    assert _probe(PROBE % (NOT_AT_LOAD,), env=env) == []


def test_the_probe_would_notice_an_eager_import(tmp_path: Path) -> None:
    # The same probe, after importing one of the modules, reports it: the check can fail.
    env = {**os.environ, "ANALYTICS_LAKE_DIR": str(tmp_path / "lake"), "PYTHONWARNINGS": "ignore"}
    assert "duckdb" in _probe("import duckdb\n" + PROBE % (NOT_AT_LOAD,), env=env)


def test_cli_leaves_the_garbage_collector_on_when_imported() -> None:
    """Only `python -m ...process|demo` pauses the collector while loading; tests, the code
    server and any other importer keep it on."""
    import gc

    import analytics_pipeline.cli.process  # noqa: F401

    assert gc.isenabled()


# Benchmarks and scripts run outside pytest (`make bench`, `make image-check`, CI helpers):
# they may import the product and local_servers/, never pytest or the test package.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_TESTS = ("benchmarks", "scripts", "local_servers")
TEST_ONLY = ("pytest", "_pytest", "analytics_pipeline_tests")

IMPORT_ALL = """
import importlib, json, sys
names = json.loads(sys.argv[1])
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "imported": sorted(n for n in names if n in sys.modules),
    "test_only": sorted(m for m in sys.modules if m.split(".")[0] in %r),
}))
"""


def _modules_outside_tests() -> list[str]:
    return sorted(
        f"{package}.{path.stem}" if path.stem != "__init__" else package
        for package in OUTSIDE_TESTS
        for path in (PROJECT_ROOT / package).glob("*.py")
    )


def test_benchmarks_and_scripts_import_no_test_code() -> None:
    modules = _modules_outside_tests()
    assert {"benchmarks.run", "scripts.build_image", "local_servers.db_servers"} <= set(modules)
    found = _probe(
        IMPORT_ALL % (TEST_ONLY,),
        json.dumps(modules),
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert found["imported"] == modules  # every one really loaded, in the probe's process
    assert found["test_only"] == []

    # Imports inside functions, and paths handed to a subprocess, never run above: no code line
    # may name the test package (a comment pointing at where the tests live may).
    naming = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for package in OUTSIDE_TESTS
        for path in sorted((PROJECT_ROOT / package).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".sh"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "analytics_pipeline_tests" in line and not line.lstrip().startswith("#")
    ]
    assert naming == []
