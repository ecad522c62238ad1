"""The analytics API on AWS (terraform/modules/api) applied to a moto server, audited with boto3.

The configuration is applied with api_enabled and an image tag; the function, its role, the
HTTP API, its stage and logs, the image repository and the keys secret are read back.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from analytics_pipeline.serving import aws_lambda, queries
from analytics_pipeline.serving.api_keys import SecretsManagerKeyStore
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import queue_athena_rows
from analytics_pipeline_tests.moto_server import FAKE_CREDENTIALS, REGION
from analytics_pipeline_tests.terraform_fixtures import (
    API_DEPLOYMENT,
    AppliedTerraform,
    deployment_fixture,
    requires_terraform,
)
from analytics_pipeline_tests.test_api_lambda import http_api_event

pytestmark = [requires_terraform, pytest.mark.timeout(900)]

# terraform/ applied with api_enabled and an image tag (API_DEPLOYMENT's variables).
deployed = deployment_fixture(API_DEPLOYMENT)

ACCOUNT = "123456789012"
STATS = "/v1/web-requests/stats"


def _api(deployed: AppliedTerraform) -> dict[str, Any]:
    outputs: dict[str, Any] = deployed.outputs["api"]
    return outputs


def _function(deployed: AppliedTerraform) -> dict[str, Any]:
    found: dict[str, Any] = deployed.client("lambda").get_function(
        FunctionName=_api(deployed)["function_name"]
    )
    return found


def _document(value: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def _statements(deployed: AppliedTerraform) -> dict[str, dict[str, Any]]:
    iam = deployed.client("iam")
    role = _api(deployed)["role_arn"].rsplit("/", 1)[1]
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    policy = _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    return {s["Sid"]: s for s in policy["Statement"]}


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else sorted(value)


def test_function_runs_the_api_image_with_reserved_concurrency(
    deployed: AppliedTerraform,
) -> None:
    function = _function(deployed)
    config = function["Configuration"]
    assert config["PackageType"] == "Image"
    assert function["Code"]["ImageUri"] == f"{_api(deployed)['repository_url']}:v1"
    assert config["Role"] == _api(deployed)["role_arn"]
    assert (config["Timeout"], config["MemorySize"]) == (29, 1024)
    assert function["Concurrency"] == {"ReservedConcurrentExecutions": 10}


def test_function_environment_is_the_aws_apps_settings(deployed: AppliedTerraform) -> None:
    environment = _function(deployed)["Configuration"]["Environment"]["Variables"]
    assert "AWS_REGION" not in environment  # reserved: Lambda sets it
    settings = Settings.from_env(environment)
    assert settings.aws is not None
    out = deployed.outputs
    assert settings.aws.athena_workgroup == out["athena_workgroup"]
    assert settings.aws.glue_database == out["glue_database"]
    assert settings.aws.athena_output == out["athena_output"]
    assert settings.api_keys_secret == _api(deployed)["keys_secret_name"]
    # `make aws-env` gives the key CLI the same secret.
    rendered = deployed.pipeline_environment()
    assert rendered["ANALYTICS_API_KEYS_SECRET"] == _api(deployed)["keys_secret_name"]


def test_keys_secret_starts_empty_and_takes_keys_from_the_cli_store(
    deployed: AppliedTerraform,
) -> None:
    secrets = deployed.client("secretsmanager")
    name = _api(deployed)["keys_secret_name"]
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == {"keys": []}
    store = SecretsManagerKeyStore(name, secrets, cache_seconds=0)
    token = store.add_key(Scope.parse("client=c-1"))
    assert str(store.scope_for(token)) == "client=c-1"
    assert token not in secrets.get_secret_value(SecretId=name)["SecretString"]


def test_role_is_assumed_by_lambda_of_this_account_only(deployed: AppliedTerraform) -> None:
    role = _api(deployed)["role_arn"].rsplit("/", 1)[1]
    trust = _document(
        deployed.client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    )
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_role_may_query_the_workgroup_read_the_api_tables_results_and_keys_only(
    deployed: AppliedTerraform,
) -> None:
    out = deployed.outputs
    statements = _statements(deployed)
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    database = out["glue_database"]
    tables = sorted([queries.TABLE, queries.SESSION_DAYS])
    lake = f"arn:aws:s3:::{out['lake_bucket']}"
    results = f"arn:aws:s3:::{out['athena_results_bucket']}"
    secret = deployed.client("secretsmanager").describe_secret(
        SecretId=_api(deployed)["keys_secret_name"]
    )["ARN"]
    resources = {sid: _listed(s["Resource"]) for sid, s in statements.items()}
    assert resources == {
        "QueryThroughWorkgroup": [
            f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{out['athena_workgroup']}"
        ],
        "ReadApiTables": sorted(
            [f"{glue}:catalog", f"{glue}:database/{database}"]
            + [f"{glue}:table/{database}/{t}" for t in tables]
        ),
        "LocateBuckets": sorted([lake, results]),
        "ListApiTablesParquet": [lake],
        "ReadApiTablesParquet": [f"{lake}/parquet/{t}/*" for t in tables],
        "ListResults": [results],
        "WriteResults": [f"{results}/athena/*"],
        "ReadApiKeys": [secret],
        "WriteOwnLog": [
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/analytics-dev-api:*"
        ],
    }
    listed_prefixes = statements["ListApiTablesParquet"]["Condition"]["StringLike"]["s3:prefix"]
    assert _listed(listed_prefixes) == [f"parquet/{t}/*" for t in tables]
    # Read-only everywhere but the results prefix and its own log.
    writes = {
        sid
        for sid, s in statements.items()
        for action in _listed(s["Action"])
        if action.split(":")[1].startswith(("Put", "Delete", "Create", "Update", "Abort"))
    }
    assert writes == {"WriteResults", "WriteOwnLog"}
    assert _listed(statements["ReadApiKeys"]["Action"]) == ["secretsmanager:GetSecretValue"]


def test_default_route_of_the_http_api_reaches_the_function(deployed: AppliedTerraform) -> None:
    gateway = deployed.client("apigatewayv2")
    api_id = _api(deployed)["api_id"]
    assert gateway.get_api(ApiId=api_id)["ProtocolType"] == "HTTP"
    [route] = gateway.get_routes(ApiId=api_id)["Items"]
    [integration] = gateway.get_integrations(ApiId=api_id)["Items"]
    assert route["RouteKey"] == "$default"
    assert route["Target"] == f"integrations/{integration['IntegrationId']}"
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    function_arn = _function(deployed)["Configuration"]["FunctionArn"]
    assert function_arn in integration["IntegrationUri"]
    # API Gateway may invoke the function, from this API only.
    policy = _document(deployed.client("lambda").get_policy(FunctionName=function_arn)["Policy"])
    [grant] = policy["Statement"]
    assert grant["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert grant["Action"] == "lambda:InvokeFunction"
    assert f":{api_id}/" in json.dumps(grant["Condition"])


def test_stage_logs_every_request_to_a_kept_group_and_throttles(
    deployed: AppliedTerraform,
) -> None:
    api_id = _api(deployed)["api_id"]
    stage = deployed.client("apigatewayv2").get_stage(ApiId=api_id, StageName="$default")
    assert stage["AutoDeploy"] is True
    [group] = deployed.client("logs").describe_log_groups(
        logGroupNamePrefix=_api(deployed)["access_log_group"]
    )["logGroups"]
    assert stage["AccessLogSettings"]["DestinationArn"] == group["arn"].removesuffix(":*")
    assert group["retentionInDays"] == 365
    fields = json.loads(stage["AccessLogSettings"]["Format"])
    assert {"requestId", "status", "path", "integrationLatency"} <= set(fields)
    assert "authorization" not in stage["AccessLogSettings"]["Format"].lower()
    settings = stage["DefaultRouteSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (20, 40)


def test_only_lambda_for_this_function_may_pull_the_image(deployed: AppliedTerraform) -> None:
    ecr = deployed.client("ecr")
    name = _api(deployed)["repository_url"].rsplit("/", 1)[1]
    [repo] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    policy = _document(ecr.get_repository_policy(repositoryName=name)["policyText"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert _listed(statement["Action"]) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    function_arn = _function(deployed)["Configuration"]["FunctionArn"]
    assert statement["Condition"] == {"StringLike": {"aws:sourceArn": function_arn}}


def test_the_handler_in_the_functions_environment_answers_from_the_deployed_resources(
    deployed: AppliedTerraform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the function would do, run here: its environment as deployed, its key from the
    deployed secret, its query in the deployed workgroup (moto's Athena answers canned rows)."""
    for name in [n for n in os.environ if n.startswith(("ANALYTICS_", "AWS_"))]:
        monkeypatch.delenv(name)
    environment = _function(deployed)["Configuration"]["Environment"]["Variables"]
    # Lambda's own variables (both region names), and moto for AWS.
    lambda_sets = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    lambda_sets["AWS_ENDPOINT_URL"] = deployed.endpoint_url
    for name, value in {**environment, **lambda_sets, **FAKE_CREDENTIALS}.items():
        monkeypatch.setenv(name, value)
    secrets = deployed.client("secretsmanager")
    token = SecretsManagerKeyStore(_api(deployed)["keys_secret_name"], secrets).add_key(
        Scope.parse("client=c-1")
    )
    columns = [("client_id", "varchar"), ("unique_sessions", "bigint"), ("requests", "bigint")]
    columns += [("requests_per_session", "double"), ("products_per_request", "double")]
    queue_athena_rows(columns, [["c-1", "3", "4", "1.3333", "0.75"]], deployed.endpoint_url)
    monkeypatch.setattr(aws_lambda, "_adapter", None)

    query = "level=client&from=2024-01-01&to=2024-01-31"
    response = aws_lambda.handler(http_api_event(STATS, query, token), None)

    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["x-query-engine"] == "athena"
    [row] = json.loads(response["body"])["rows"]
    assert (row["client_id"], row["unique_sessions"], row["requests"]) == ("c-1", 3, 4)
    wrong = aws_lambda.handler(http_api_event(STATS, query, "ak_wrong"), None)
    assert wrong["statusCode"] == 401


def test_a_second_plan_changes_nothing(deployed: AppliedTerraform) -> None:
    result = deployed.plan()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_destroy_removes_the_api(deployed: AppliedTerraform) -> None:
    deployed.destroy()
    assert deployed.client("lambda").list_functions()["Functions"] == []
    assert deployed.client("apigatewayv2").get_apis()["Items"] == []
    assert deployed.client("ecr").describe_repositories()["repositories"] == []
    assert deployed.client("iam").list_roles(PathPrefix="/")["Roles"] == []
