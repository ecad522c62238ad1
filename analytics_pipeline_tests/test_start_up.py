"""What a command loads before it has work: the local deployment's start must not pay for the
AWS clients, the SQL transpiler or pandas (seconds of every `make process` between them)."""

import json
import subprocess
import sys

NOT_AT_START = {"boto3", "botocore", "pyathena", "sqlglot", "pandas", "moto"}


def test_local_definitions_load_without_aws_clients_transpiler_or_pandas(tmp_path):
    code = (
        "import json, sys\n"
        "from analytics_pipeline.definitions import build_definitions\n"
        "from analytics_pipeline.settings import Settings\n"
        "build_definitions(Settings.from_env())\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {"ANALYTICS_LAKE_DIR": str(tmp_path / "lake"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "dagster" in loaded  # the probe ran
    assert not loaded & NOT_AT_START


def test_cli_leaves_the_garbage_collector_on_when_imported(tmp_path):
    """Only `python -m ...process|demo` pauses the collector while loading; tests, the code
    server and any other importer keep it on."""
    import gc

    import analytics_pipeline.cli.process  # noqa: F401

    assert gc.isenabled()
