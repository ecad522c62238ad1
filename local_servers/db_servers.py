"""Real PostgreSQL 15 and MariaDB servers: own datadir, 127.0.0.1, free port, stopped by PID.

The tests start each once per session (source_databases.py) and give every test a fresh
database on it; the benchmarks start their own. PostgreSQL asks for a password (md5), as a
deployed one does: the same server holds the source tests' databases and the Dagster
instances of the storage tests, which name it the way the production dagster.yaml does
(`DAGSTER_PG_*`). initdb refuses to run as root, so under root the servers run as `nobody`;
MariaDB is installed with apt when missing (CI is a fresh machine).
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

from local_servers.apt import ensure_installed
from local_servers.dev_server import free_port, stop_process_group

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER, PG_PASSWORD = "analytics", "not-on-disk-7f3a"
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class DatabaseServer:
    """A running server: `admin_url` reaches its maintenance database."""

    admin_url: str
    driver_url: str  # without a database name: append one
    port: int

    def create_database(self) -> str:
        """Create an empty database; its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(f"CREATE DATABASE {name}"))
        finally:
            engine.dispose()
        return name

    def fresh_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        return f"{self.driver_url}/{self.create_database()}"

    def dagster_env(self) -> dict[str, str]:
        """The `DAGSTER_PG_*` variables of the production dagster.yaml, naming a fresh database."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.create_database(),
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        }


def _as_server_user() -> list[str]:
    """The prefix that runs a command as an unprivileged user when we are root."""
    return (
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        if os.getuid() == 0
        else []
    )


@contextmanager
def running_postgres(fsync: bool = False) -> Iterator[DatabaseServer]:
    """A PostgreSQL of its own, stopped on exit; `fsync=False` (tests) trades durability for
    speed, a benchmark keeps the server's default."""
    if not (PG_BIN / "postgres").exists():
        raise RuntimeError(f"PostgreSQL 15 binaries missing from {PG_BIN}")
    # Not pytest's tmp_path (nor a TMPDIR under it): its parents are private to root, and under
    # root the server runs as nobody.
    with tempfile.TemporaryDirectory(prefix="pg-", dir="/tmp") as directory:
        root = Path(directory)
        data, password_file = root / "data", root / "password"
        if os.getuid() == 0:
            shutil.chown(root, "nobody", "nogroup")
        password_file.write_text(PG_PASSWORD)
        password_file.chmod(0o644)
        prefix = _as_server_user()
        subprocess.run(
            [*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=md5",
             f"--pwfile={password_file}", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        unsafe = [] if fsync else ["-c", "fsync=off", "-c", "full_page_writes=off"]
        command = [*prefix, str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                   "-p", str(port), "-k", str(root), *unsafe]  # fmt: skip
        base = f"postgresql+psycopg://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}"
        with _serving(command, root / "postgres.log", base, "postgres", port) as server:
            yield server


@contextmanager
def _serving(
    command: list[str], log_path: Path, base: str, admin_db: str, port: int
) -> Iterator[DatabaseServer]:
    """Run a server command in its own process group; the server once it takes connections."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = DatabaseServer(admin_url=f"{base}/{admin_db}", driver_url=base, port=port)
    try:
        _wait_until_accepting(server.admin_url, process, log_path)
        yield server
    finally:
        stop_process_group(process)


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
    """A MariaDB server in a temporary data directory, for the block's duration."""
    if shutil.which("mariadbd", path="/usr/sbin:/usr/bin") is None:
        ensure_installed("mariadb-server", Path("/usr/sbin/mariadbd"))
    with tempfile.TemporaryDirectory(prefix="mariadb-", dir="/tmp") as directory:
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
    command = ["mariadbd", "--no-defaults", f"--datadir={data}", f"--user={user}",
               f"--socket={root / 'mariadb.sock'}", "--bind-address=127.0.0.1", f"--port={port}",
               f"--pid-file={root / 'mariadb.pid'}", "--skip-name-resolve",
               "--innodb-flush-log-at-trx-commit=0"]  # fmt: skip
    base = f"mysql+pymysql://root@127.0.0.1:{port}"
    with _serving(command, root / "mariadb.log", base, "mysql", port) as server:
        yield server
