"""Nobody let in: no credentials in the repository or in what runs write, writes only where
configured, the UI on loopback, and SQL built only from validated partition keys and names."""

from __future__ import annotations

import ast
import logging
import os
import re
import secrets
import shlex
import signal
import string
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
import dagster as dg
import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics_pipeline.cli.process import QUIET_LOGGING, headless_definitions, process_landing
from analytics_pipeline.defs.analytics import ANALYTICS
from analytics_pipeline.defs.keys import stage_op_name
from analytics_pipeline.lake.versioned_days import (
    partition_prefix,
    validate_dt,
    validate_identifier,
)
from analytics_pipeline.resources.aws.glue_inputs import dt_expressions
from analytics_pipeline.resources.catalog import TableDef
from analytics_pipeline.resources.local.catalog import view_sql
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import (
    DATABASE,
    LAKE,
    LANDING,
    RESULTS,
    drop,
    provisioned_aws_settings,
    query,
)
from local_servers import dev_server

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAY = "2024-05-01"


def product(id_: int, name: str, day: str = DAY) -> str:
    return f'{{"id": {id_}, "date": "{day}", "product": "{name}"}}'


# 1. no credentials in the repository

# Values that are obviously not credentials: moto's documented dummies, the benchmarks' and
# the definitions snapshot's.
FAKE_CREDENTIAL_VALUES = frozenset({"", "testing", "test", "bench", "fake"})
CREDENTIAL_PATTERNS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
}
# A secret key or session token given a literal value: as a Python/HCL/YAML assignment, a
# dict entry, a setenv argument or an env-file line.
CREDENTIAL_ASSIGNMENT = re.compile(
    r"(?i)(?:aws_)?(?:secret_access_key|secret_key|session_token)"
    r"""["']?\s*[:=,]\s*(?:"([^"\n]*)"|'([^'\n]*)'|([A-Za-z0-9/+=]{40,}))"""
)


# A template, not a value: {name} (an f-string), ${var.name} (HCL, shell), <your-key>.
PLACEHOLDER = re.compile(r"[{}$<>]")


def credential_findings(text: str) -> list[str]:
    """Where the text holds something that looks like a credential (line, kind, a masked
    start of the match: enough to find it, not enough to use it)."""

    def where(match: re.Match[str], kind: str) -> str:
        line = text.count("\n", 0, match.start()) + 1
        return f"line {line}: {kind}: {match.group(0)[:12]}..."

    found = [
        where(match, kind)
        for kind, pattern in CREDENTIAL_PATTERNS.items()
        for match in pattern.finditer(text)
    ]
    for match in CREDENTIAL_ASSIGNMENT.finditer(text):
        value = next(g for g in match.groups() if g is not None)
        if value not in FAKE_CREDENTIAL_VALUES and not PLACEHOLDER.search(value):
            found.append(where(match, "a secret key or token with a literal value"))
    return found


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_the_scanner_finds_each_kind_of_credential():
    # Built at run time, so that this file holds none of them (it is scanned too).
    key_id = "AKIA" + "Q7" * 8
    secret = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY" + "x" * 10
    secret_name, token_name = "aws_secret" + "_access_key", "aws_session" + "_token"
    planted = {
        f"aws_access_key_id = {key_id}": 1,
        f'{secret_name.upper()} = "{secret}"': 1,
        f"{secret_name}={secret}": 1,
        f'"{token_name}": "{secret}"': 1,
        f'monkeypatch.setenv("{secret_name.upper()}", "{secret[:12]}")': 1,
        "-----BEGIN " + "RSA PRIVATE KEY-----": 1,
        "-----BEGIN " + "OPENSSH PRIVATE KEY-----": 1,
        "gh" + "p_" + "a1" * 18: 1,
        'monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")': 0,
        'AWS_SECRET_ACCESS_KEY: "${{ secrets.AWS_SECRET_ACCESS_KEY }}"': 0,
        'aws_secret_access_key = "<your secret key>"': 0,
        '  secret_key                  = "testing"': 0,
        "aws_secret_access_key=FAKE_CREDENTIALS[name]": 0,
        'for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):': 0,
    }
    assert {text: len(credential_findings(text)) for text in planted} == planted


