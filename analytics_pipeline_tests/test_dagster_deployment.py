"""Dagster on ECS (terraform/modules/dagster) applied to a moto server, audited with boto3.

A VPC with two subnets stands for the account's network; the configuration is applied with
dagster_vpc_id set, then every service, role and network rule is read back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from analytics_pipeline_tests import terraform_fixtures
from analytics_pipeline_tests.terraform_fixtures import (
    THROWAWAY_VARIABLES,
    AppliedTerraform,
    apply_configuration,
    requires_terraform,
    run_terraform,
)

pytestmark = [requires_terraform, pytest.mark.timeout(900)]

moto_gaps_patched = terraform_fixtures.moto_gaps_patched
moto_endpoint = terraform_fixtures.moto_endpoint

WEBSERVER_COMMAND = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]


SOURCE_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:movie-rental-db-AbCdEf"


@pytest.fixture(scope="module")
def deployed(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppliedTerraform]:
    ec2 = AppliedTerraform(moto_endpoint, {}, tmp_path_factory.mktemp("x"), {}).client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(("us-east-1a", "us-east-1b"))
    ]
    applied = apply_configuration(
        moto_endpoint,
        tmp_path_factory.mktemp("terraform-dagster"),
        f"-var=dagster_vpc_id={vpc}",
        f"-var=dagster_subnet_ids={json.dumps(subnets)}",
        "-var=dagster_deletion_protection=false",
        "-var=alert_email=data-team@example.com",
        f"-var=movie_rental_db_secret_arn={SOURCE_SECRET}",
    )
    yield applied
    if not applied.destroyed:
        applied.destroy()


def _dagster(deployed: AppliedTerraform) -> dict[str, Any]:
    outputs: dict[str, Any] = deployed.outputs["dagster"]
    return outputs


def _task_definitions(deployed: AppliedTerraform) -> dict[str, dict[str, Any]]:
    ecs = deployed.client("ecs")
    cluster = _dagster(deployed)["cluster_name"]
    services = ecs.describe_services(
        cluster=cluster, services=ecs.list_services(cluster=cluster)["serviceArns"]
    )["services"]
    return {
        s["serviceName"].rsplit("-", 1)[1]: ecs.describe_task_definition(
            taskDefinition=s["taskDefinition"]
        )["taskDefinition"]
        for s in services
    }


def _role_policy(deployed: AppliedTerraform, role: str, name: str) -> list[dict[str, Any]]:
    document = deployed.client("iam").get_role_policy(RoleName=role, PolicyName=name)
    policy = document["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def _statement(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    [found] = [s for s in statements if s.get("Sid") == sid]
    return found


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else sorted(value)


def test_image_repository_scans_on_push_keeps_tags_and_encrypts_with_kms(
    deployed: AppliedTerraform,
) -> None:
    name = _dagster(deployed)["repository_url"].rsplit("/", 1)[1]
    [repo] = deployed.client("ecr").describe_repositories(repositoryNames=[name])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"


def test_cluster_runs_a_webserver_and_a_daemon_on_fargate_without_public_ips(
    deployed: AppliedTerraform,
) -> None:
    ecs = deployed.client("ecs")
    cluster = _dagster(deployed)["cluster_name"]
    [described] = ecs.describe_clusters(clusters=[cluster], include=["SETTINGS"])["clusters"]
    assert {"name": "containerInsights", "value": "enabled"} in described["settings"]
    services = ecs.describe_services(
        cluster=cluster, services=ecs.list_services(cluster=cluster)["serviceArns"]
    )["services"]
    by_name = {s["serviceName"].rsplit("-", 1)[1]: s for s in services}
    assert sorted(by_name) == ["daemon", "webserver"]
    for service in services:
        assert service["launchType"] == "FARGATE"
        network = service["networkConfiguration"]["awsvpcConfiguration"]
        assert network["assignPublicIp"] == "DISABLED"
    assert [lb["containerPort"] for lb in by_name["webserver"]["loadBalancers"]] == [3000]
    assert by_name["daemon"]["loadBalancers"] == []


def test_containers_run_the_images_commands_with_the_password_from_secrets_manager(
    deployed: AppliedTerraform,
) -> None:
    definitions = _task_definitions(deployed)
    secret_arn = _dagster(deployed)["database_secret_arn"]
    commands = {}
    for name, definition in definitions.items():
        assert definition["taskRoleArn"] == deployed.outputs["pipeline_role_arn"]
        assert definition["executionRoleArn"] == _dagster(deployed)["execution_role_arn"]
        [container] = definition["containerDefinitions"]
        commands[name] = container["command"]
        environment = {e["name"]: e["value"] for e in container["environment"]}
        assert "DAGSTER_PG_PASSWORD" not in environment
        assert container["secrets"] == [
            {"name": "DAGSTER_PG_PASSWORD", "valueFrom": f"{secret_arn}:password::"}
        ]
        assert environment["DAGSTER_RUN_LAUNCHER"] == "ecs"
        assert environment["DAGSTER_PG_HOST"] == _dagster(deployed)["database_address"]
        assert environment["ANALYTICS_ALERTS_TOPIC_ARN"] == _dagster(deployed)["alerts_topic_arn"]
        assert environment["ANALYTICS_LAKE_BUCKET"] == deployed.outputs["lake_bucket"]
        assert environment["DAGSTER_COMPUTE_LOGS_BUCKET"] == deployed.outputs["lake_bucket"]
        # the source database's URL: read by the runs (task role) from its RDS secret
        assert environment["ANALYTICS_MOVIE_RENTAL_DB_SECRET"] == SOURCE_SECRET
        assert environment["AWS_DEFAULT_REGION"] == environment["AWS_REGION"]
        log_options = container["logConfiguration"]["options"]
        assert log_options["awslogs-group"].endswith(f"-dagster/{name}")
    assert commands == {
        "webserver": WEBSERVER_COMMAND,
        "daemon": ["dagster-daemon", "run", "-w", "workspace.yaml"],
    }


def test_log_groups_keep_a_year_encrypted(deployed: AppliedTerraform) -> None:
    groups = deployed.client("logs").describe_log_groups(logGroupNamePrefix="/ecs/")["logGroups"]
    assert sorted(g["logGroupName"].rsplit("/", 1)[1] for g in groups) == ["daemon", "webserver"]
    assert all(g["retentionInDays"] == 365 and g.get("kmsKeyId") for g in groups)


def test_database_is_private_encrypted_backed_up_with_a_managed_secret(
    deployed: AppliedTerraform,
) -> None:
    [db] = deployed.client("rds").describe_db_instances()["DBInstances"]
    assert db["Engine"] == "postgres" and db["StorageEncrypted"] is True
    assert db["PubliclyAccessible"] is False
    assert db["BackupRetentionPeriod"] == 7
    assert db["MasterUserSecret"]["SecretArn"] == _dagster(deployed)["database_secret_arn"]
    assert db["DeletionProtection"] is False  # as the test set it; the default is true


def _group(deployed: AppliedTerraform, suffix: str) -> dict[str, Any]:
    groups = deployed.client("ec2").describe_security_groups()["SecurityGroups"]
    [group] = [g for g in groups if g["GroupName"] == f"analytics-dev-dagster-{suffix}"]
    return group


def _rules(permissions: list[dict[str, Any]]) -> list[tuple[int, list[str]]]:
    return sorted(
        (
            p.get("FromPort", -1),
            sorted(
                [g["GroupId"] for g in p.get("UserIdGroupPairs", [])]
                + [r["CidrIp"] for r in p.get("IpRanges", [])]
            ),
        )
        for p in permissions
    )


def test_security_groups_let_only_lb_to_webserver_and_tasks_to_database_talk(
    deployed: AppliedTerraform,
) -> None:
    lb, web, tasks, db = (_group(deployed, s) for s in ("lb", "webserver", "tasks", "db"))
    assert _rules(db["IpPermissions"]) == [(5432, [tasks["GroupId"]])]
    assert _rules(db["IpPermissionsEgress"]) == []
    assert _rules(web["IpPermissions"]) == [(3000, [lb["GroupId"]])]
    assert _rules(lb["IpPermissions"]) == [(80, ["10.0.0.0/8"])]
    assert _rules(lb["IpPermissionsEgress"]) == [(3000, [web["GroupId"]])]
    assert _rules(tasks["IpPermissions"]) == []
    assert _rules(tasks["IpPermissionsEgress"]) == [
        (443, ["0.0.0.0/0"]),
        (5432, [db["GroupId"]]),
    ]


def test_webserver_load_balancer_is_internal_by_default(deployed: AppliedTerraform) -> None:
    [lb] = deployed.client("elbv2").describe_load_balancers()["LoadBalancers"]
    assert lb["Scheme"] == "internal"
    listeners = deployed.client("elbv2").describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])
    assert [(x["Port"], x["Protocol"]) for x in listeners["Listeners"]] == [(80, "HTTP")]
    assert _dagster(deployed)["webserver_url"] == f"http://{lb['DNSName']}"


def test_alerts_topic_is_encrypted_and_mails_the_given_address(
    deployed: AppliedTerraform,
) -> None:
    sns = deployed.client("sns")
    topic = _dagster(deployed)["alerts_topic_arn"]
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"].get("KmsMasterKeyId")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
        ("email", "data-team@example.com")
    ]


def test_run_launcher_may_start_stop_and_pass_exactly_the_task_roles(
    deployed: AppliedTerraform,
) -> None:
    statements = _role_policy(deployed, "analytics-dev-pipeline", "dagster-run-launcher")
    run = _statement(statements, "RunTasksOfTheDaemonDefinition")
    assert _listed(run["Action"]) == ["ecs:RunTask"]
    assert _listed(run["Resource"]) == [
        "arn:aws:ecs:us-east-1:123456789012:task-definition/analytics-dev-dagster-daemon:*"
    ]
    watch = _statement(statements, "WatchAndStopRuns")
    assert _listed(watch["Resource"]) == [
        "arn:aws:ecs:us-east-1:123456789012:task/analytics-dev-dagster/*"
    ]
    passed = _statement(statements, "PassTheTaskRoles")
    assert _listed(passed["Resource"]) == sorted(
        [deployed.outputs["pipeline_role_arn"], _dagster(deployed)["execution_role_arn"]]
    )
    assert _listed(_statement(statements, "Alert")["Resource"]) == [
        _dagster(deployed)["alerts_topic_arn"]
    ]


def test_execution_role_reads_only_the_database_secret(deployed: AppliedTerraform) -> None:
    statements = _role_policy(deployed, "analytics-dev-dagster-execution", "execution")
    secret = _statement(statements, "ReadDatabasePassword")
    assert _listed(secret["Resource"]) == [_dagster(deployed)["database_secret_arn"]]
    assert [s for s in statements if "secretsmanager" in json.dumps(s)] == [secret]


CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0d1e2f3a-dagster-ui"
SIGN_IN = {
    "oidc": {
        "issuer": "https://login.example.com",
        "authorization_endpoint": "https://login.example.com/authorize",
        "token_endpoint": "https://login.example.com/token",
        "user_info_endpoint": "https://login.example.com/userinfo",
        "client_id": "dagster-ui",
        "client_secret": "not-a-real-secret",
    },
    "cognito": {
        "user_pool_arn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Abc",
        "user_pool_client_id": "dagster-ui",
        "user_pool_domain": "analytics-login",
    },
}


@pytest.mark.parametrize("provider", sorted(SIGN_IN))
def test_sign_in_option_plans_a_public_https_load_balancer_that_authenticates_first(
    deployed: AppliedTerraform, provider: str
) -> None:
    # The webserver has no authentication: exposed, every request must sign in at the ALB.
    auth = {"certificate_arn": CERTIFICATE, provider: SIGN_IN[provider]}
    plan_file, chosen = f"{provider}.plan", f"-var=dagster_authentication={json.dumps(auth)}"
    run_terraform(
        deployed.workdir, deployed.env, "plan", "-input=false", "-no-color", f"-out={plan_file}",
        *THROWAWAY_VARIABLES, *deployed.variables, chosen,
    )  # fmt: skip
    shown = json.loads(
        run_terraform(deployed.workdir, deployed.env, "show", "-json", plan_file).stdout
    )
    after = {
        change["address"]: change["change"]["after"]
        for change in shown["resource_changes"]
        if change["change"]["actions"] != ["delete"]
    }
    assert after["module.dagster[0].aws_lb.webserver"]["internal"] is False
    listener = after["module.dagster[0].aws_lb_listener.authenticated[0]"]
    assert (listener["port"], listener["protocol"], listener["certificate_arn"]) == (
        443, "HTTPS", CERTIFICATE,
    )  # fmt: skip
    assert listener["ssl_policy"].startswith("ELBSecurityPolicy-TLS")
    actions = sorted(listener["default_action"], key=lambda a: a["order"])
    assert [a["type"] for a in actions] == [f"authenticate-{provider}", "forward"]
    redirect = after["module.dagster[0].aws_lb_listener.redirect_to_https[0]"]
    assert redirect["port"] == 80 and redirect["default_action"][0]["type"] == "redirect"
    assert "module.dagster[0].aws_lb_listener.internal[0]" not in after


def test_destroy_removes_the_dagster_deployment(deployed: AppliedTerraform) -> None:
    deployed.destroy()
    assert deployed.client("rds").describe_db_instances()["DBInstances"] == []
    assert deployed.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert deployed.client("ecr").describe_repositories()["repositories"] == []
    clusters = deployed.client("ecs").describe_clusters(clusters=["analytics-dev-dagster"])
    assert all(c["status"] == "INACTIVE" for c in clusters["clusters"])
