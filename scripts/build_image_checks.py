"""What scripts/build_image checks inside the built images: each entry point runs as the image
starts it (ENTRYPOINT + CMD), against a real PostgreSQL and a moto server on 127.0.0.1 (chroot
isolation shares the host's network), and the final stage holds no build tools, caches,
uncompiled modules or secrets."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from scripts.build_image import (
    answers,
    container_of,
    image_config,
    output_of,
    run_argv,
    run_in,
    started_in,
    succeeds,
    wait_for,
)

# What the aws deployment's tasks get from Terraform, naming moto's resources.
AWS_ENV = {
    "ANALYTICS_LANDING_BUCKET": "image-check-landing",
    "ANALYTICS_LAKE_BUCKET": "image-check-lake",
    "ANALYTICS_ATHENA_OUTPUT": "s3://image-check-lake/athena-results/",
    "ANALYTICS_GLUE_DATABASE": "image_check",
    "ANALYTICS_ATHENA_WORKGROUP": "primary",
    "ANALYTICS_API_KEYS_SECRET": "image-check-api-keys",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# Prints the modules of the app and of dagster that would be compiled at start (no .pyc).
UNCOMPILED = """
import importlib.util, pathlib, analytics_pipeline, dagster
missing = [str(p) for pkg in (analytics_pipeline, dagster)
           for p in pathlib.Path(pkg.__file__).parent.rglob('*.py')
           if not pathlib.Path(importlib.util.cache_from_source(str(p))).exists()]
print(len(missing), *missing[:5])
"""
# Build tools, package managers, wheels, caches or private keys left in the final stage.
LEFTOVERS = (
    "find / -xdev \\( \\( -type f -o -type l \\) \\( -name uv -o -name uvx -o -name gcc"
    " -o -name cc -o -name make -o -name pip -o -name 'pip3*' -o -name '*.whl' -o -name .env"
    " -o -name credentials \\) -o -type d -name .cache \\) -print 2>/dev/null;"
    " grep -rlI --exclude-dir=site-packages 'PRIVATE KEY-----' /app /opt /etc /root /tmp"
    " 2>/dev/null; true"
)
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY")


@contextmanager
def backends() -> Iterator[dict[str, str]]:
    """A PostgreSQL and a moto server on 127.0.0.1; the env naming them."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from local_servers.db_servers import running_postgres
    from local_servers.dev_server import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    for bucket in (AWS_ENV["ANALYTICS_LANDING_BUCKET"], AWS_ENV["ANALYTICS_LAKE_BUCKET"]):
        s3.create_bucket(Bucket=bucket)
    try:
        with running_postgres() as postgres:
            yield {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint,
                   **postgres.dagster_env()}  # fmt: skip
    finally:
        moto.stop()


def _static_facts(container: str, config: dict, env: dict[str, str]) -> dict[str, object]:
    """User, leftovers, compiled bytecode, baked env, and the cost of importing the app."""
    facts: dict[str, object] = {}
    facts["user"] = run_in(container, {}, "id").strip()
    if run_in(container, {}, "id", "-u").strip() == "0":
        raise RuntimeError("the image runs as root")
    leftovers = run_in(container, {}, "sh", "-c", LEFTOVERS).split()
    if leftovers:
        raise RuntimeError(f"build tools or caches in the final stage: {leftovers[:20]}")
    facts["build tools / caches / wheels left"] = "none"
    uncompiled = run_in(container, {}, "python", "-c", UNCOMPILED).split()
    if uncompiled[0] != "0":
        raise RuntimeError(f"{uncompiled[0]} modules without bytecode, e.g. {uncompiled[1:]}")
    facts["modules without bytecode"] = 0
    baked = [v for v in config.get("Env", []) if any(w in v.split("=")[0] for w in SECRET_WORDS)]
    if baked:
        raise RuntimeError(f"secrets in the image's environment: {baked}")
    facts["secret-like env baked in"] = "none"
    # The same import with the image's bytecode and with none (an empty cache prefix): the
    # difference is what a container would pay at every start without the compile step.
    for label, extra in (("with", {}), ("without", {"PYTHONPYCACHEPREFIX": "/tmp/no-pyc"})):
        started = time.monotonic()
        run_in(container, {**env, **extra}, "python", "-c", "import analytics_pipeline.definitions")
        facts[f"import definitions {label} bytecode (s)"] = round(time.monotonic() - started, 2)
    return facts