def test_no_tracked_file_holds_a_credential():
    files = git("ls-files", "-z").split("\0")
    offenders: list[str] = []
    scanned = 0
    for name in filter(None, files):
        path = PROJECT_ROOT / name
        if not path.is_file():
            continue  # deleted in the working tree
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary (the README's screenshot)
        scanned += 1
        offenders += [f"{name}: {f}" for f in credential_findings(data.decode(errors="replace"))]
    assert scanned > 50
    assert offenders == []


def test_no_commit_ever_added_a_credential():
    history = git("log", "--all", "-p", "--no-color", "--format=commit %H")
    added = "\n".join(line[1:] for line in history.splitlines() if line.startswith("+"))
    assert "monkeypatch.setenv" in added  # the scan sees the code
    assert credential_findings(added) == []


@pytest.mark.parametrize(
    "path",
    [
        ".env.aws",  # `make -s aws-env > .env.aws`
        "terraform/terraform.tfstate",
        "terraform/terraform.tfstate.backup",
        ".lake/catalog.duckdb",
        ".dagster_home/dagster.yaml",
    ],
)
def test_files_that_may_hold_credentials_or_data_are_never_committed(path: str):
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=PROJECT_ROOT, check=False
    )
    assert result.returncode == 0, f"{path} is not ignored by .gitignore"


# 2. no credentials in logs


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A distinctive secret key and session token in the environment, as a real role has."""
    secret = "SecretKey" + secrets.token_urlsafe(24)
    token = "SessionToken" + secrets.token_urlsafe(48)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID" + secrets.token_hex(8).upper())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    return secret, token


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self.lines.append(f"{record.name} {record.getMessage()} {trace}")


@contextmanager
def python_logs() -> Iterator[list[str]]:
    """Every Python log record at INFO and above (what an operator's log shipper would get)."""
    root = logging.getLogger()
    handler, level = _Records(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def instance_texts(instance: dg.DagsterInstance) -> list[str]:
    """Every run record and every event of every run, serialized whole (metadata included)."""
    texts = []
    for run in instance.get_runs():
        texts.append(dg.serialize_value(run))
        texts += [dg.serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    return texts


def files_under(root: Path) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in sorted(root.rglob("*")) if p.is_file()]


def test_a_local_run_logs_no_credential(
    credentials: tuple[str, str],
    lake_dir: Path,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    drop(lake_dir, "products", "1.json", product(1, "A"))
    drop(lake_dir, "products", "bad.json", product(2, "Z"))

    with python_logs() as records, dg.DagsterInstance.get() as instance:
        summary = process_landing(headless_definitions(settings), instance)
        texts = instance_texts(instance)
    out, err = capfd.readouterr()

    assert summary.failed_runs == [] and summary.ingest_runs == 1
    corpus = "\n".join([*texts, *records, out, err, *files_under(home), *files_under(lake_dir)])
    assert "products: 2 files, 2 records: 1 staged" in corpus  # the capture saw the runs
    for value in credentials:
        assert value not in corpus


ATHENA_REASON = "HIVE_CURSOR_ERROR: injected by the test"


def aws_settings(tmp_path: Path) -> Settings:
    return provisioned_aws_settings(tmp_path)


def every_object(bucket: str) -> list[str]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return [s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode("latin-1") for k in keys]


def test_an_aws_run_with_failures_logs_no_credential(
    aws: None,
    credentials: tuple[str, str],
    tmp_path: Path,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
):
    secret, token = credentials
    # Seen on the wire: proof that the run really signed its requests with these credentials.
    sent_tokens: list[str] = []

    def record_token(request: Any, **_: Any) -> None:
        value = request.headers.get("X-Amz-Security-Token", "")
        sent_tokens.append(value.decode() if isinstance(value, bytes) else value)

    denying = [True]

    def deny_iot_reads(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict] | None:
        target = f"{params.get('url', '')} {params.get('url_path', '')}"
        if not denying or "landing/iot_sensor_data/" not in target:
            return None
        error = {"Code": "AccessDenied", "Message": "injected AccessDenied"}
        http = AWSResponse("https://s3.amazonaws.com", 403, {}, None)
        return http, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}

    monkeypatch.setattr(
        botocore.handlers,
        "BUILTIN_HANDLERS",
        [
            ("before-send.s3", record_token),
            ("before-call.s3.GetObject", deny_iot_reads),
            *botocore.handlers.BUILTIN_HANDLERS,
        ],
    )
    # Athena (moto) says SUCCEEDED to everything: make the table's query fail with a reason.
    session = boto3.session.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)

    def fail(parsed: dict[str, Any], **_: Any) -> None:
        parsed["QueryExecution"]["Status"] = {"State": "FAILED", "StateChangeReason": ATHENA_REASON}

    session.events.register("after-call.athena.GetQueryExecution", fail)
    defs = headless_definitions(aws_settings(tmp_path))
    s3 = boto3.client("s3")
    s3.put_object(Bucket=LANDING, Key="landing/products/1.json", Body=product(1, "A"))
    s3.put_object(Bucket=LANDING, Key="landing/products/bad.json", Body=product(2, "Z"))
    s3.put_object(Bucket=LANDING, Key="landing/iot_sensor_data/a.ndjson", Body="{}\n")

    with python_logs() as records:
        summary = process_landing(defs, instance)
    denying.clear()
    texts = instance_texts(instance)
    out, err = capfd.readouterr()

    assert token in sent_tokens
    assert len(summary.failed_runs) == 2  # the iot ingest (S3) and the products table (Athena)
    glue = [str(t) for t in boto3.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]]
    corpus = "\n".join(
        [
            *texts,
            *records,
            out,
            err,
            *files_under(Path(instance.root_directory)),
            *glue,
            *(text for bucket in (LANDING, LAKE, RESULTS) for text in every_object(bucket)),
        ]
    )
    assert "AccessDenied" in corpus and ATHENA_REASON in corpus  # the failures were captured
    assert secret not in corpus
    assert token not in corpus


