"""Build both image targets on a machine with no container registry and run their entry
points inside them: `uv run --frozen python -m scripts.build_image`.

No registry is reachable here, so the bases are made locally: Debian bookworm's python3.11
from the package mirror (mmdebstrap) and the host's uv binary, given to the Dockerfile as
PYTHON_REPOSITORY / UV_REPOSITORY. The local base also trusts this machine's egress CA (the
host's CA bundle, UV_SYSTEM_CERTS=1) so uv can reach PyPI; a real build uses the official
images.
Builds and runs use buildah's chroot isolation: crun refuses this host's hybrid cgroups.
Downloads a few hundred MB and takes minutes: not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from analytics_pipeline.settings import PROJECT_ROOT

# Local stand-ins under the tags the Dockerfile pins (Debian's python3.11 is 3.11.2).
PYTHON_REPOSITORY = "localhost/python-bookworm-local"
UV_REPOSITORY = "localhost/uv-local"
LOCAL_PYTHON = f"{PYTHON_REPOSITORY}:3.11.7-slim-bookworm"
LOCAL_UV = f"{UV_REPOSITORY}:0.13.9"
IMAGE = "localhost/analytics-pipeline"
TARGETS = ("dagster", "lambda")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ISOLATION = ["--isolation", "chroot"]
WAIT_SECONDS = 180.0


def sh(*command: str, timeout: float = 1800) -> str:
    """Run a command; its stdout, or a clear error with its output's tail."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(command[:6])} ... exited {result.returncode}:\n{tail}")
    return result.stdout


def image_exists(name: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", name],
                          capture_output=True).returncode == 0  # fmt: skip


def uv_binary() -> Path:
    """The real uv executable (not a pyenv shim script): UV_BIN, or the one on PATH."""
    found = os.environ.get("UV_BIN") or shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found: set UV_BIN to the uv executable")
    path = Path(found)
    if path.read_bytes()[:2] == b"#!":  # a shim: ask pyenv where it points
        path = Path(sh("pyenv", "which", "uv").strip())
    return path


def make_local_bases() -> None:
    """localhost/python-bookworm-local from Debian's mirror and localhost/uv-local, once."""
    if not image_exists(LOCAL_PYTHON):
        with tempfile.TemporaryDirectory(prefix="rootfs-") as directory:
            rootfs = Path(directory) / "rootfs.tar"
            sh("mmdebstrap", "--variant=minbase", "--include=python3.11,ca-certificates",
               "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
               "--dpkgopt=path-exclude=/usr/share/locale/*", "bookworm", str(rootfs),
               DEBIAN_MIRROR)  # fmt: skip
            container = sh("buildah", "from", "scratch").strip()
            sh("buildah", "add", container, str(rootfs), "/")
            sh("buildah", "copy", container, str(HOST_CA_BUNDLE), str(HOST_CA_BUNDLE))
            sh("buildah", "config", "--env", "LANG=C.UTF-8", "--env", "UV_SYSTEM_CERTS=1",
               container)  # fmt: skip
            sh("buildah", "commit", "--rm", container, LOCAL_PYTHON)
    if not image_exists(LOCAL_UV):
        container = sh("buildah", "from", "scratch").strip()
        sh("buildah", "copy", container, str(uv_binary()), "/uv")
        sh("buildah", "commit", "--rm", container, LOCAL_UV)


def build(target: str) -> float:
    """Build one target with cached layers; its wall time in seconds."""
    started = time.monotonic()
    sh("buildah", "bud", "--layers", *ISOLATION, "--target", target,
       "--build-arg", f"PYTHON_REPOSITORY={PYTHON_REPOSITORY}",
       "--build-arg", f"UV_REPOSITORY={UV_REPOSITORY}",
       "-t", f"{IMAGE}:{target}", str(PROJECT_ROOT))  # fmt: skip
    # buildah bud leaves the working container of the uv stage (a bare FROM) behind.
    for leftover in sh("buildah", "containers", "-q", "--filter", f"ancestor={LOCAL_UV}").split():
        sh("buildah", "rm", leftover)
    return time.monotonic() - started


def image_config(target: str) -> dict:
    inspected = json.loads(sh("buildah", "inspect", "--type", "image", f"{IMAGE}:{target}"))
    return dict(inspected["OCIv1"]["config"])


@contextmanager
def container_of(target: str) -> Iterator[str]:
    """A working container of the built image, removed on exit."""
    name = sh("buildah", "from", f"{IMAGE}:{target}").strip()
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True)


def run_argv(container: str, env: dict[str, str], *command: str) -> list[str]:
    """`buildah run` of a command in the container as the image's user, with extra env."""
    env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
    return ["buildah", "run", *ISOLATION, *env_flags, container, "--", *command]


def run_in(container: str, env: dict[str, str], *command: str) -> str:
    return sh(*run_argv(container, env, *command), timeout=600)


@contextmanager
def started_in(container: str, env: dict[str, str], *command: str) -> Iterator[subprocess.Popen]:
    """A long-running command in the container, in its own process group, stopped on exit;
    its output goes to a temporary file, read by output_of."""
    from local_servers.dev_server import stop_process_group

    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(run_argv(container, env, *command), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        process.log = log  # type: ignore[attr-defined]
        try:
            yield process
        finally:
            stop_process_group(process)


def output_of(process: subprocess.Popen) -> str:
    process.log.seek(0)  # type: ignore[attr-defined]
    return process.log.read().decode(errors="replace")[-3000:]  # type: ignore[attr-defined]


def wait_for(what: str, check, process: subprocess.Popen) -> float:  # type: ignore[no-untyped-def]
    """Until check() is true; seconds taken. Fails with the process's output if it exits."""
    started = time.monotonic()
    while time.monotonic() - started < WAIT_SECONDS:
        if process.poll() is not None:
            raise RuntimeError(f"{what}: exited {process.returncode}:\n{output_of(process)}")
        if check():
            return time.monotonic() - started
        time.sleep(1)
    raise RuntimeError(f"{what}: not ready in {WAIT_SECONDS:.0f} s:\n{output_of(process)}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def succeeds(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=120).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true", help="check the images already built")
    args = parser.parse_args()
    summary: dict[str, object] = {}
    if not args.no_build:
        make_local_bases()
        for target in TARGETS:
            summary[f"build {target} (s)"] = round(build(target), 1)
    for target in TARGETS:
        summary[f"size {target}"] = sh("buildah", "images", "--format", "{{.Size}}",
                                       f"{IMAGE}:{target}").strip()  # fmt: skip
    from scripts.build_image_checks import check_dagster_image, check_lambda_image

    summary.update(check_dagster_image())
    summary.update(check_lambda_image())
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
