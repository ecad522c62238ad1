"""Dagster on ECS (terraform/modules/dagster) applied to a moto server, audited with boto3.

A VPC with two subnets stands for the account's network; the configuration is applied with
dagster_vpc_id set, then every service, role and network rule is read back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from analytics_pipeline_tests.terraform_fixtures import (
    DAGSTER_DEPLOYMENT,
    SOURCE_SECRET,
    AppliedTerraform,
    deployment_fixture,
    requires_terraform,
)

pytestmark = [requires_terraform, pytest.mark.timeout(900)]

# terraform/ applied with dagster_vpc_id set, an alert address and a source-database secret
# (DAGSTER_DEPLOYMENT's variables).
deployed = deployment_fixture(DAGSTER_DEPLOYMENT)
WEBSERVER_COMMAND = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]


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


def _self_signed_certificate(host: str) -> dict[str, bytes]:
    """A certificate and key for `host`, as ACM's ImportCertificate takes them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return {
        "Certificate": certificate.public_bytes(serialization.Encoding.PEM),
        "PrivateKey": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    }


OIDC = {
    "issuer": "https://login.example.com",
    "authorization_endpoint": "https://login.example.com/authorize",
    "token_endpoint": "https://login.example.com/token",
    "user_info_endpoint": "https://login.example.com/userinfo",
    "client_id": "dagster-ui",
    "client_secret": "not-a-real-secret",
}


def _cognito_sign_in(deployed: AppliedTerraform) -> dict[str, str]:
    """A user pool, an app client with the ALB's OAuth flow, and a hosted sign-in domain."""
    cognito = deployed.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="dagster-ui")["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="dagster-alb",
        GenerateSecret=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        AllowedOAuthFlowsUserPoolClient=True,
        CallbackURLs=["https://dagster.example.com/oauth2/idpresponse"],
    )["UserPoolClient"]
    cognito.create_user_pool_domain(Domain="analytics-login", UserPoolId=pool["Id"])
    return {
        "user_pool_arn": pool["Arn"],
        "user_pool_client_id": client["ClientId"],
        "user_pool_domain": "analytics-login",
    }


def _ingress_ports(deployed: AppliedTerraform, group_id: str) -> list[int]:
    [group] = deployed.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return sorted(p["FromPort"] for p in group["IpPermissions"])


@pytest.mark.parametrize("provider", ["oidc", "cognito"])
def test_sign_in_option_applies_a_public_https_load_balancer_that_authenticates_first(
    deployed: AppliedTerraform, provider: str
) -> None:
    # The webserver has no authentication: exposed, every request must sign in at the ALB.
    imported = deployed.client("acm").import_certificate(
        **_self_signed_certificate("dagster.example.com")
    )
    sign_in = OIDC if provider == "oidc" else _cognito_sign_in(deployed)
    auth = {"certificate_arn": imported["CertificateArn"], provider: sign_in}
    deployed.apply(f"-var=dagster_authentication={json.dumps(auth)}")

    elbv2 = deployed.client("elbv2")
    [lb] = elbv2.describe_load_balancers()["LoadBalancers"]
    assert lb["Scheme"] == "internet-facing"
    assert _ingress_ports(deployed, lb["SecurityGroups"][0]) == [80, 443]
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    by_port = {x["Port"]: x for x in listeners}
    assert sorted(by_port) == [80, 443]  # the internal plain-HTTP listener is gone
    https = by_port[443]
    assert https["Protocol"] == "HTTPS"
    assert [c["CertificateArn"] for c in https["Certificates"]] == [imported["CertificateArn"]]
    assert https["SslPolicy"].startswith("ELBSecurityPolicy-TLS")
    authenticate, forward = sorted(https["DefaultActions"], key=lambda a: a["Order"])
    config_key = {"oidc": "AuthenticateOidcConfig", "cognito": "AuthenticateCognitoConfig"}
    assert authenticate["Type"] == f"authenticate-{provider}"
    applied = authenticate[config_key[provider]]
    if provider == "oidc":
        assert (applied["Issuer"], applied["ClientId"]) == (OIDC["issuer"], OIDC["client_id"])
    else:
        assert applied["UserPoolArn"] == sign_in["user_pool_arn"]
        assert applied["UserPoolClientId"] == sign_in["user_pool_client_id"]
    [target_group] = elbv2.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])[
        "TargetGroups"
    ]
    assert (forward["Type"], forward["TargetGroupArn"]) == (
        "forward", target_group["TargetGroupArn"],
    )  # fmt: skip
    [redirect] = by_port[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert (redirect["RedirectConfig"]["Protocol"], redirect["RedirectConfig"]["Port"]) == (
        "HTTPS", "443",
    )  # fmt: skip
    assert _dagster(deployed)["webserver_url"] == f"https://{lb['DNSName']}"


def test_destroy_removes_the_dagster_deployment(deployed: AppliedTerraform) -> None:
    deployed.destroy()
    assert deployed.client("rds").describe_db_instances()["DBInstances"] == []
    assert deployed.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert deployed.client("ecr").describe_repositories()["repositories"] == []
    clusters = deployed.client("ecs").describe_clusters(clusters=["analytics-dev-dagster"])
    assert all(c["status"] == "INACTIVE" for c in clusters["clusters"])