# 3. the local deployment writes only under ANALYTICS_LAKE_DIR and DAGSTER_HOME


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


def test_make_process_writes_only_under_the_lake_and_dagster_home(tmp_path: Path):
    sandbox = tmp_path / "sandbox"
    lake, home, cwd, user_home, tmpdir = (
        sandbox / name for name in ("lake", "dagster_home", "cwd", "home", "tmp")
    )
    for directory in (home, cwd, user_home, tmpdir):
        directory.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    drop(lake, "products", "1.json", product(1, "A"))
    drop(lake, "products", "2.json", product(2, "Z"))  # quarantined
    before = tree(sandbox)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("XDG_", "ANALYTICS_", "AWS_", "DAGSTER_", "PYTHON"))
    }
    env |= {
        "HOME": str(user_home),
        "TMPDIR": str(tmpdir),
        "ANALYTICS_LAKE_DIR": str(lake),
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(PROJECT_ROOT),
    }

    # `make process` runs exactly this.
    process = subprocess.Popen(
        [sys.executable, "-m", "analytics_pipeline.cli.process"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    assert query(lake, "SELECT id FROM products") == [(1,)]  # it did the work
    after = tree(sandbox)
    changed = {
        path
        for path in set(before) | set(after)
        if before.get(path) != after.get(path)
        and path not in ("lake", "dagster_home", "tmp")
        and not path.startswith(("lake/", "dagster_home/"))
    }
    assert changed == set()  # nothing in cwd or HOME (not even created and removed), nor beside
    assert list(tmpdir.iterdir()) == []  # whatever used TMPDIR cleaned up after itself
    assert any(home.joinpath("history").rglob("*.db"))


OUTSIDE_RECORD = product(66, "A")


def ingest_keys(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[str]
) -> dg.ExecuteInProcessResult:
    """An ingest run for these keys, as anyone can launch one from the UI's launchpad."""
    return defs.resolve_job_def("ingest_products").execute_in_process(
        run_config={
            "ops": {stage_op_name("products"): {"config": {"keys": keys}}},
            **QUIET_LOGGING,
        },
        instance=instance,
        raise_on_error=False,
    )


@pytest.mark.parametrize(
    "key",
    ["../../outside.json", "a/../../../outside.json", "{outside}", "..", "./1.json", "a//1.json"],
)
def test_an_ingest_run_refuses_a_key_that_leaves_the_lake(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance, key: str
):
    outside = lake_dir.parent / "outside.json"
    outside.write_text(OUTSIDE_RECORD)
    drop(lake_dir, "products", "1.json", product(1, "A"))
    before = tree(lake_dir.parent)

    result = ingest_keys(defs, instance, ["1.json", key.format(outside=outside)])

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert error is not None and "unsafe key or path" in error.to_string()
    assert tree(lake_dir.parent) == before  # nothing read into the lake, moved or written
    assert outside.read_text() == OUTSIDE_RECORD


def test_symlinks_in_landing_are_never_followed_by_the_landing_sensor(
    lake_dir: Path, settings: Settings, instance: dg.DagsterInstance
):
    outside_dir = lake_dir.parent / "outside"
    outside_dir.mkdir()
    (outside_dir / "66.json").write_text(OUTSIDE_RECORD)
    drop(lake_dir, "products", "1.json", product(1, "A"))
    landing = lake_dir / "landing" / "products"
    (landing / "link.json").symlink_to(outside_dir / "66.json")
    (landing / "linkdir").symlink_to(outside_dir, target_is_directory=True)

    summary = process_landing(headless_definitions(settings), instance)

    assert summary.failed_runs == []
    assert query(lake_dir, "SELECT id FROM products") == [(1,)]
    assert sorted(p.name for p in outside_dir.iterdir()) == ["66.json"]
    assert (outside_dir / "66.json").read_text() == OUTSIDE_RECORD
    # Left in landing for a person to look at, neither read nor archived.
    assert (landing / "link.json").is_symlink() and (landing / "linkdir").is_symlink()
    assert not (lake_dir / "archive" / "products" / "link.json").exists()
    assert not (lake_dir / "archive" / "products" / "linkdir").exists()


def test_an_ingest_run_never_follows_a_symlink_out_of_the_lake(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
):
    outside_dir = lake_dir.parent / "outside"
    outside_dir.mkdir()
    (outside_dir / "66.json").write_text(OUTSIDE_RECORD)
    (lake_dir / "landing" / "products").mkdir(parents=True)
    (lake_dir / "landing" / "products" / "linkdir").symlink_to(outside_dir)

    ingest_keys(defs, instance, ["linkdir/66.json"])

    assert (outside_dir / "66.json").is_file()
    assert (outside_dir / "66.json").read_text() == OUTSIDE_RECORD
    assert not list((lake_dir / "staged").rglob("*.parquet"))


# 4. the UI on loopback only


def test_make_dev_binds_the_ui_to_loopback():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    dry_run = subprocess.run(
        ["make", "-n", "dev", "DAGSTER_PORT=3999"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [command] = [shlex.split(line) for line in dry_run.splitlines() if "dagster dev" in line]
    host = command.index("-h")
    assert command[host + 1] == "127.0.0.1"
    assert command[command.index("-p") + 1] == "3999"
    assert "0.0.0.0" not in (PROJECT_ROOT / "Makefile").read_text()
    assert "0.0.0.0" not in (PROJECT_ROOT / "workspace.yaml").read_text()


class _NotStarted(Exception):
    pass


def test_the_dev_server_of_the_tests_binds_to_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    started: list[list[str]] = []

    def record(args: list[str], **_: Any) -> None:
        started.append(args)
        raise _NotStarted  # nothing is started

    monkeypatch.setattr(dev_server.subprocess, "Popen", record)
    with pytest.raises(_NotStarted), dev_server.dagster_dev(tmp_path / "lake", tmp_path / "home"):
        pass

    [args] = started
    assert args[1:3] == ["dev", "-h"] and args[3] == "127.0.0.1"
    assert "0.0.0.0" not in args


# 5. SQL is built only from validated partition keys and names

DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
IDENTIFIER_SHAPE = re.compile(r"[a-z_][a-z0-9_]{0,127}")
HOSTILE = ["'", '"', ";", "--", "/*", " ", "\t", "\n", "\u00a0", "\\", "\x00", "é", "٣", "２"]


def is_real_date(value: str) -> bool:
    if not (value.isascii() and DATE_SHAPE.fullmatch(value)):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def accepts(validate: Any, value: str) -> bool:
    try:
        assert validate(value) == value
    except ValueError:
        return False
    return True


IDENTIFIER_CHARS = frozenset(string.ascii_lowercase + string.digits + "_")
# Anything added to a real date makes it no date; added to a name, anything but [a-z0-9_].
added_to_date = st.sampled_from(HOSTILE) | st.text(min_size=1)
added_to_name = st.sampled_from(HOSTILE) | st.text(min_size=1).filter(
    lambda s: not set(s) <= IDENTIFIER_CHARS
)


@given(
    st.one_of(
        st.text(),
        st.dates().map(date.isoformat),
        st.text(alphabet="0123456789-", min_size=10, max_size=10),
    )
)
@example("2024-02-30")
@example("٢٠٢٤-٠١-٠١")  # Arabic-Indic digits: `\d` matches them
@example("２０２４-０１-０１")
@example("2024-01-01\n")
@example("0000-01-01")
@settings(max_examples=300, deadline=None)
def test_validate_dt_accepts_exactly_real_dates(value: str):
    assert accepts(validate_dt, value) == is_real_date(value)


@given(st.dates(), added_to_date, st.integers(0, 10))
@settings(max_examples=300, deadline=None)
def test_validate_dt_rejects_a_real_date_with_anything_added(day: date, extra: str, at: int):
    value = day.isoformat()
    assert accepts(validate_dt, value)
    assert not accepts(validate_dt, value[:at] + extra + value[at:])


@given(st.text(max_size=140))
@example("a" * 128)
@example("a" * 129)
@example("K")
@settings(max_examples=300, deadline=None)
def test_validate_identifier_accepts_exactly_safe_names(value: str):
    safe = value.isascii() and bool(IDENTIFIER_SHAPE.fullmatch(value))
    assert accepts(validate_identifier, value) == safe


@given(st.from_regex(IDENTIFIER_SHAPE, fullmatch=True), added_to_name, st.integers())
@example("products", "\nDROP", 0)
@example("products", "ı", 3)  # dotless i: lowercase, but not ASCII
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
def test_validate_identifier_rejects_a_safe_name_with_anything_added(
    name: str, extra: str, at: int
):
    at %= len(name) + 1
    assert not accepts(validate_identifier, name[:at] + extra + name[at:])


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_every_sql_builder_refuses_a_partition_key_that_is_not_a_date(value: str):
    builders = [
        *(spec.sql for spec in ANALYTICS),
        lambda dt: partition_prefix("products", dt),
        lambda dt: dt_expressions([dt]),
    ]
    for build in builders:
        if is_real_date(value):
            build(value)
        else:
            with pytest.raises(ValueError):
                build(value)


@given(st.text(min_size=1, max_size=40).filter(lambda s: not IDENTIFIER_SHAPE.fullmatch(s)))
@settings(max_examples=200, deadline=None)
def test_a_view_is_never_built_for_an_unsafe_table_name(name: str):
    with pytest.raises(ValueError):
        view_sql(TableDef(name, (("id", "bigint"),)), [])


def test_analytics_sql_templates_substitute_nothing_but_the_date():
    for spec in ANALYTICS:
        template = (PROJECT_ROOT / "analytics_pipeline" / "sql" / f"{spec.name}.sql").read_text()
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        assert fields == {"dt"}, spec.name


SQL_WORDS = re.compile(r"\b(SELECT|FROM|WHERE|INSERT|UPDATE|DELETE|ATTACH|VALUES|IN)\b")
VALIDATORS = {"validate_dt", "validate_identifier", "sql_string_literal", "_escape"}


def _called(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return None


Scopes = list[ast.FunctionDef | ast.AsyncFunctionDef]


def enclosing_functions(tree: ast.Module) -> dict[int, Scopes]:
    """For every node (by id), the functions it is in, outermost first."""
    scopes_of: dict[int, Scopes] = {}

    def visit(node: ast.AST, scopes: Scopes) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scopes = [*scopes, node]
        scopes_of[id(node)] = scopes
        for child in ast.iter_child_nodes(node):
            visit(child, scopes)

    visit(tree, [])
    return scopes_of


def quoted_sql_values(tree: ast.Module) -> Iterator[tuple[int, ast.expr]]:
    """Each value an f-string puts inside SQL quotes ('{...}')."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr):
            continue
        text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
        # SQL text, or a SQL string literal built alone (f"'{value}'").
        if SQL_WORDS.search(text) or text == "''":
            for before, value in zip(node.values, node.values[1:], strict=False):
                if (
                    isinstance(before, ast.Constant)
                    and str(before.value).endswith("'")
                    and isinstance(value, ast.FormattedValue)
                ):
                    yield node.lineno, value.value


def validated_in(name: str, scopes: Scopes) -> bool:
    """`name = validate_dt(...)` (or another validator) in one of the enclosing functions."""
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        and _called(node.value) in VALIDATORS
        for scope in scopes
        for node in ast.walk(scope)
    )


def is_validated(
    value: ast.expr, scopes: Scopes, tree: ast.Module, scopes_of: dict[int, Scopes], depth: int = 0
) -> bool:
    """A validator's result, a name assigned one, or a parameter that every call of its
    function in the module passes such a value (two calls deep at most)."""
    if _called(value) in VALIDATORS:
        return True
    if not isinstance(value, ast.Name):
        return False
    if validated_in(value.id, scopes):
        return True
    if depth == 2 or not scopes:
        return False
    function = scopes[-1]
    positional = [a.arg for a in function.args.posonlyargs + function.args.args]
    keyword_only = [a.arg for a in function.args.kwonlyargs]
    if value.id not in positional + keyword_only:
        return False
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _called(node) == function.name
    ]
    for call in calls:
        passed = [k.value for k in call.keywords if k.arg == value.id]
        if not passed and value.id in positional:
            index = positional.index(value.id)
            if positional[:1] in (["self"], ["cls"]) and isinstance(call.func, ast.Attribute):
                index -= 1
            passed = call.args[index : index + 1]
        if not passed or not is_validated(
            passed[0], scopes_of[id(call)], tree, scopes_of, depth + 1
        ):
            return False
    return bool(calls)


def unvalidated_sql_values(source: str) -> tuple[int, list[str]]:
    """How many values the source quotes into SQL, and those neither validated nor escaped."""
    tree = ast.parse(source)
    scopes_of = enclosing_functions(tree)
    checked, offenders = 0, []
    for line, value in quoted_sql_values(tree):
        checked += 1
        if not is_validated(value, scopes_of[id(value)], tree, scopes_of):
            offenders.append(f"line {line}: {ast.unparse(value)}")
    return checked, offenders


def test_the_sql_check_tells_validated_values_from_raw_ones():
    source = """
def raw(context):
    dt = context.partition_key
    return f"SELECT * FROM t WHERE dt = '{dt}'"

def validated(context):
    dt = validate_dt(context.partition_key)
    return f"SELECT * FROM t " f"WHERE dt = '{dt}'" + _count(t, dt) + _count(t, dt=dt)

def literal(day):
    return f"'{day}'"

def escaped(path):
    return f"ATTACH '{_escape(path)}' AS lake"

def _count(table, dt):
    return f"SELECT count(*) FROM {table} WHERE dt = '{dt}'"

def _leaky(table, dt):
    return f"SELECT count(*) FROM {table} WHERE dt = '{dt}'"

def caller(context, day):
    return _leaky("t", validate_dt(day)) + _leaky("t", context.partition_key)
"""
    checked, offenders = unvalidated_sql_values(source)
    # raw: not validated; literal: never called, so nothing vouches for it; _leaky: one caller
    # passes a raw partition key. _count: every caller passes a validated date.
    assert (checked, sorted(offenders)) == (6, ["line 11: day", "line 20: dt", "line 4: dt"])


def test_every_value_quoted_into_sql_is_validated_or_escaped():
    checked, offenders = 0, []
    for path in sorted((PROJECT_ROOT / "analytics_pipeline").rglob("*.py")):
        found, unvalidated = unvalidated_sql_values(path.read_text())
        checked += found
        offenders += [f"{path.relative_to(PROJECT_ROOT)} {o}" for o in unvalidated]
    assert checked >= 3  # the table asset's days, Glue's expressions, DuckDB's ATTACH
    assert offenders == []
