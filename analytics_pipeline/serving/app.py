"""The analytics API: tenant-scoped web request stats and sessions, plus the viewer at /.

`make api` serves it locally (DuckDB over the lake's catalog); on AWS the same app runs in
a Lambda (Athena through pyathena). create_app reads the deployment from the environment.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import swagger_ui_bundle
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from analytics_pipeline.serving.api_keys import KeyStore
from analytics_pipeline.serving.deployment import engine_for, key_store_for
from analytics_pipeline.serving.engine import Answer, ServingEngine
from analytics_pipeline.serving.errors import ApiError, BadRequest, NotFound, Unauthorized
from analytics_pipeline.serving.queries import SessionQuery, StatsQuery
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline.settings import Settings

VIEWER_DIR = Path(__file__).parent / "viewer"
STATS_PARAMS = {"level", "from", "to", "client_id", "reseller_id", "user_id", "by"}
SESSION_PARAMS = {"from", "to"}
log = logging.getLogger("analytics_pipeline.serving")
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ak_...`")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = Settings.from_env() if settings is None else settings
    engine = engine_for(settings)
    keys = key_store_for(settings)
    # Swagger UI's assets come from a package, not a CDN: /docs works offline.
    app = FastAPI(
        title="analytics_pipeline API",
        description="Unique sessions, requests per session and products per request of "
        "the web app, at each level of client > reseller > user, scoped by API key.",
        docs_url=None,
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=VIEWER_DIR), name="viewer")
    app.mount("/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    app.add_exception_handler(ApiError, _api_error)
    app.state.engine = engine
    app.state.keys = keys

    @app.get("/", include_in_schema=False)
    def viewer() -> FileResponse:
        return FileResponse(VIEWER_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="analytics_pipeline API",
            swagger_js_url="/swagger/swagger-ui-bundle.js",
            swagger_css_url="/swagger/swagger-ui.css",
            swagger_favicon_url="/swagger/favicon-32x32.png",
        )

    def scope(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Scope:
        return _authorize(keys, credentials)

    @app.get("/v1/web-requests/stats")
    def stats(
        request: Request,
        response: Response,
        key_scope: Annotated[Scope, Depends(scope)],
        level: Annotated[str | None, Query(description="global, client, reseller or user")] = None,
        start: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
        end: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
        client_id: str | None = None,
        reseller_id: str | None = None,
        user_id: str | None = None,
        by: Annotated[str | None, Query(description="day: one row per day too")] = None,
    ) -> dict[str, Any]:
        """Counts over the whole period asked (a session over two days counts once), per id
        of the level; with by=day, per day as well. A scoped key sees only its own rows."""
        _refuse_unknown(request, STATS_PARAMS)
        query = StatsQuery.parse(
            key_scope,
            level,
            start,
            end,
            {"client_id": client_id, "reseller_id": reseller_id, "user_id": user_id},
            by,
        )
        answer = _run(engine, response, "stats", key_scope, *query.sql())
        return {
            "level": query.level,
            "from": query.dates.start.isoformat(),
            "to": query.dates.end.isoformat(),
            "rows": answer.records(),
        }

    @app.get("/v1/web-requests/sessions/{session_id}")
    def session(
        session_id: str,
        request: Request,
        response: Response,
        key_scope: Annotated[Scope, Depends(scope)],
        start: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
        end: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
    ) -> dict[str, Any]:
        """The session's requests in time order, each with the products it touched."""
        _refuse_unknown(request, SESSION_PARAMS)
        query = SessionQuery.parse(key_scope, session_id, start, end)
        answer = _run(engine, response, "session", key_scope, *query.sql())
        if not answer.rows:
            # The same answer for a session of another tenant: its existence is not ours.
            raise NotFound(f"no session {session_id!r} between {start} and {end} for this key")
        return {
            "session_id": session_id,
            "from": query.dates.start.isoformat(),
            "to": query.dates.end.isoformat(),
            "requests": requests_with_products(answer.records()),
        }

    return app


def requests_with_products(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per request (rows come one per request and product, in time order)."""
    requests: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = requests.get(row["request_id"])
        if entry is None:
            entry = requests[row["request_id"]] = {
                "request_id": row["request_id"],
                "timestamp": _iso(row["timestamp"]),
                "path": row["path"],
                "client_id": row["client_id"],
                "reseller_id": row["reseller_id"],
                "user_id": row["user_id"],
                "products": [],
            }
        if row["product_id"] is not None:
            entry["products"].append(row["product_id"])
    return list(requests.values())


def _refuse_unknown(request: Request, known: set[str]) -> None:
    """A misspelt filter (clientid=) would otherwise widen the answer silently."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r}")


def _iso(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat(timespec="milliseconds") + "Z"  # the lake's timestamps are UTC
    return value


def _authorize(keys: KeyStore, credentials: HTTPAuthorizationCredentials | None) -> Scope:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    found = keys.scope_for(credentials.credentials)
    if found is None:
        raise Unauthorized("unknown API key")
    return found


def _run(
    engine: ServingEngine,
    response: Response,
    endpoint: str,
    key_scope: Scope,
    sql: str,
    params: list[str],
) -> Answer:
    """Run the query; report the engine, time and (on Athena) bytes scanned and cost."""
    answer = engine.query(sql, params)
    response.headers["X-Query-Engine"] = answer.engine
    response.headers["X-Query-Seconds"] = f"{answer.seconds:.3f}"
    if answer.query_id is not None:
        response.headers["X-Athena-Query-Id"] = answer.query_id
        response.headers["X-Athena-Bytes-Scanned"] = str(answer.bytes_scanned)
        response.headers["X-Athena-Cost-USD"] = repr(answer.cost_usd)
        response.headers["X-Athena-Reused-Result"] = str(answer.reused_result).lower()
    log.info(
        "%s scope=%s engine=%s rows=%d seconds=%.3f query_id=%s bytes_scanned=%s cost_usd=%s",
        endpoint,
        key_scope,
        answer.engine,
        len(answer.rows),
        answer.seconds,
        answer.query_id,
        answer.bytes_scanned,
        answer.cost_usd,
    )
    return answer


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    status = error.status_code if isinstance(error, ApiError) else 500
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, status, error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)
