"""Start `dagster dev` (UI + daemon), or the production pair `dagster-daemon run` +
`dagster-webserver`, on a free 127.0.0.1 port; stop each by its process group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from analytics_pipeline.cli.dagster_home import ensure_dagster_home

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class DevServer:
    url: str
    lake_dir: Path
    dagster_home: Path
    log_path: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_dev(
    lake_dir: Path, dagster_home: Path, extra_env: dict | None = None
) -> Iterator[DevServer]:
    dagster_home.mkdir(parents=True, exist_ok=True)
    ensure_dagster_home(dagster_home)
    port = free_port()
    env = {
        **os.environ,
        "ANALYTICS_LAKE_DIR": str(lake_dir),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PORT": str(port),
        **(extra_env or {}),
    }
    log_path = dagster_home / "dagster-dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with open(log_path, "wb") as log:
        # A new session: `dagster dev` ignores SIGTERM from a non-interactive parent otherwise,
        # and the group lets us stop its webserver, daemon and code servers together.
        process = subprocess.Popen(
            [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DevServer(f"http://127.0.0.1:{port}", lake_dir, dagster_home, log_path)
    try:
        wait_until_up(server.url, process, server.log_path)
        yield server
    finally:
        stop_process_group(process)


@contextmanager
def dagster_services(lake_dir: Path, dagster_home: Path, extra_env: dict) -> Iterator[DevServer]:
    """The daemon and the webserver as a deployment runs them: two processes sharing the
    instance that $DAGSTER_HOME/dagster.yaml (written by the caller) describes."""
    port = free_port()
    env = {
        **os.environ,
        "ANALYTICS_LAKE_DIR": str(lake_dir),
        "DAGSTER_HOME": str(dagster_home),
        **extra_env,
    }
    bin_dir = Path(sys.executable).parent
    commands = {
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        "webserver": [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                      "-w", "workspace.yaml"],
    }  # fmt: skip
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            with open(dagster_home / f"{name}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=PROJECT_ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        daemon, webserver = processes
        server = DevServer(
            f"http://127.0.0.1:{port}", lake_dir, dagster_home, dagster_home / "daemon.log"
        )
        wait_until_up(server.url, webserver, dagster_home / "webserver.log")
        if daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited early:\n{server.log_path.read_text()}")
        yield server
    finally:
        for process in processes:
            stop_process_group(process)


def wait_until_up(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Until the server at url answers /server_info; its log's tail if it exits first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{process.args!r} not up after {STARTUP_TIMEOUT}s")


def stop_process_group(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    """Stop a server started in its own process group, by its PID: TERM, then KILL. A
    `dagster dev` with a run in progress can take 30 s and more to stop on TERM; what the
    tests keep of it is on disk already, so it gets grace_seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
