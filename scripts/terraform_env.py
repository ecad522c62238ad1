#!/usr/bin/env python3
"""Render `terraform output -json` as the environment of the AWS deployment.

    terraform -chdir=terraform output -json | python3 scripts/terraform_env.py > .env.aws
    set -a; . ./.env.aws; set +a; ANALYTICS_PIPELINE_ENV=aws make dev

Standard library only, so it runs before the project's environment exists.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from typing import Any

# Environment variable -> terraform output (see terraform/outputs.tf).
ENV_OUTPUTS: dict[str, str] = {
    "ANALYTICS_LANDING_BUCKET": "landing_bucket",
    "ANALYTICS_LAKE_BUCKET": "lake_bucket",
    "ANALYTICS_ATHENA_OUTPUT": "athena_output",
    "ANALYTICS_GLUE_DATABASE": "glue_database",
    "ANALYTICS_ATHENA_WORKGROUP": "athena_workgroup",
    "ANALYTICS_LANDING_QUEUE_URL": "landing_queue_url",
    "ANALYTICS_WEB_LOG_GROUP": "web_log_group",
    "AWS_REGION": "region",
}


def output_values(document: Mapping[str, Any]) -> dict[str, Any]:
    """`terraform output -json` maps each name to {"value": ..., "type": ...}; keep the values."""
    return {name: entry["value"] for name, entry in document.items()}


def environment(outputs: Mapping[str, Any]) -> dict[str, str]:
    """The ANALYTICS_* variables (and AWS_REGION) from terraform output values."""
    missing = sorted(o for o in ENV_OUTPUTS.values() if not outputs.get(o))
    if missing:
        raise ValueError(
            f"terraform output lacks {', '.join(missing)}: "
            "run `terraform apply` in terraform/ first"
        )
    env = {name: str(outputs[output]) for name, output in ENV_OUTPUTS.items()}
    api = outputs.get("api")  # null unless api_enabled; then api_key writes its secret
    if api:
        env["ANALYTICS_API_KEYS_SECRET"] = str(api["keys_secret_name"])
    if not env["ANALYTICS_ATHENA_OUTPUT"].startswith("s3://"):
        raise ValueError(f"athena_output is not an s3:// URI: {env['ANALYTICS_ATHENA_OUTPUT']!r}")
    return env


def render(env: Mapping[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def main() -> int:
    try:
        document = json.load(sys.stdin)
        sys.stdout.write(render(environment(output_values(document))))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"terraform_env: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
