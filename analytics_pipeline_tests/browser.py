"""Headless Chromium for UI tests: Debian's build, installed with apt when missing.

Playwright's own browser download does not work on our machines; its Python package drives
Debian's `/usr/bin/chromium` through `executable_path` instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Playwright, sync_playwright

from analytics_pipeline_tests.dev_server import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots the UI tests save, on success and on failure (gitignored).
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APT_TIMEOUT = 600


def ensure_chromium() -> Path:
    """Install Debian's chromium with apt if it is not there yet (CI runs as root)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (as root)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr}")
    if not CHROMIUM.exists():
        raise RuntimeError(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=str(ensure_chromium()), headless=True, args=CHROMIUM_FLAGS
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for a test module, closed after it."""
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()
