"""A serverless analytics lake on Dagster: landing JSON -> staged -> Parquet -> catalog -> SQL."""
