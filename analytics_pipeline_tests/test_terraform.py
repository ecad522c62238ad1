"""terraform/ checked with the real binary, offline: fmt, init (provider mirror), validate,
checkov, then apply to a moto server, inspection with boto3, and destroy."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from analytics_pipeline.cli.glue_tables import all_tables
from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog
from analytics_pipeline.settings import AwsSettings
from analytics_pipeline_tests import terraform_fixtures
from analytics_pipeline_tests.moto_server import FAKE_CREDENTIALS, REGION
from analytics_pipeline_tests.terraform_fixtures import (
    TERRAFORM_DIR,
    AppliedTerraform,
    copy_configuration,
    init_args,
    load_terraform_env_script,
    requires_terraform,
    run_terraform,
    terraform_env,
)

# The module-scoped fixture this file uses (terraform/ applied once to a moto server).
applied_terraform = terraform_fixtures.applied_terraform

CHECKOV = "checkov==3.3.30"
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<id>[A-Z0-9_]+)(?::(?P<reason>.*))?")


def _data_buckets(applied: AppliedTerraform) -> dict[str, str]:
    out = applied.outputs
    return {
        "landing": out["landing_bucket"],
        "lake": out["lake_bucket"],
        "results": out["athena_results_bucket"],
    }


def _all_buckets(applied: AppliedTerraform) -> dict[str, str]:
    return {**_data_buckets(applied), "logs": applied.outputs["access_log_bucket"]}


def _lifecycle_rules(applied: AppliedTerraform, bucket: str) -> list[dict[str, Any]]:
    s3 = applied.client("s3")
    rules: list[dict[str, Any]] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return [r for r in rules if r["Status"] == "Enabled"]


def _rule_prefix(rule: dict[str, Any]) -> str:
    return str(rule.get("Filter", {}).get("Prefix", rule.get("Prefix", "")))


def _role_policy(applied: AppliedTerraform, role_arn: str) -> dict[str, Any]:
    iam = applied.client("iam")
    role = role_arn.rsplit("/", 1)[1]
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _grants(policy: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (action, resource) pair the policy's statements grant."""
    return [
        (a, r)
        for s in policy["Statement"]
        for a in _listed(s["Action"])
        for r in _listed(s["Resource"])
    ]


def _uv_tool_run() -> list[str]:
    if shutil.which("uvx"):
        return ["uvx"]
    if shutil.which("uv"):
        return ["uv", "tool", "run"]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv", "tool", "run"]
    pytest.fail("checkov runs through uv (`uvx`), which is not installed: run `make install`")


# scripts/terraform_env.py (no terraform needed)


def test_terraform_env_renders_every_pipeline_variable_as_an_export() -> None:
    script = load_terraform_env_script()
    document = {
        name: {"value": f"value-of-{name}", "type": "string"}
        for name in script.ENV_OUTPUTS.values()
    }
    document["athena_output"]["value"] = "s3://results/athena/"
    document["landing_queue_url"]["value"] = "https://sqs/123/q?x=1&y=2"

    rendered = script.render(script.environment(script.output_values(document)))

    assert rendered.splitlines() == [
        "export ANALYTICS_LANDING_BUCKET=value-of-landing_bucket",
        "export ANALYTICS_LAKE_BUCKET=value-of-lake_bucket",
        "export ANALYTICS_ATHENA_OUTPUT=s3://results/athena/",
        "export ANALYTICS_GLUE_DATABASE=value-of-glue_database",
        "export ANALYTICS_ATHENA_WORKGROUP=value-of-athena_workgroup",
        "export ANALYTICS_LANDING_QUEUE_URL='https://sqs/123/q?x=1&y=2'",
        "export ANALYTICS_WEB_LOG_GROUP=value-of-web_log_group",
        "export AWS_REGION=value-of-region",
    ]


