"""terraform/ applied to a local moto server: the real configuration plus a provider override.

`applied_terraform` (module scope) copies terraform/ into a temporary directory, adds
`moto_override.tf` (endpoints at the moto server, fake credentials), runs init and apply,
and yields the endpoint and `terraform output` values; it destroys everything afterwards.
`deployment()` does the same with extra variables, for a module's own fixture. A test module
binds the fixtures it uses: `applied_terraform = terraform_fixtures.applied_terraform`, and
`moto_server.moto_gaps_patched` and `moto_server.moto_endpoint` likewise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from analytics_pipeline.settings import PROJECT_ROOT
from analytics_pipeline_tests.moto_server import FAKE_CREDENTIALS, moto_client

TERRAFORM_DIR = PROJECT_ROOT / "terraform"
TERRAFORM = shutil.which("terraform")
PLUGIN_DIR = Path("/opt/tf-plugins")
# terraform init/validate take seconds and apply against moto well under a minute; a moto
# answer the provider keeps retrying would otherwise hang the suite.
TERRAFORM_TIMEOUT_SECONDS = 300

# Throwaway buckets: destroy may empty them.
THROWAWAY_VARIABLES = ("-var=force_destroy_buckets=true",)
APPLY_ARGS = ("-auto-approve", "-input=false", "-no-color", *THROWAWAY_VARIABLES)

requires_terraform = pytest.mark.skipif(
    TERRAFORM is None,
    reason="the terraform binary is not on PATH (install Terraform >= 1.5 to run these checks)",
)

# Services the configuration calls; all served by the one moto server.
_ENDPOINT_SERVICES = (
    *("athena", "glue", "iam", "s3", "sqs", "sts"),
    # Dagster on ECS (terraform/modules/dagster), when dagster_vpc_id is set.
    *("ec2", "ecr", "ecs", "elbv2", "kms", "logs", "rds", "sns"),
    # The analytics API (terraform/modules/api), when api_enabled is set.
    *("apigatewayv2", "lambda", "secretsmanager"),
)

_MOTO_OVERRIDE = """\
# Written by the tests only: terraform merges this into providers.tf's provider block.
provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  max_retries                 = 2

  endpoints {{
{endpoints}
  }}
}}
"""


def terraform_env(home: Path) -> dict[str, str]:
    """Offline, non-interactive terraform: no update check, no user CLI config."""
    home.mkdir(parents=True, exist_ok=True)
    cli_config = home / "terraformrc"
    cli_config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        {
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "AWS_EC2_METADATA_DISABLED": "true",
            **FAKE_CREDENTIALS,
        }
    )
    return env


def init_args() -> list[str]:
    """init from the local provider mirror when there is one, else from the registry."""
    args = ["init", "-backend=false", "-input=false", "-no-color"]
    if PLUGIN_DIR.is_dir():
        args.append(f"-plugin-dir={PLUGIN_DIR}")
    return args


def run_terraform(
    workdir: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    result = subprocess.run(
        [TERRAFORM, f"-chdir={workdir}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TERRAFORM_TIMEOUT_SECONDS,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"terraform {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def copy_configuration(dest: Path) -> Path:
    """The configuration's own files only: no .terraform/, state or lock from a local run."""
    shutil.copytree(
        TERRAFORM_DIR,
        dest,
        ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "*_override.tf", "*.md"),
    )
    return dest


def moto_override(endpoint_url: str) -> str:
    endpoints = "\n".join(f'    {s:<6} = "{endpoint_url}"' for s in _ENDPOINT_SERVICES)
    return _MOTO_OVERRIDE.format(endpoints=endpoints)