def check_dagster_image() -> dict[str, object]:
    """The webserver answers, the daemon's heartbeat is live, the code server is healthy."""
    from local_servers.dev_server import free_port

    config = image_config("dagster")
    entrypoint, command = config["Entrypoint"], config["Cmd"]
    facts: dict[str, object] = {}
    with container_of("dagster") as container, backends() as env:
        facts.update(_static_facts(container, config, env))
        web_port, grpc_port = free_port(), free_port()
        # The image's CMD, bound to loopback on a free port (chroot shares the host's network).
        webserver = [*command[:2], "127.0.0.1", "-p", str(web_port), *command[5:]]
        assert command[1:5] == ["-h", "0.0.0.0", "-p", "3000"], command
        code_server = ["dagster", "code-server", "start", "-h", "127.0.0.1", "-p",
                       str(grpc_port), "-m", "analytics_pipeline.definitions"]  # fmt: skip
        health = run_argv(container, {}, "dagster", "api", "grpc-health-check", "-p",
                          str(grpc_port))  # fmt: skip
        liveness = run_argv(container, env, *entrypoint, "dagster-daemon", "liveness-check")
        with (
            started_in(container, env, *entrypoint, *webserver) as web,
            started_in(
                container, env, *entrypoint, "dagster-daemon", "run", "-w", "workspace.yaml"
            ) as daemon,  # fmt: skip
            started_in(container, env, *entrypoint, *code_server) as grpc,
        ):
            url = f"http://127.0.0.1:{web_port}/server_info"
            facts["webserver /server_info 200 after (s)"] = round(
                wait_for("webserver", lambda: answers(url), web), 1
            )
            facts["code server grpc-health-check ok after (s)"] = round(
                wait_for("code server", lambda: succeeds(health), grpc), 1
            )
            facts["daemon liveness-check ok after (s)"] = round(
                wait_for("daemon", lambda: succeeds(liveness), daemon), 1
            )
            base = f"http://127.0.0.1:{web_port}"
            facts["run launched through the webserver"] = _a_run_completes(base, daemon)
    return facts


LAUNCH = """mutation($job: String!) { launchRun(executionParams: {selector: {
  repositoryLocationName: "analytics_pipeline.definitions", repositoryName: "__repository__",
  jobName: $job}}) { __typename ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
# An ingest of an empty landing prefix: a real run that needs no data.
RUN_JOB = "ingest_products"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def graphql(base: str, query: str, variables: dict[str, str]) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read())["data"])


def _a_run_completes(base: str, daemon: subprocess.Popen) -> str:
    """A run launched through the webserver: the daemon dequeues it and the run worker (the
    image's `dagster api` run process) loads the definitions and runs it to SUCCESS."""
    launched = graphql(base, LAUNCH, {"job": RUN_JOB})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun: {launched}")
    run_id = launched["run"]["runId"]
    status: list[str] = []

    def finished() -> bool:
        status[:] = [graphql(base, RUN_STATUS, {"id": run_id})["runOrError"]["status"]]
        return status[0] in TERMINAL

    seconds = wait_for("run", finished, daemon)
    if status[0] != "SUCCESS":
        raise RuntimeError(f"run {run_id} ended {status[0]}:\n{output_of(daemon)}")
    return f"{RUN_JOB} SUCCESS in {seconds:.0f} s"


def check_lambda_image() -> dict[str, object]:
    """ENTRYPOINT + CMD of the lambda target answers one event through a runtime-API stand-in."""
    from local_servers.lambda_runtime import PERIOD, STATS, RuntimeApi, http_api_event

    config = image_config("lambda")
    server = RuntimeApi()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[0], server.server_address[1]
    server.events.put(http_api_event(STATS, f"level=global&{PERIOD}", None))
    facts: dict[str, object] = {}
    try:
        with container_of("lambda") as container, backends() as env:
            facts["lambda user"] = run_in(container, {}, "id").strip()
            env = {**env, "AWS_LAMBDA_RUNTIME_API": f"{host!s}:{port}"}
            started = time.monotonic()
            argv = [*config["Entrypoint"], *config["Cmd"]]
            with started_in(container, env, *argv) as function:
                try:
                    path, body = server.posts.get(timeout=180)
                except queue.Empty:
                    output = output_of(function)
                    raise RuntimeError(f"no answer from the function:\n{output}") from None
                server.events.put(None)  # its next poll ends before it is stopped
            response = json.loads(body)
            if not path.endswith("/response") or response.get("statusCode") != 401:
                raise RuntimeError(f"unexpected answer at {path}: {response}")
            facts["lambda: keyless event -> 401 after (s)"] = round(time.monotonic() - started, 1)
    finally:
        server.events.put(None)
        server.shutdown()
    return facts
