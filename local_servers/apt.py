"""Installing a Debian package a test needs, as CI (a fresh machine, root) must.

Two pytest workers may both find a package missing: the install is serialised by a lock file,
each re-checks after taking it, and apt itself waits for dpkg's lock (another apt on the
machine) instead of failing at once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

APT_TIMEOUT = 600
LOCK = Path("/tmp/analytics-pipeline-tests-apt.lock")


def ensure_installed(package: str, executable: Path) -> Path:
    """`executable` after installing `package` with apt if it is missing."""
    if executable.exists():
        return executable
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(
            f"{executable} is missing: install it with `apt-get install -y {package}` (as root)"
        )
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if executable.exists():  # the other worker installed it while this one waited
            return executable
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        wait = ["-o", f"DPkg::Lock::Timeout={APT_TIMEOUT}"]
        for command in (
            ["apt-get", *wait, "update", "-qq"],
            ["apt-get", *wait, "install", "-y", "-qq", package],
        ):
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr}"
                )
    if not executable.exists():
        raise RuntimeError(f"apt-get installed {package} but {executable} is still missing")
    return executable
