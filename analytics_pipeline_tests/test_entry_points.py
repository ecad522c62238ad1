"""Importing the package changes nothing process-wide; the lake defaults to the working dir."""

import os
import subprocess
import sys
from pathlib import Path

from analytics_pipeline.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]

_POOL = "import pyarrow as pa; {imports}; print(pa.default_memory_pool().backend_name)"


def _pool_after(imports: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    out = subprocess.run(
        [sys.executable, "-c", _POOL.format(imports=imports)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_importing_the_package_keeps_arrows_pool() -> None:
    default = _pool_after("pass")
    assert default != "system"
    # Everything but analytics_pipeline.definitions, the code server's entry point.
    imported = _pool_after("import analytics_pipeline.defs.dataset, analytics_pipeline.lake")
    assert imported == default


def test_entry_points_choose_the_system_pool() -> None:
    chosen = "from analytics_pipeline.memory_pool import use_system_memory_pool as f; f()"
    assert _pool_after(chosen) == "system"


def test_default_lake_is_dot_lake_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).lake_dir == tmp_path.resolve() / ".lake"
    other = tmp_path / "elsewhere"
    assert Settings.from_env({"ANALYTICS_LAKE_DIR": str(other)}).lake_dir == other
