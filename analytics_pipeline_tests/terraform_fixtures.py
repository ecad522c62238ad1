"""terraform/ applied to local moto servers: the real configuration plus a provider override.

Each test module that audits a deployment names it (`DEFAULT_DEPLOYMENT`, `API_DEPLOYMENT`,
`DAGSTER_DEPLOYMENT`: its `-var=...` arguments) and takes it from the session fixture
`terraform_deployments` (conftest.py). A deployment is terraform/ copied into a temporary
directory with `moto_override.tf` (endpoints at its moto server, fake credentials), then
init and apply, against a moto server process of its own.

Applying is mostly waiting (the AWS provider polls after creating a queue, a bucket's
lifecycle rules, a DB instance or a load balancer: 90 to 130 s here for 12 s of CPU), so
every deployment the session's selected tests audit is applied at once, in threads: in the
xdist controller as soon as the workers have collected (`ControllerDeployments`, handed to
the workers as files), or in the test process at the first request without xdist. Each
module's tests then audit their own deployment, change it and destroy it as before; its moto
server stops at the end of the session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from analytics_pipeline.settings import PROJECT_ROOT
from analytics_pipeline_tests.moto_server import FAKE_CREDENTIALS, moto_client, moto_server_process

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


def _no_variables(endpoint_url: str) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class DeploymentSpec:
    """A deployment a test module audits: its `-var=...` arguments, given its moto server
    (a deployment into a VPC first creates the network there)."""

    name: str
    module: str  # the test module's file name: its selected tests are what need it
    variables: Callable[[str], tuple[str, ...]] = _no_variables


API_VARIABLES = ("-var=api_enabled=true", "-var=api_image_tag=v1")
SOURCE_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:movie-rental-db-AbCdEf"


def _api_variables(endpoint_url: str) -> tuple[str, ...]:
    return API_VARIABLES


def _dagster_variables(endpoint_url: str) -> tuple[str, ...]:
    vpc, subnets = vpc_with_two_subnets(endpoint_url)
    return (
        f"-var=dagster_vpc_id={vpc}",
        f"-var=dagster_subnet_ids={json.dumps(subnets)}",
        "-var=dagster_deletion_protection=false",
        "-var=alert_email=data-team@example.com",
        f"-var=movie_rental_db_secret_arn={SOURCE_SECRET}",
    )


DEFAULT_DEPLOYMENT = DeploymentSpec("default", "test_terraform.py")
API_DEPLOYMENT = DeploymentSpec("api", "test_api_deployment.py", _api_variables)
DAGSTER_DEPLOYMENT = DeploymentSpec("dagster", "test_dagster_deployment.py", _dagster_variables)
DEPLOYMENTS = (DEFAULT_DEPLOYMENT, API_DEPLOYMENT, DAGSTER_DEPLOYMENT)


def needed_by(nodeids: Iterable[str]) -> list[DeploymentSpec]:
    """The deployments of the test modules these tests belong to."""
    modules = {Path(nodeid.split("::")[0]).name for nodeid in nodeids}
    return [spec for spec in DEPLOYMENTS if spec.module in modules]


class _Applying:
    """One deployment applied in a thread, on a moto server process of its own."""

    def __init__(
        self, spec: DeploymentSpec, root: Path, done: Callable[[_Applying], None] | None = None
    ) -> None:
        self.spec, self.root = spec, root
        self.applied: AppliedTerraform | None = None
        self.error: BaseException | None = None
        self._servers = ExitStack()
        self._done = done
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._apply, name=f"terraform-{spec.name}")
        self._thread.daemon = True
        self._thread.start()

    def _apply(self) -> None:
        try:
            endpoint = self._servers.enter_context(moto_server_process(self.root / "moto.log"))
            self.applied = apply_configuration(endpoint, self.root, *self.spec.variables(endpoint))
        except BaseException as error:  # a failure or a skip: raised where the test takes it
            self.error = error
        finally:
            self._finished.set()
            if self._done is not None:
                self._done(self)

    def result(self) -> AppliedTerraform:
        self._finished.wait()
        if self.error is not None:
            raise self.error
        assert self.applied is not None
        return self.applied

    def close(self) -> None:
        """Stop the moto server (an apply still running then fails at once), then wait."""
        self._servers.close()
        self._thread.join(timeout=TERRAFORM_TIMEOUT_SECONDS)


class LocalDeployments:
    """Without xdist: at the first request, every deployment the selected tests need is
    applied at once, in this process's threads."""

    def __init__(self, nodeids: Iterable[str], root: Path) -> None:
        self._needed = needed_by(nodeids)
        self._root = root
        self._applying: dict[str, _Applying] = {}

    def applied(self, spec: DeploymentSpec) -> AppliedTerraform:
        if TERRAFORM is None:
            pytest.skip("the terraform binary is not on PATH")
        if not self._applying:
            for needed in {s.name: s for s in [*self._needed, spec]}.values():
                self._start(needed)
        if spec.name not in self._applying:
            self._start(spec)
        return self._applying[spec.name].result()

    def _start(self, spec: DeploymentSpec) -> None:
        self._applying[spec.name] = _Applying(spec, self._root / spec.name)

    def close(self) -> None:
        for applying in self._applying.values():
            applying.close()


