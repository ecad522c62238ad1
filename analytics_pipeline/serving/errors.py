"""The API's client errors, each answered with its status and a specific message."""


class ApiError(Exception):
    status_code = 400


class BadRequest(ApiError):
    """Input the API cannot answer: a bad date, an unknown level, a filter the level lacks."""


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    """A valid key asking for rows outside its scope."""

    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Unavailable(ApiError):
    """The lake cannot answer yet (no catalog, no table): nothing the caller did wrong."""

    status_code = 503


class UpstreamFailed(ApiError):
    """The query engine (Athena) refused or failed the query: its reason, not a bare 500."""

    status_code = 502
