"""The API's engine and key store for the deployment the settings name."""

from __future__ import annotations

import boto3

from analytics_pipeline.serving.api_keys import KeyFile, KeyStore, SecretsManagerKeyStore
from analytics_pipeline.serving.athena import AthenaServingEngine
from analytics_pipeline.serving.engine import DuckDBServingEngine, ServingEngine
from analytics_pipeline.settings import Settings


def engine_for(settings: Settings) -> ServingEngine:
    if settings.aws is None:
        return DuckDBServingEngine(settings.lake_dir)
    return AthenaServingEngine(
        database=settings.aws.glue_database,
        workgroup=settings.aws.athena_workgroup,
        output_location=settings.aws.athena_output,
    )


def key_store_for(settings: Settings) -> KeyStore:
    if settings.api_keys_secret:
        client = boto3.client("secretsmanager")
        return SecretsManagerKeyStore(settings.api_keys_secret, client)
    if settings.aws is not None:
        # A Lambda's file system is the package: a key file there could never be updated.
        raise ValueError("ANALYTICS_PIPELINE_ENV=aws needs ANALYTICS_API_KEYS_SECRET")
    return KeyFile(settings.api_keys_file)
