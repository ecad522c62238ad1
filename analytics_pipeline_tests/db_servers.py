"""Real PostgreSQL 15 and MariaDB servers: own datadir, 127.0.0.1, free port, stopped by PID.

The tests start each once per session (source_databases.py) and give every test a fresh
database on it; the benchmarks start their own. initdb refuses to run as root, so under root
the servers run as `nobody`; MariaDB is installed with apt when missing (CI is a fresh machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from analytics_pipeline_tests.apt import ensure_installed
from analytics_pipeline_tests.dev_server import free_port, stop_process_group

PG_BIN = Path("/usr/lib/postgresql/15/bin")
STARTUP_TIMEOUT = 60.0
# Not $TMPDIR: a test's tmp_path (root-private parents) may be it, and the server may run
# as nobody, who must reach its data directory.
SERVER_PARENT = "/tmp"


@dataclass(frozen=True)
class DatabaseServer:
    """A running server: `admin_url` reaches its maintenance database."""

    admin_url: str
    driver_url: str  # without a database name: append one

    def fresh_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(f"CREATE DATABASE {name}"))
        finally:
            engine.dispose()
        return f"{self.driver_url}/{name}"


def _as_server_user() -> list[str]:
    """The prefix that runs a command as an unprivileged user when we are root."""
    return (
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        if os.getuid() == 0
        else []
    )


@contextmanager
def running_postgres() -> Iterator[DatabaseServer]:
    """A PostgreSQL 15 server in a temporary data directory, for the block's duration."""
    if not (PG_BIN / "postgres").exists():
        raise RuntimeError(f"PostgreSQL 15 binaries missing from {PG_BIN}")
    with tempfile.TemporaryDirectory(prefix="pg-source-", dir=SERVER_PARENT) as directory:
        yield from _run_postgres(Path(directory))


def _run_postgres(root: Path) -> Iterator[DatabaseServer]:
    data = root / "data"
    if os.getuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
    prefix = _as_server_user()
    subprocess.run(
        [*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
         "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    log = open(root / "postgres.log", "wb")  # noqa: SIM115 - open for the server's lifetime
    process = subprocess.Popen(
        [*prefix, str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(root), "-c", "fsync=off", "-c", "full_page_writes=off"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    server = DatabaseServer(admin_url=f"{base}/postgres", driver_url=base)
    try:
        _wait_until_accepting(server.admin_url, process, root / "postgres.log")
        yield server
    finally:
        stop_process_group(process)
        log.close()


def _wait_until_accepting(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    engine = sa.create_engine(url)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"database server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                with engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
                return
            except sa.exc.OperationalError:
                time.sleep(0.2)
    finally:
        engine.dispose()
    raise TimeoutError(f"database server not accepting connections after {STARTUP_TIMEOUT}s")


@contextmanager
def running_mariadb() -> Iterator[DatabaseServer]:
    """A MariaDB server in a temporary data directory (installed first if missing)."""
    if shutil.which("mariadbd", path="/usr/sbin:/usr/bin") is None:
        ensure_installed("mariadb-server", Path("/usr/sbin/mariadbd"))
    with tempfile.TemporaryDirectory(prefix="mariadb-source-", dir=SERVER_PARENT) as directory:
        yield from _run_mariadb(Path(directory))


def _run_mariadb(root: Path) -> Iterator[DatabaseServer]:
    user = "nobody" if os.getuid() == 0 else os.environ.get("USER", "")
    if os.getuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
    data = root / "data"
    subprocess.run(
        ["mariadb-install-db", f"--datadir={data}", f"--user={user}", "--skip-test-db",
         "--auth-root-authentication-method=normal"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    log = open(root / "mariadb.log", "wb")  # noqa: SIM115 - open for the server's lifetime
    process = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={data}", f"--user={user}",
         f"--socket={root / 'mariadb.sock'}", "--bind-address=127.0.0.1", f"--port={port}",
         f"--pid-file={root / 'mariadb.pid'}", "--skip-name-resolve",
         "--innodb-flush-log-at-trx-commit=0"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"mysql+pymysql://root@127.0.0.1:{port}"
    server = DatabaseServer(admin_url=f"{base}/mysql", driver_url=base)
    try:
        _wait_until_accepting(server.admin_url, process, root / "mariadb.log")
        yield server
    finally:
        stop_process_group(process)
        log.close()
