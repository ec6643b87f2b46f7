"""Pagination, sorting and the list envelope, the same on every list route:

    GET /...?limit=50&offset=0&sort=-last_materialized_at,tenant_id
    -> {"data": [...], "page": {"limit": 50, "offset": 0, "total": 5, "next_offset": null}}

`sort` takes a comma-separated list of the route's sortable fields, `-` for descending; an
unknown field is a 422. Offsets are capped: deep pages belong to exports, not to the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from serving.errors import ApiError

T = TypeVar("T")
MAX_LIMIT = 200
MAX_OFFSET = 100_000


class PageInfo(BaseModel):
    limit: int
    offset: int
    total: int
    next_offset: int | None


class Page(BaseModel, Generic[T]):
    data: list[T]
    page: PageInfo


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


def sort_param(sortable: Sequence[str], default: str | None = None):
    """The `sort` query parameter of a route sortable by `sortable`."""
    described = f"Comma-separated, '-' for descending: {', '.join(sortable)}"
    if default:
        described += f" (default {default})"
    return Annotated[str | None, Query(description=described, max_length=200)]


def order_by(sort: str | None, allowed: Sequence[str], default: str) -> str:
    """A safe ORDER BY clause from a `sort` parameter: only whitelisted column names reach SQL."""
    terms = []
    for raw in (sort or default).split(","):
        term = raw.strip()
        descending = term.startswith("-")
        name = term.lstrip("-")
        if name not in allowed:
            raise ApiError(422, f"sort: unknown field {name!r}; sortable: {', '.join(allowed)}")
        terms.append(f"{name} {'DESC' if descending else 'ASC'} NULLS LAST")
    return ", ".join(terms)


def paged(rows: list[dict], params: PageParams, total: int) -> dict:
    next_offset = params.offset + params.limit
    return {
        "data": rows,
        "page": {
            "limit": params.limit,
            "offset": params.offset,
            "total": total,
            "next_offset": next_offset if next_offset < total else None,
        },
    }