def test_terraform_env_names_the_missing_outputs_of_an_unapplied_configuration() -> None:
    result = subprocess.run(
        [sys.executable, str(TERRAFORM_DIR.parent / "scripts" / "terraform_env.py")],
        input="{}",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "athena_output" in result.stderr and "terraform apply" in result.stderr
    assert result.stdout == ""


# static checks


def test_every_checkov_skip_gives_its_reason() -> None:
    skips = [
        (path.relative_to(TERRAFORM_DIR), match)
        for path in sorted(TERRAFORM_DIR.rglob("*.tf"))
        for match in SKIP_COMMENT.finditer(path.read_text())
    ]
    assert skips, "expected the documented checkov skips"
    unexplained = [f"{p}: {m['id']}" for p, m in skips if len((m["reason"] or "").strip()) < 20]
    assert unexplained == []


@requires_terraform
def test_terraform_files_are_formatted(tmp_path: Path) -> None:
    result = run_terraform(
        TERRAFORM_DIR, terraform_env(tmp_path), "fmt", "-check", "-recursive", "-diff", check=False
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


@requires_terraform
def test_configuration_initialises_offline_and_validates(tmp_path: Path) -> None:
    workdir = copy_configuration(tmp_path / "terraform")
    env = terraform_env(tmp_path / "home")
    run_terraform(workdir, env, *init_args())
    result = run_terraform(workdir, env, "validate", "-no-color")
    assert "The configuration is valid" in result.stdout


def test_checkov_reports_no_failed_check(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *_uv_tool_run(),
            CHECKOV,
            "--skip-download",
            "--quiet",
            "--compact",
            "--framework",
            "terraform",
            "--output",
            "json",
            "--directory",
            str(TERRAFORM_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert summary["passed"] > 100  # it did scan the configuration
    assert result.returncode == 0, result.stderr[-2000:]


# applied to moto: S3


@requires_terraform
def test_every_bucket_encrypts_objects_by_default(applied_terraform: AppliedTerraform) -> None:
    s3 = applied_terraform.client("s3")
    for bucket in _all_buckets(applied_terraform).values():
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        algorithm = rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert algorithm == "AES256", bucket


@requires_terraform
def test_every_bucket_is_versioned(applied_terraform: AppliedTerraform) -> None:
    s3 = applied_terraform.client("s3")
    for bucket in _all_buckets(applied_terraform).values():
        assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", bucket


@requires_terraform
def test_every_bucket_blocks_all_public_access(applied_terraform: AppliedTerraform) -> None:
    s3 = applied_terraform.client("s3")
    for bucket in _all_buckets(applied_terraform).values():
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }, bucket


@requires_terraform
def test_every_bucket_policy_denies_requests_without_tls(
    applied_terraform: AppliedTerraform,
) -> None:
    s3 = applied_terraform.client("s3")
    for bucket in _all_buckets(applied_terraform).values():
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        denials = [
            s
            for s in policy["Statement"]
            if s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denials) == 1, bucket
        assert _listed(denials[0]["Action"]) == ["s3:*"]
        assert sorted(_listed(denials[0]["Resource"])) == [
            f"arn:aws:s3:::{bucket}",
            f"arn:aws:s3:::{bucket}/*",
        ]


@requires_terraform
def test_data_buckets_log_access_to_the_log_bucket(applied_terraform: AppliedTerraform) -> None:
    s3 = applied_terraform.client("s3")
    logs = applied_terraform.outputs["access_log_bucket"]
    for bucket in _data_buckets(applied_terraform).values():
        enabled = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
        assert enabled == {"TargetBucket": logs, "TargetPrefix": f"s3/{bucket}/"}


@requires_terraform
def test_every_bucket_aborts_incomplete_multipart_uploads(
    applied_terraform: AppliedTerraform,
) -> None:
    for bucket in _all_buckets(applied_terraform).values():
        aborts = [
            r
            for r in _lifecycle_rules(applied_terraform, bucket)
            if "AbortIncompleteMultipartUpload" in r and _rule_prefix(r) == ""
        ]
        assert [r["AbortIncompleteMultipartUpload"] for r in aborts] == [
            {"DaysAfterInitiation": 2}
        ], bucket


@requires_terraform
def test_lake_archive_expires_after_the_retention_days(applied_terraform: AppliedTerraform) -> None:
    rules = _lifecycle_rules(applied_terraform, applied_terraform.outputs["lake_bucket"])
    expiring = [(_rule_prefix(r), r["Expiration"]) for r in rules if "Expiration" in r]
    assert expiring == [("archive/", {"Days": 90})]


@requires_terraform
def test_athena_results_expire_after_the_retention_days(
    applied_terraform: AppliedTerraform,
) -> None:
    rules = _lifecycle_rules(applied_terraform, applied_terraform.outputs["athena_results_bucket"])
    expiring = [(_rule_prefix(r), r["Expiration"]) for r in rules if "Expiration" in r]
    assert expiring == [("", {"Days": 7})]


@requires_terraform
def test_landing_keeps_unprocessed_files_however_old(applied_terraform: AppliedTerraform) -> None:
    rules = _lifecycle_rules(applied_terraform, applied_terraform.outputs["landing_bucket"])
    assert [r for r in rules if "Expiration" in r] == []


# applied to moto: SQS


@requires_terraform
def test_objects_created_under_landing_are_announced_on_the_queue(
    applied_terraform: AppliedTerraform,
) -> None:
    s3, sqs = applied_terraform.client("s3"), applied_terraform.client("sqs")
    bucket = applied_terraform.outputs["landing_bucket"]
    queue = applied_terraform.outputs["landing_queue_url"]
    s3.put_object(Bucket=bucket, Key="elsewhere/ignored.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="landing/products/2024-01-02.json", Body=b"{}")

    keys = []
    for _ in range(10):  # bounded: moto delivers synchronously, at most a test event is first
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            # S3 URL-encodes keys in notifications (a space arrives as "+").
            keys += [unquote_plus(r["s3"]["object"]["key"]) for r in body.get("Records", [])]
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert keys == ["landing/products/2024-01-02.json"]


@requires_terraform
def test_landing_queue_is_encrypted_and_redrives_to_its_dead_letter_queue(
    applied_terraform: AppliedTerraform,
) -> None:
    sqs = applied_terraform.client("sqs")
    out = applied_terraform.outputs
    queue = sqs.get_queue_attributes(QueueUrl=out["landing_queue_url"], AttributeNames=["All"])
    dlq = sqs.get_queue_attributes(QueueUrl=out["landing_dlq_url"], AttributeNames=["All"])
    redrive = json.loads(queue["Attributes"]["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq["Attributes"]["QueueArn"], "maxReceiveCount": 5}
    assert queue["Attributes"]["SqsManagedSseEnabled"] == "true"
    assert dlq["Attributes"]["SqsManagedSseEnabled"] == "true"
    assert json.loads(dlq["Attributes"]["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [out["landing_queue_arn"]],
    }


# applied to moto: Glue and Athena


@requires_terraform
def test_glue_tables_have_the_columns_of_the_specs(applied_terraform: AppliedTerraform) -> None:
    glue = applied_terraform.client("glue")
    database = applied_terraform.outputs["glue_database"]
    found = {
        t["Name"]: [(c["Name"], c["Type"]) for c in t["StorageDescriptor"]["Columns"]]
        for t in glue.get_tables(DatabaseName=database)["TableList"]
    }
    assert found == {t.name: list(t.columns) for t in all_tables()}


@requires_terraform
def test_glue_tables_are_parquet_partitioned_by_dt_under_parquet_prefix(
    applied_terraform: AppliedTerraform,
) -> None:
    glue = applied_terraform.client("glue")
    out = applied_terraform.outputs
    table = glue.get_table(DatabaseName=out["glue_database"], Name="products")["Table"]
    storage = table["StorageDescriptor"]
    assert storage["Location"] == f"s3://{out['lake_bucket']}/parquet/products/"
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("dt", "string")]
    assert table["TableType"] == "EXTERNAL_TABLE"


@requires_terraform
def test_partition_projection_is_off_by_default(applied_terraform: AppliedTerraform) -> None:
    glue = applied_terraform.client("glue")
    tables = glue.get_tables(DatabaseName=applied_terraform.outputs["glue_database"])["TableList"]
    projected = [t["Name"] for t in tables if "projection.enabled" in t.get("Parameters", {})]
    assert projected == []


@requires_terraform
def test_pipeline_finds_the_terraform_tables_unchanged(
    applied_terraform: AppliedTerraform, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": applied_terraform.endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)
    catalog = GlueCatalog(
        database=applied_terraform.outputs["glue_database"],
        lake_bucket=applied_terraform.outputs["lake_bucket"],
        region_name=REGION,
    )
    assert {t.name: catalog.ensure_table(t) for t in all_tables()} == {
        t.name: "unchanged" for t in all_tables()
    }


@requires_terraform
def test_the_aws_deployment_runs_on_exactly_these_resources(
    applied_terraform: AppliedTerraform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One dataset end to end, configured only by the rendered terraform outputs."""
    import dagster as dg

    from analytics_pipeline.cli.process import process_landing
    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.resources.aws.sqs_arrivals import SqsArrivals
    from analytics_pipeline.settings import Settings

    environment = applied_terraform.pipeline_environment()
    for name, value in {**environment, "ANALYTICS_PIPELINE_ENV": "aws"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.aws is not None and settings.aws.landing_queue_url
    s3 = applied_terraform.client("s3")
    s3.put_object(
        Bucket=settings.aws.landing_bucket,
        Key="landing/products/7.json",
        Body=b'{"id": 7, "date": "2024-03-02", "product": "C"}',
    )
    defs = build_definitions(replace(settings, landing_settle_seconds=0))
    assert isinstance((defs.resources or {})["arrivals"], SqsArrivals)
    try:
        with dg.instance_for_test() as instance:
            summary = process_landing(defs, instance)
        _assert_pipeline_output(applied_terraform, settings, summary)
    finally:
        # moto's bucket emptying on destroy fails on delete markers (FakeDeleteMarker has
        # no dispose): remove every version and marker ourselves, one by one.
        for bucket in (settings.aws.landing_bucket, settings.aws.lake_bucket):
            _purge_versions(s3, bucket)


def _purge_versions(s3: Any, bucket: str) -> None:
    listing = s3.list_object_versions(Bucket=bucket)
    for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])


def _assert_pipeline_output(
    applied_terraform: AppliedTerraform, settings: Any, summary: Any
) -> None:
    s3 = applied_terraform.client("s3")
    assert summary.ingest_runs == 1
    assert summary.materialized["table/products"] == 1
    lake = settings.aws.lake_bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lake).get("Contents", [])]
    assert "archive/products/7.json" in keys
    assert any(k.startswith("parquet/products/dt=2024-03-02/") for k in keys)
    glue = applied_terraform.client("glue")
    [partition] = glue.get_partitions(
        DatabaseName=settings.aws.glue_database, TableName="products"
    )["Partitions"]
    assert partition["Values"] == ["2024-03-02"]
    # The notification was deleted once its run existed: the queue is empty.
    attributes = applied_terraform.client("sqs").get_queue_attributes(
        QueueUrl=settings.aws.landing_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }


@requires_terraform
def test_a_second_plan_changes_nothing(applied_terraform: AppliedTerraform) -> None:
    result = applied_terraform.plan()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@requires_terraform
def test_projection_switched_on_for_a_table_matches_the_pipelines_projected_table(
    applied_terraform: AppliedTerraform,
) -> None:
    changes = applied_terraform.planned_changes('-var=partition_projection_tables=["products"]')
    assert list(changes) == ['aws_glue_catalog_table.tables["products"]']
    catalog = GlueCatalog(
        database=applied_terraform.outputs["glue_database"],
        lake_bucket=applied_terraform.outputs["lake_bucket"],
        projected_tables=["products"],
    )
    products = next(t for t in all_tables() if t.name == "products")
    after = changes['aws_glue_catalog_table.tables["products"]']["after"]
    assert after["parameters"] == catalog.table_input(products)["Parameters"]


@requires_terraform
def test_workgroup_enforces_engine_3_encrypted_results_and_a_scan_cutoff(
    applied_terraform: AppliedTerraform,
) -> None:
    athena = applied_terraform.client("athena")
    out = applied_terraform.outputs
    config = athena.get_work_group(WorkGroup=out["athena_workgroup"])["WorkGroup"]["Configuration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["BytesScannedCutoffPerQuery"] == 100 * 1024**3
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"
    results = config["ResultConfiguration"]
    assert results["OutputLocation"] == f"s3://{out['athena_results_bucket']}/athena/"
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}


# applied to moto: IAM and outputs


@requires_terraform
def test_pipeline_role_names_only_this_deployments_resources(
    applied_terraform: AppliedTerraform,
) -> None:
    out = applied_terraform.outputs
    policy = _role_policy(applied_terraform, out["pipeline_role_arn"])
    resources = {r for s in policy["Statement"] for r in _listed(s["Resource"])}
    own = (
        out["landing_bucket"],
        out["lake_bucket"],
        out["athena_results_bucket"],
        f":database/{out['glue_database']}",
        f":table/{out['glue_database']}/",
        f":workgroup/{out['athena_workgroup']}",
        out["landing_queue_arn"],
        f":log-group:{out['web_log_group']}",
    )
    catalog = f"arn:aws:glue:{REGION}:123456789012:catalog"
    foreign = [r for r in resources if r != catalog and not any(o in r for o in own)]
    assert foreign == []
    assert "*" not in resources


@requires_terraform
def test_pipeline_role_may_read_exactly_the_web_log_group(
    applied_terraform: AppliedTerraform,
) -> None:
    out = applied_terraform.outputs
    granted = _grants(_role_policy(applied_terraform, out["pipeline_role_arn"]))
    group = f"arn:aws:logs:{REGION}:123456789012:log-group:{out['web_log_group']}"
    assert sorted((a, r) for a, r in granted if a.startswith("logs:")) == [
        ("logs:FilterLogEvents", group),
        ("logs:FilterLogEvents", f"{group}:log-stream:*"),
        ("logs:GetLogEvents", group),
        ("logs:GetLogEvents", f"{group}:log-stream:*"),
    ]


@requires_terraform
def test_pipeline_role_may_run_the_athena_scale_path_and_drop_only_its_own_tables(
    applied_terraform: AppliedTerraform,
) -> None:
    from analytics_pipeline.lake.athena_compaction import REQUIRED_ACTIONS
    from analytics_pipeline.resources.aws.glue_catalog import SCRATCH_TABLE_PREFIX

    out = applied_terraform.outputs
    policy = _role_policy(applied_terraform, out["pipeline_role_arn"])
    granted = _grants(policy)
    assert sorted(set(REQUIRED_ACTIONS) - {a for a, _ in granted}) == []
    tables = sorted(r for a, r in granted if a == "glue:DeleteTable" and ":table/" in r)
    assert tables == [
        f"arn:aws:glue:{REGION}:123456789012:table/{out['glue_database']}/{SCRATCH_TABLE_PREFIX}*",
        f"arn:aws:glue:{REGION}:123456789012:table/{out['glue_database']}/staged_*",
    ]
    lake = f"arn:aws:s3:::{out['lake_bucket']}/"
    assert any(a == "s3:DeleteObject" and r.startswith(lake) for a, r in granted)


@requires_terraform
def test_analyst_role_can_query_but_not_change_the_lake(
    applied_terraform: AppliedTerraform,
) -> None:
    out = applied_terraform.outputs
    policy = _role_policy(applied_terraform, out["analyst_role_arn"])
    granted = _grants(policy)
    actions = {a for a, _ in granted}
    assert "athena:StartQueryExecution" in actions
    writes = [
        (a, r)
        for a, r in granted
        if a.startswith(("glue:Create", "glue:Update", "glue:Delete", "glue:Batch"))
        and a != "glue:BatchGetPartition"
        or (
            a in ("s3:PutObject", "s3:DeleteObject")
            and not r.startswith(f"arn:aws:s3:::{out['athena_results_bucket']}/athena/")
        )
        or a.startswith("sqs:")
    ]
    assert writes == []


@requires_terraform
def test_outputs_render_the_environment_the_aws_deployment_reads(
    applied_terraform: AppliedTerraform,
) -> None:
    env = applied_terraform.pipeline_environment()
    settings = AwsSettings.from_env(env)
    out = applied_terraform.outputs
    assert settings == AwsSettings(
        landing_bucket=out["landing_bucket"],
        lake_bucket=out["lake_bucket"],
        athena_output=f"s3://{out['athena_results_bucket']}/athena/",
        glue_database=out["glue_database"],
        athena_workgroup=out["athena_workgroup"],
        landing_queue_url=out["landing_queue_url"],
        web_log_group=out["web_log_group"],
    )
    assert env["AWS_REGION"] == REGION
    assert "ANALYTICS_API_KEYS_SECRET" not in env  # no API deployed by default


@requires_terraform
def test_the_api_is_not_deployed_by_default(applied_terraform: AppliedTerraform) -> None:
    assert applied_terraform.outputs.get("api") is None  # a null output is left out
    assert applied_terraform.client("lambda").list_functions()["Functions"] == []
    assert applied_terraform.client("apigatewayv2").get_apis()["Items"] == []


@requires_terraform
def test_source_secret_arn_grants_reading_exactly_that_secret(
    applied_terraform: AppliedTerraform,
) -> None:
    default = _role_policy(applied_terraform, applied_terraform.outputs["pipeline_role_arn"])
    assert not [a for a, _ in _grants(default) if a.startswith("secretsmanager:")]
    secret = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:movie-rental-db-AbCdEf"
    changes = applied_terraform.planned_changes(f"-var=movie_rental_db_secret_arn={secret}")
    assert list(changes) == ["aws_iam_role_policy.pipeline"]
    granted = _grants(json.loads(changes["aws_iam_role_policy.pipeline"]["after"]["policy"]))
    assert [g for g in granted if g[0].startswith("secretsmanager:")] == [
        ("secretsmanager:GetSecretValue", secret)
    ]


# last: destroy


@requires_terraform
def test_destroy_removes_every_resource(applied_terraform: AppliedTerraform) -> None:
    applied_terraform.destroy()
    s3, sqs = applied_terraform.client("s3"), applied_terraform.client("sqs")
    glue, athena = applied_terraform.client("glue"), applied_terraform.client("athena")
    iam = applied_terraform.client("iam")
    assert s3.list_buckets()["Buckets"] == []
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert glue.get_databases()["DatabaseList"] == []
    assert [w["Name"] for w in athena.list_work_groups()["WorkGroups"]] == ["primary"]
    assert iam.list_roles()["Roles"] == []