class ControllerDeployments:
    """The xdist controller's plugin: it applies the deployments while the workers test.

    Once a worker has collected, every deployment its selected tests need is applied in the
    controller's threads; each is handed over as `<name>.json` (an AppliedTerraform) or
    `<name>.error` in a directory every worker is told of (`workerinput`).
    """

    WORKERINPUT_KEY = "terraform_deployments"

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pytest-terraform-deployments-"))
        self._applying: list[_Applying] = []

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[self.WORKERINPUT_KEY] = str(self.directory)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self._applying or TERRAFORM is None:
            return  # without terraform, each worker's request skips
        for spec in needed_by(ids):
            self._applying.append(_Applying(spec, self.directory / spec.name, self._hand_over))

    def _hand_over(self, applying: _Applying) -> None:
        name = applying.spec.name
        if applying.applied is not None:
            fields = {**asdict(applying.applied), "workdir": str(applying.applied.workdir)}
            document, path = json.dumps(fields), self.directory / f"{name}.json"
        else:
            document, path = f"{applying.error!r}", self.directory / f"{name}.error"
        partial = path.with_suffix(".partial")
        partial.write_text(document)
        partial.rename(path)

    def pytest_unconfigure(self) -> None:
        for applying in self._applying:
            applying.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class HandedOverDeployments:
    """In an xdist worker: the deployments the controller applies, read from its files."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def applied(self, spec: DeploymentSpec) -> AppliedTerraform:
        if TERRAFORM is None:
            pytest.skip("the terraform binary is not on PATH")
        ready, failed = (self._directory / f"{spec.name}{s}" for s in (".json", ".error"))
        deadline = time.monotonic() + 3 * TERRAFORM_TIMEOUT_SECONDS
        while not ready.exists() and not failed.exists():
            assert time.monotonic() < deadline, f"the controller never applied {spec.name}"
            time.sleep(0.5)
        if failed.exists():
            raise AssertionError(f"applying {spec.name} failed: {failed.read_text()}")
        fields = json.loads(ready.read_text())
        fields.update(workdir=Path(fields["workdir"]), variables=tuple(fields["variables"]))
        return AppliedTerraform(**fields)

    def close(self) -> None:
        pass  # the controller stops the servers


@contextmanager
def terraform_deployments(
    config: pytest.Config, nodeids: Iterable[str], root: Path
) -> Iterator[LocalDeployments | HandedOverDeployments]:
    """The session's deployments: from the xdist controller when it applies them."""
    workerinput = getattr(config, "workerinput", {})
    if ControllerDeployments.WORKERINPUT_KEY in workerinput:
        yield HandedOverDeployments(Path(workerinput[ControllerDeployments.WORKERINPUT_KEY]))
        return
    local = LocalDeployments(nodeids, root)
    try:
        yield local
    finally:
        local.close()


def deployment_fixture(spec: DeploymentSpec) -> Any:
    """A module-scoped fixture giving the module its deployment, applied."""

    @pytest.fixture(scope="module")
    def deployed(terraform_deployments: LocalDeployments | HandedOverDeployments) -> Any:
        return terraform_deployments.applied(spec)

    return deployed


applied_terraform = deployment_fixture(DEFAULT_DEPLOYMENT)
