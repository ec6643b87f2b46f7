"""One JSON error shape for every failure: {"error": {"status", "code", "message"[, "details"]}}."""

from __future__ import annotations

import logging
import uuid

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("bizosaas.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    details: list[dict] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or _CODES.get(status, "error")
        self.headers = headers


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer, ApiKey header="X-API-Key"'})


def error_response(
    status: int, message: str, code: str | None = None, details=None, headers=None
) -> JSONResponse:
    body = {"status": status, "code": code or _CODES.get(status, "error"), "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


# Documented on every route, so clients (and schema-driven tests) know the shape.
ERROR_RESPONSES = {
    status: {"model": ErrorResponse, "description": code.replace("_", " ")}
    for status, code in _CODES.items()
    if status in (401, 403, 404, 422, 503)
}


class RejectNulInQuery:
    """Postgres text cannot hold NUL characters, so a query string carrying one could only
    fail deep in a route; it is a 422 here, before routing, for every route at once."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and b"%00" in scope.get("query_string", b""):
            response = error_response(422, "query parameters may not contain NUL (%00) characters")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RejectNulInQuery)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError):
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "message": err.get("msg", "")}
            for err in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(first["loc"][1:] or first["loc"])
        return error_response(422, f"{where}: {first['message']}", details=details)

    @app.exception_handler(psycopg.OperationalError)
    async def _database_down(_: Request, exc: psycopg.OperationalError):
        log.error("database unavailable: %s", exc)
        return error_response(
            503, "the database is unavailable; try again shortly", headers={"Retry-After": "5"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        reference = uuid.uuid4().hex[:12]
        # The server logs the traceback too; this line ties it to the reference the client got.
        log.error("unhandled error (reference %s): %r", reference, exc)
        return error_response(500, f"internal error (reference {reference})", "internal_error")
