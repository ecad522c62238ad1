#!/bin/sh
# Renders $DAGSTER_HOME/dagster.yaml from the environment (Postgres from DAGSTER_PG_*, the
# password injected by ECS from Secrets Manager), then runs the given Dagster command.
set -eu
python -m analytics_pipeline.cli.instance_config
exec "$@"