def load_terraform_env_script() -> ModuleType:
    """scripts/terraform_env.py (not a package: it runs with the bare system Python)."""
    path = PROJECT_ROOT / "scripts" / "terraform_env.py"
    spec = importlib.util.spec_from_file_location("terraform_env", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def terraform_outputs(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """`terraform output`: name -> value."""
    document = json.loads(run_terraform(workdir, env, "output", "-json").stdout)
    return {name: entry["value"] for name, entry in document.items()}


def vpc_with_two_subnets(endpoint_url: str, cidr_prefix: str = "10.20") -> tuple[str, list[str]]:
    """The account's network as a deployment in a VPC expects it: subnets in two zones."""
    ec2 = moto_client(endpoint_url, "ec2")
    vpc: str = ec2.create_vpc(CidrBlock=f"{cidr_prefix}.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr_prefix}.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate(("us-east-1a", "us-east-1b"))
    ]
    return vpc, subnets


@dataclass
class AppliedTerraform:
    """terraform/ applied to a moto server: where it is, and what `terraform output` said."""

    endpoint_url: str
    outputs: dict[str, Any]
    workdir: Path
    env: dict[str, str] = field(repr=False)
    variables: tuple[str, ...] = ()
    destroyed: bool = False

    def client(self, service: str) -> Any:
        return moto_client(self.endpoint_url, service)

    def pipeline_environment(self) -> dict[str, str]:
        """What a pipeline process needs: the rendered ANALYTICS_* variables, moto, fake keys."""
        rendered = load_terraform_env_script().environment(self.outputs)
        return {
            **rendered,
            "AWS_DEFAULT_REGION": rendered["AWS_REGION"],
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **FAKE_CREDENTIALS,
        }

    def plan(self) -> subprocess.CompletedProcess[str]:
        """`terraform plan -detailed-exitcode` with the applied variables: 0 means no change."""
        return run_terraform(
            self.workdir,
            self.env,
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            *THROWAWAY_VARIABLES,
            *self.variables,
            check=False,
        )

    def planned_changes(self, *variables: str) -> dict[str, dict[str, Any]]:
        """What a plan with these `-var=...` added would change: address -> `change` (JSON).

        Without a refresh: `plan()` is the check that the applied state matches the account.
        """
        plan = "changes.tfplan"
        run_terraform(
            self.workdir, self.env, "plan", "-input=false", "-no-color", "-refresh=false",
            f"-out={plan}", *THROWAWAY_VARIABLES, *self.variables, *variables,
        )  # fmt: skip
        shown = json.loads(run_terraform(self.workdir, self.env, "show", "-json", plan).stdout)
        return {
            c["address"]: c["change"]
            for c in shown["resource_changes"]
            if c["mode"] == "managed" and c["change"]["actions"] != ["no-op"]
        }

    def apply(self, *variables: str) -> subprocess.CompletedProcess[str]:
        """Apply again with these `-var=...` added (later plans and the destroy omit them).

        Without a refresh, as planned_changes: the state is what the last apply left.
        """
        result = run_terraform(
            self.workdir, self.env, "apply", "-refresh=false", *APPLY_ARGS, *self.variables,
            *variables,
        )  # fmt: skip
        self.outputs = terraform_outputs(self.workdir, self.env)
        return result

    def destroy(self) -> subprocess.CompletedProcess[str]:
        result = run_terraform(self.workdir, self.env, "destroy", *APPLY_ARGS, *self.variables)
        self.destroyed = True
        return result


def apply_configuration(endpoint_url: str, root: Path, *variables: str) -> AppliedTerraform:
    """terraform/ applied to the moto server at endpoint_url with extra `-var=...` arguments."""
    if TERRAFORM is None:
        pytest.skip("the terraform binary is not on PATH")
    workdir = copy_configuration(root / "terraform")
    (workdir / "moto_override.tf").write_text(moto_override(endpoint_url))
    env = terraform_env(root / "home")
    run_terraform(workdir, env, *init_args())
    run_terraform(workdir, env, "apply", *APPLY_ARGS, *variables)
    return AppliedTerraform(
        endpoint_url=endpoint_url,
        outputs=terraform_outputs(workdir, env),
        workdir=workdir,
        env=env,
        variables=variables,
    )


@contextmanager
def deployment(endpoint_url: str, root: Path, *variables: str) -> Iterator[AppliedTerraform]:
    """apply_configuration, destroyed on the way out unless a test destroyed it already."""
    applied = apply_configuration(endpoint_url, root, *variables)
    try:
        yield applied
    finally:
        if not applied.destroyed:
            applied.destroy()


@pytest.fixture(scope="module")
def applied_terraform(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppliedTerraform]:
    with deployment(moto_endpoint, tmp_path_factory.mktemp("terraform-moto")) as applied:
        yield applied
