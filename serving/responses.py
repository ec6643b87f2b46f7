"""JSON responses written straight from database rows.

Routes still declare their `response_model` (it documents the API and schemathesis holds us to
it), but return rows through `json_response`, skipping FastAPI's per-request re-validation of
data that Postgres has already typed: that step cost more than the query itself under load.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(content: Any, status_code: int = 200) -> Response:
    body = orjson.dumps(content, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)
    return Response(body, status_code=status_code, media_type="application/json")
