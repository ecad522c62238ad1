"""The API as an AWS Lambda behind an API Gateway HTTP API (payload format 2.0).

The app is built on the first invocation, not at import, and kept for the warm ones: a
cold start pays for it once, and importing this module needs no configuration.
"""

from typing import Any

from mangum import Mangum

_adapter: Mangum | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _adapter
    if _adapter is None:
        from analytics_pipeline.serving.app import create_app

        # No lifespan: the app opens nothing at startup that it must close.
        _adapter = Mangum(create_app(), lifespan="off")
    return dict(_adapter(event, context))
