"""Headless Chromium for UI tests: Debian's build, installed with apt when missing.

Playwright's own browser download does not work on our machines; its Python package drives
Debian's `/usr/bin/chromium` through `executable_path` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Playwright, sync_playwright

from local_servers.apt import ensure_installed
from local_servers.dev_server import PROJECT_ROOT

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


def ensure_chromium() -> Path:
    """Install Debian's chromium with apt if it is not there yet (CI runs as root)."""
    return ensure_installed("chromium", CHROMIUM)


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
