#!/usr/bin/env bash
# Offline checks of terraform/: fmt, init (provider mirror when present), validate, checkov.
# The same checks run in pytest (analytics_pipeline_tests/test_terraform.py), which also
# applies the configuration to a moto server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tf_dir="$root/terraform"
plugin_dir="${TF_PLUGIN_DIR:-/opt/tf-plugins}"
checkov="checkov==3.3.30"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# No update check, no user CLI config: offline and reproducible.
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
export TF_CLI_CONFIG_FILE="$work/terraformrc"
: > "$TF_CLI_CONFIG_FILE"

echo "== terraform fmt -check"
terraform -chdir="$tf_dir" fmt -check -recursive -diff

# init/validate in a copy, so no .terraform/ or lock file lands in the repository.
cp -r "$tf_dir" "$work/terraform"
rm -rf "$work/terraform/.terraform" "$work/terraform/.terraform.lock.hcl"
echo "== terraform init"
if [ -d "$plugin_dir" ]; then
    terraform -chdir="$work/terraform" init -backend=false -input=false -plugin-dir="$plugin_dir" >/dev/null
else
    terraform -chdir="$work/terraform" init -backend=false -input=false >/dev/null
fi
echo "== terraform validate"
terraform -chdir="$work/terraform" validate

echo "== checkov"
if command -v uvx >/dev/null 2>&1; then
    uv_run=(uvx)
elif command -v uv >/dev/null 2>&1; then
    uv_run=(uv tool run)
else
    uv_run=(python3 -m uv tool run)
fi
# Its own environment: installed into the project's, checkov downgrades boto3 (TRAPS.md).
"${uv_run[@]}" "$checkov" --skip-download --quiet --compact --framework terraform -d "$tf_dir"
