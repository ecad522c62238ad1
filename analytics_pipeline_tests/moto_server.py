"""A local moto server for the Terraform tests, with test-only fixes of moto's gaps.

`moto_server_process()` serves every AWS API the configuration calls on 127.0.0.1 from a
process of its own (`python -m analytics_pipeline_tests.moto_server`), with `patch_moto_gaps`
applied there: moto answers as AWS does where the real configuration needs it. Its own
process, because moto keeps its state per process: deployments applied at the same time each
need theirs.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.awslambda.models import LambdaFunction
from moto.elbv2.models import ELBv2Backend
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.rds.models import DBInstance
from moto.s3.models import FakeBucket
from moto.server import ThreadedMotoServer
from moto.sqs.models import Queue

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _attributes_with_redrive_allow_policy(self: Queue) -> dict[str, Any]:
    result: dict[str, Any] = _MOTO_QUEUE_ATTRIBUTES.fget(self)  # type: ignore[misc]
    # As SQS does, an attribute set to "" (how the provider removes it) is absent.
    if not result.get("RedriveAllowPolicy"):
        result.pop("RedriveAllowPolicy", None)
    # SQS answers compact JSON; moto's spaced JSON reads as a change on every plan.
    if result.get("RedrivePolicy"):
        result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
    return result


_MOTO_QUEUE_ATTRIBUTES: property = Queue.attributes  # type: ignore[assignment]
_INSECURE_TRANSPORT = {"Bool": {"aws:SecureTransport": "false"}}


def _bucket_permission_over_tls(self: FakeBucket, action: str, resource: str) -> Any:
    """A bucket policy evaluated for a request over TLS, as every SDK request to S3 is."""
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy)
    statements = policy["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    kept = [s for s in statements if s.get("Condition") != _INSECURE_TRANSPORT]
    if not kept:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**policy, "Statement": kept})).is_action_permitted(
        action, resource
    )


def _configuration_without_empty_image_config(
    self: LambdaFunction, on_create: bool = False
) -> dict[str, Any]:
    """Lambda answers ImageConfigResponse only for a function that overrides its image's
    command or entry point; moto answers it with empty lists for every image function."""
    config: dict[str, Any] = _MOTO_LAMBDA_CONFIGURATION(self, on_create)
    image_config = config.get("ImageConfigResponse", {}).get("ImageConfig", {})
    if not any(image_config.values()):
        config.pop("ImageConfigResponse", None)
    return config


_MOTO_LAMBDA_CONFIGURATION = LambdaFunction.get_configuration


def _load_balancer_internet_facing_by_default(self: ELBv2Backend, **kwargs: Any) -> Any:
    """ELBv2 makes a load balancer created without a Scheme internet-facing; moto keeps None."""
    return _MOTO_CREATE_LOAD_BALANCER(
        self, **{**kwargs, "scheme": kwargs.get("scheme") or "internet-facing"}
    )


_MOTO_CREATE_LOAD_BALANCER = ELBv2Backend.create_load_balancer


def _db_instance_with_performance_insights(self: DBInstance, backend: Any, **kwargs: Any) -> None:
    """A DB instance that answers the Performance Insights settings it was created with."""
    _MOTO_DB_INSTANCE_INIT(self, backend, **kwargs)
    vars(self).update(
        performance_insights_enabled=bool(kwargs.get("enable_performance_insights")),
        performance_insights_kms_key_id=kwargs.get("performance_insights_kms_key_id"),
    )


_MOTO_DB_INSTANCE_INIT = DBInstance.__init__


def patch_moto_gaps(patch: pytest.MonkeyPatch) -> None:
    """Test-only fixes of moto, for what the real configuration sets.

    - SQS: moto 5.2 stores a queue's RedriveAllowPolicy but neither returns it nor accepts
      its name in GetQueueAttributes, so the provider waits forever to read it back; and it
      returns RedrivePolicy with spaces, which every later plan shows as a change.
    - Lambda: moto answers an image function's ImageConfig with empty Command and
      EntryPoint lists where Lambda omits them, which every later plan shows as a change.
    - ELBv2: the provider sends no Scheme for an internet-facing load balancer, and moto
      then stores and answers none.
    - RDS: moto drops a DB instance's Performance Insights settings, so every later apply
      modifies the instance and waits on it (80 s here).
    - S3: moto evaluates bucket-policy conditions it does not support (Bool) as true, and a
      Deny whose condition fails as a Deny too, so a deny-non-TLS statement refuses every
      object request. Requests here are taken as made over TLS: the statement is dropped.
    """
    patch.setattr(Queue, "BASE_ATTRIBUTES", [*Queue.BASE_ATTRIBUTES, "RedriveAllowPolicy"])
    patch.setattr(Queue, "redrive_allow_policy", None, raising=False)
    patch.setattr(Queue, "attributes", property(_attributes_with_redrive_allow_policy))
    patch.setattr(FakeBucket, "get_permission", _bucket_permission_over_tls)
    patch.setattr(ELBv2Backend, "create_load_balancer", _load_balancer_internet_facing_by_default)
    patch.setattr(DBInstance, "__init__", _db_instance_with_performance_insights)
    patch.setattr(LambdaFunction, "get_configuration", _configuration_without_empty_image_config)


SERVER_START_SECONDS = 120  # importing moto on a loaded machine


@contextmanager
def moto_server_process(log: Path) -> Iterator[str]:
    """A moto server with its gaps patched, in a process of its own: its endpoint URL.

    The server stops when this exits, or when the test process dies (its stdin closes).
    """
    root = Path(__file__).resolve().parents[1]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "analytics_pipeline_tests.moto_server"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert server.stdin is not None and server.stdout is not None
    try:
        ready, _, _ = select.select([server.stdout], [], [], SERVER_START_SECONDS)
        endpoint = server.stdout.readline().strip() if ready else ""
        if not endpoint.startswith("http://"):
            raise AssertionError(f"moto server did not start: {log.read_text()[-2000:]}")
        yield endpoint
    finally:
        server.stdin.close()
        server.stdout.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def moto_client(endpoint_url: str, service: str) -> Any:
    """A boto3 client of the moto server, with the fake keys (its own session: deployments
    are prepared in threads, and boto3's default session is not thread-safe)."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _serve() -> None:
    """The server process: print the endpoint, serve until stdin closes."""
    with pytest.MonkeyPatch.context() as patch:
        patch_moto_gaps(patch)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        print(f"http://{host}:{port}", flush=True)
        sys.stdin.read()
        server.stop()


if __name__ == "__main__":
    _serve()
