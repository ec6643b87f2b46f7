"""Saleor GraphQL (a tenant's own shop): products with variants, channel prices and stock, and
orders with their lines.

A thin resource: it builds the two queries, sends them with the app token, follows Relay cursors
and says what an answer means. GraphQL reports failures inside HTTP 200 answers (`errors`), so a
200 is only a success once its body says so: a permission error comes back as `data.orders =
null`, which must never be read as "no orders". Parsing lives in `ml.ecommerce.saleor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from orchestration.errors import PlatformError
from orchestration.settings import ENV_SALEOR_TOKEN, ENV_SALEOR_TOKEN_HOST
from orchestration.sources import Attempt, HttpSourceResource, Reject, SourceError, json_body, retry_on_status

# Sorted by last modification, so a watermark (the newest updatedAt stored) is a safe place to
# resume from. `quantityAvailable` is the stock the channel can sell, without staff permissions.
PRODUCTS_QUERY = """
query Products($first: Int!, $after: String, $channel: String!, $variants: Int!, $where: ProductWhereInput) {
  products(first: $first, after: $after, channel: $channel, where: $where,
           sortBy: {field: LAST_MODIFIED_AT, direction: ASC}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id name slug created updatedAt
      productType { name }
      category { name slug }
      pricing { priceRange { start { gross { amount currency } } stop { gross { amount currency } } } }
      productVariants(first: $variants) {
        pageInfo { hasNextPage }
        edges { node {
          id sku name trackInventory quantityAvailable
          pricing { price { gross { amount currency } } }
        } }
      }
    } }
  }
}
"""

ORDERS_QUERY = """
query Orders($first: Int!, $after: String, $where: OrderWhereInput) {
  orders(first: $first, after: $after, where: $where,
         sortBy: {field: LAST_MODIFIED_AT, direction: ASC}) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id number created updatedAt status chargeStatus authorizeStatus userEmail
      channel { slug currencyCode }
      total { gross { amount currency } net { amount currency } }
      shippingPrice { gross { amount currency } }
      lines {
        id productName variantName productSku quantity
        variant { id product { id } }
        unitPrice { gross { amount currency } }
        totalPrice { gross { amount currency } }
      }
    } }
  }
}
"""


def compact(query: str) -> str:
    """The query on one line: fewer bytes per request, and what the fixtures record."""
    return " ".join(query.split())


def products_body(
    *, channel: str, first: int, variants: int, after: str | None, since: str | None
) -> dict[str, Any]:
    where = {"updatedAt": {"range": {"gte": since}}} if since else {}
    return {
        "query": compact(PRODUCTS_QUERY),
        "variables": {
            "first": first,
            "after": after,
            "channel": channel,
            "variants": variants,
            "where": where,
        },
    }


def orders_body(
    *, first: int, after: str | None, created_gte: str, created_lte: str, since: str | None
) -> dict[str, Any]:
    # DateTimeRangeInput bounds are inclusive: a day is [00:00, 23:59:59.999999].
    where: dict[str, Any] = {"createdAt": {"gte": created_gte, "lte": created_lte}}
    if since:
        where["updatedAt"] = {"gte": since}
    return {"query": compact(ORDERS_QUERY), "variables": {"first": first, "after": after, "where": where}}


class SaleorTokenMissingError(PlatformError):
    def __init__(self) -> None:
        super().__init__(
            f"{ENV_SALEOR_TOKEN} is not set: live Saleor calls need an app token (Dashboard > Apps, with "
            "MANAGE_PRODUCTS and MANAGE_ORDERS); set it in the environment Dagster runs with"
        )


class SaleorTokenScopeError(PlatformError):
    def __init__(self, host: str, token_host: str | None) -> None:
        where = (
            f"{ENV_SALEOR_TOKEN_HOST}={token_host}" if token_host else f"{ENV_SALEOR_TOKEN_HOST} is not set"
        )
        super().__init__(
            f"the Saleor app token is not sent to {host or 'a URL without a host'} ({where}): set "
            f"{ENV_SALEOR_TOKEN_HOST} to the host of the shop the token belongs to, and give each "
            "shop its own token"
        )


@dataclass
class Page:
    number: int
    body: dict[str, Any]
    connection: dict[str, Any]

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return [edge.get("node") for edge in self.connection["edges"]]


class SaleorResource(HttpSourceResource):
    """Saleor's GraphQL API at the tenant's own endpoint (tenant settings: ecommerce.saleor_url).

    Saleor Cloud sandboxes allow 120 requests a minute per environment: callers space requests
    with a shared rate slot per environment (`rate_key`); production and self-hosted Saleor have
    no limit, so `min_interval_s` may be lowered for them."""

    source = "saleor"
    app_token: str | None = Field(default=None, description=f"App token ({ENV_SALEOR_TOKEN}).")
    token_host: str | None = Field(
        default=None,
        description=(
            f"The one Saleor host the app token belongs to ({ENV_SALEOR_TOKEN_HOST}). The shop's URL "
            "is a tenant setting, so the token is sent to this host only, never to a URL a tenant names."
        ),
    )
    min_interval_s: float = Field(
        default=0.5,
        ge=0,
        description="Seconds between requests to one Saleor environment (sandbox: 120/min).",
    )
    products_page_size: int = Field(
        default=25,
        ge=1,
        le=100,
        description="Products per page (max 100): nested variants multiply a query's cost; keep pages small.",
    )
    variants_per_product: int = Field(default=100, ge=1, le=100, description="Variants fetched per product.")
    orders_page_size: int = Field(default=100, ge=1, le=100, description="Orders per page (max 100).")
    max_pages: int = Field(default=1000, ge=1, description="Pages one query may span before it is stopped.")

    def client(self, url: str | None = None) -> httpx.Client:
        """A client for the shop at `url`; it carries the app token only when `url` is on
        `token_host`."""
        if self.app_token:
            host = (urlsplit(url or "").hostname or "").lower()
            if not self.token_host or host != self.token_host.strip().lower():
                raise SaleorTokenScopeError(host, self.token_host)
            return self.http_client(headers={"Authorization": f"Bearer {self.app_token}"})
        if self.mode != "replay":
            raise SaleorTokenMissingError()
        return self.http_client()  # replay matches requests without their credentials

    @staticmethod
    def rate_key(url: str) -> str:
        """The rate-slot name of a Saleor environment: its limit is per environment, so two
        tenants on different shops never wait for each other."""
        return f"saleor:{urlsplit(url).netloc}"

    def pages(
        self,
        client: httpx.Client,
        url: str,
        connection: str,
        make_body: Callable[[str | None], dict[str, Any]],
        *,
        before_attempt: Callable[[], None] | None = None,
        on_page: Callable[[int, dict[str, Any], list[Attempt]], None] | None = None,
    ) -> Iterator[Page]:
        """Every page of `connection` (Relay cursors: `first`/`after` until `hasNextPage` is
        false). `on_page` receives each page's exchanges, failed ones included, before the page
        is parsed or the next one requested."""
        after: str | None = None
        seen: set[str] = set()
        for number in range(1, self.max_pages + 1):
            body = make_body(after)
            attempts: list[Attempt] = []
            request = client.build_request("POST", url, json=body)
            try:
                answer = self.fetch(
                    client,
                    request,
                    lambda response: classify(response, connection),
                    before_attempt=before_attempt,
                    attempts=attempts,
                )
            finally:
                if on_page is not None:
                    on_page(number, body, attempts)
            yield Page(number, body, answer)
            info = answer["pageInfo"]
            if not info.get("hasNextPage"):
                return
            cursor = info.get("endCursor")
            if not isinstance(cursor, str) or not cursor or cursor in seen:
                raise SourceError(
                    f"saleor: page {number} of {connection} says hasNextPage but its endCursor "
                    f"{cursor!r} is missing or was already used; stopped instead of looping",
                    source=self.source,
                    attempts=attempts,
                    retryable=False,
                )
            seen.add(cursor)
            after = cursor
        raise SourceError(
            f"saleor: {connection} still had more pages after max_pages={self.max_pages}",
            source=self.source,
            attempts=[],
            retryable=False,
        )


_PERMISSION_NAME = re.compile(r"\b[A-Z][A-Z_]{3,}\b")


def _error_code(error: dict[str, Any]) -> str:
    extensions = error.get("extensions") if isinstance(error.get("extensions"), dict) else {}
    exception = extensions.get("exception") if isinstance(extensions.get("exception"), dict) else {}
    return str(exception.get("code") or extensions.get("code") or "GraphQLError")


def graphql_error(errors: Any, connection: str) -> str:
    """A one-line reason from a GraphQL `errors` list, naming a missing permission outright."""
    if not isinstance(errors, list) or not errors:
        return f"malformed `errors` in the answer: {str(errors)[:120]!r}"
    items = [e if isinstance(e, dict) else {"message": str(e)} for e in errors]
    for error in items:
        if _error_code(error) == "PermissionDenied":
            message = str(error.get("message", ""))
            wanted = _PERMISSION_NAME.findall(message.split("permissions:")[-1])
            return (
                f"Saleor denied access to {connection} (PermissionDenied): the app token lacks "
                f"{' or '.join(wanted) or 'a permission'}; grant it to the app in the Dashboard. "
                f"This answer is an error, not zero {connection}. Saleor said: {message!r}"
            )
    return "GraphQL errors in the answer: " + "; ".join(
        f"{_error_code(e)}: {' '.join(str(e.get('message', '')).split())[:200]}" for e in items[:3]
    )


def _messages(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors")
        messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        messages = []
    return " | ".join(messages) or " ".join(response.text[:160].split())


def classify(response: httpx.Response, connection: str) -> dict[str, Any]:
    """The `data.<connection>` of a good answer; otherwise Retry or Reject with the reason."""
    status = response.status_code
    if status == 200:
        body = json_body(response, "saleor")
        if not isinstance(body, dict):
            raise Reject(f"malformed response from saleor: expected a JSON object, got {type(body).__name__}")
        if body.get("errors"):
            raise Reject(graphql_error(body["errors"], connection))
        data = body.get("data")
        answer = data.get(connection) if isinstance(data, dict) else None
        if not (
            isinstance(answer, dict)
            and isinstance(answer.get("edges"), list)
            and isinstance(answer.get("pageInfo"), dict)
        ):
            raise Reject(f"malformed response from saleor: no data.{connection} with edges and pageInfo")
        return answer
    if status == 400:
        # Query cost over the limit, or a field this Saleor version does not have.
        raise Reject(f"Saleor rejected the query (HTTP 400): {_messages(response)}")
    if status in (401, 403):
        raise Reject(
            f"Saleor refused the app token (HTTP {status}: {_messages(response)}); check {ENV_SALEOR_TOKEN}"
        )
    retry_on_status(response)
    raise Reject(f"HTTP {status} from saleor: {_messages(response)}")
