# The API keys (digests and scopes, never the keys): `python -m analytics_pipeline.cli.api_key`
# adds and revokes them with ANALYTICS_API_KEYS_SECRET set to this secret's name.
resource "aws_secretsmanager_secret" "api_keys" {
  #checkov:skip=CKV_AWS_149:It holds SHA-256 digests of random keys, nothing to decrypt into a credential; a customer managed KMS key would cost per month at idle.
  #checkov:skip=CKV2_AWS_57:Keys are rotated by issuing a new key and revoking the old one (cli.api_key --revoke); a rotation Lambda has nothing to rotate.
  name                    = "${var.name}-api-keys"
  description             = "SHA-256 digests and scopes of the ${var.name} analytics API keys."
  recovery_window_in_days = 7
}

# An empty key list, so the first `api_key --scope ...` updates the secret rather than creating it.
resource "aws_secretsmanager_secret_version" "api_keys" {
  secret_id     = aws_secretsmanager_secret.api_keys.id
  secret_string = jsonencode({ keys = [] })

  lifecycle {
    # Keys are added and revoked by the CLI, not by Terraform.
    ignore_changes = [secret_string]
  }
}
