"""The Saleor resource through its real httpx client and the recorded answers in fixtures/saleor
(replay mode): Relay pagination, GraphQL errors inside 200 answers, 429s, 400 query-cost and
validation errors, malformed bodies. Waits are recorded instead of slept. The few in-process
responses stand in for answers the fixtures do not hold (a looping cursor, a refused token)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from orchestration.saleor import (
    ORDERS_QUERY,
    PRODUCTS_QUERY,
    SaleorResource,
    SaleorTokenMissingError,
    SaleorTokenScopeError,
    classify,
    compact,
    graphql_error,
    orders_body,
    products_body,
)
from orchestration.settings import ENV_SALEOR_TOKEN, ENV_SALEOR_TOKEN_HOST, PROJECT_ROOT
from orchestration.sources import Attempt, Reject, Retry, SourceError

CORELDOVE = "https://coreldove.saleor.cloud/graphql/"
EDGE = "https://coreldove-edge.saleor.cloud/graphql/"
FIXTURES = PROJECT_ROOT / "fixtures" / "saleor"


def saleor(**config) -> tuple[SaleorResource, list[float]]:
    resource = SaleorResource(min_interval_s=0, **config)
    waits: list[float] = []
    object.__setattr__(resource, "_sleep", waits.append)
    return resource, waits


def products_of(resource: SaleorResource, since: str | None = None):
    def body(after):
        return products_body(
            channel="default-channel",
            first=resource.products_page_size,
            variants=resource.variants_per_product,
            after=after,
            since=since,
        )

    return body


def orders_of(resource: SaleorResource, day: date, since: str | None = None):
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)

    def body(after):
        return orders_body(
            first=resource.orders_page_size,
            after=after,
            created_gte=start.isoformat(),
            created_lte=(start + timedelta(days=1, microseconds=-1)).isoformat(),
            since=since,
        )

    return body


def recorded(pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob(pattern))]


def collect(resource, url, connection, make_body, slots=None):
    pages, evidence = [], []

    def on_page(number, body, attempts):
        evidence.append((number, body["variables"].get("after"), [a.status for a in attempts]))

    for page in resource.pages(
        resource.client(url),
        url,
        connection,
        make_body,
        before_attempt=(lambda: slots.append(1)) if slots is not None else None,
        on_page=on_page,
    ):
        pages.append(page)
    return pages, evidence


def test_the_catalogue_is_read_page_by_page_following_end_cursors():
    resource, waits = saleor()
    pages, evidence = collect(resource, CORELDOVE, "products", products_of(resource))
    files = recorded("coreldove/products_full_page_*.json")
    assert len(pages) == len(files) >= 3  # several pages of 25
    assert [len(p.nodes) for p in pages] == [
        len(f["responses"][-1]["json"]["data"]["products"]["edges"]) for f in files
    ]
    # each page asks after the previous page's endCursor; the first after nothing
    cursors = [None] + [p.connection["pageInfo"]["endCursor"] for p in pages[:-1]]
    assert [after for _, after, _ in evidence] == cursors
    assert all(p.body["variables"]["first"] == 25 for p in pages)
    assert not pages[-1].connection["pageInfo"]["hasNextPage"]
    ids = [n["id"] for p in pages for n in p.nodes]
    assert len(ids) == len(set(ids)) == pages[0].connection["totalCount"]
    assert waits == []


def test_a_429_is_retried_and_every_attempt_is_handed_over_before_parsing():
    resource, waits = saleor(backoff_s=0.25)
    slots: list[int] = []
    pages, evidence = collect(resource, EDGE, "products", products_of(resource), slots)
    assert [statuses for _, _, statuses in evidence] == [[429, 200], [200]]
    assert waits == [0.25]  # no Retry-After: the backoff
    assert len(slots) == 3  # a rate slot before every attempt, the retried one included
    assert sum(len(p.nodes) for p in pages) == 30


def test_an_incremental_read_asks_only_since_the_watermark():
    resource, _ = saleor()
    full, _ = collect(resource, EDGE, "products", products_of(resource))
    watermark = max(n["updatedAt"] for p in full for n in p.nodes)
    pages, _ = collect(resource, EDGE, "products", products_of(resource, since=watermark))
    assert pages[0].body["variables"]["where"] == {"updatedAt": {"range": {"gte": watermark}}}
    nodes = [n for p in pages for n in p.nodes]
    assert all(n["updatedAt"] >= watermark for n in nodes)
    assert {n["name"] for n in nodes} >= {"Organic Linen Apron"}  # the new product
    assert [n["updatedAt"] for n in nodes] == sorted(n["updatedAt"] for n in nodes)  # by modification


def test_a_busy_day_of_orders_spans_two_pages():
    resource, _ = saleor()
    pages, evidence = collect(resource, CORELDOVE, "orders", orders_of(resource, date(2026, 11, 20)))
    assert [len(p.nodes) for p in pages] == [100, 30]
    assert evidence[1][1] == pages[0].connection["pageInfo"]["endCursor"]
    where = pages[0].body["variables"]["where"]
    assert where == {
        "createdAt": {"gte": "2026-11-20T00:00:00+00:00", "lte": "2026-11-20T23:59:59.999999+00:00"}
    }
    assert all(n["created"].startswith("2026-11-20") for p in pages for n in p.nodes)


def test_permission_denied_in_a_200_is_a_failure_naming_the_permission_not_zero_orders():
    resource, waits = saleor()
    day = date(2026, 11, 11)
    full, _ = collect(resource, EDGE, "orders", orders_of(resource, day))
    watermark = max(n["updatedAt"] for p in full for n in p.nodes)
    evidence: list[list[Attempt]] = []
    with pytest.raises(SourceError) as caught:
        list(
            resource.pages(
                resource.client(),
                EDGE,
                "orders",
                orders_of(resource, day, since=watermark),
                on_page=lambda n, body, attempts: evidence.append(attempts),
            )
        )
    message = str(caught.value)
    assert "PermissionDenied" in message and "MANAGE_ORDERS" in message and "not zero orders" in message
    assert caught.value.retryable is False
    assert [a.status for a in evidence[0]] == [200]  # handed over for storage, one attempt only
    assert '"orders": null' in evidence[0][0].body
    assert waits == []


@pytest.mark.parametrize(
    ("day", "fragment", "statuses"),
    [
        (13, "malformed response body from saleor (HTTP 200)", [200]),
        (
            12,
            "(HTTP 400): The query exceeds the maximum cost of 50000. Actual cost is 61234",
            [400],
        ),
        (16, 'Cannot query field "shippingPrice" on type "Order"', [400]),
        (17, "HTTP 503 (gave up after 4 attempts", [503] * 4),
    ],
)
def test_failed_answers_are_clear_and_kept(day, fragment, statuses):
    resource, _ = saleor(backoff_s=0)
    evidence: list[list[Attempt]] = []
    with pytest.raises(SourceError) as caught:
        list(
            resource.pages(
                resource.client(),
                EDGE,
                "orders",
                orders_of(resource, date(2026, 11, day)),
                on_page=lambda n, body, attempts: evidence.append(attempts),
            )
        )
    assert fragment in str(caught.value)
    assert [a.status for a in evidence[0]] == statuses


def test_a_429_on_orders_is_retried():
    resource, waits = saleor(backoff_s=0.5)
    pages, evidence = collect(resource, EDGE, "orders", orders_of(resource, date(2026, 11, 15)))
    assert evidence[0][2] == [429, 200] and waits == [0.5]
    assert len(pages[0].nodes) == 3


def test_bodies_match_the_queries_and_the_page_limits():
    body = products_body(channel="c", first=25, variants=100, after=None, since=None)
    assert body["query"] == compact(PRODUCTS_QUERY) and "\n" not in body["query"]
    assert body["variables"]["where"] == {}
    assert "where: $where" in body["query"] and "LAST_MODIFIED_AT" in body["query"]
    assert "quantityAvailable" in body["query"] and "productVariants(first: $variants)" in body["query"]
    orders = orders_body(first=100, after="abc", created_gte="a", created_lte="b", since="s")
    assert orders["query"] == compact(ORDERS_QUERY)
    assert orders["variables"] == {
        "first": 100,
        "after": "abc",
        "where": {"createdAt": {"gte": "a", "lte": "b"}, "updatedAt": {"gte": "s"}},
    }
    for field in ("products_page_size", "variants_per_product", "orders_page_size"):
        with pytest.raises(ValueError):
            SaleorResource(**{field: 101})  # Saleor's GRAPHQL_PAGINATION_LIMIT is 100


def test_the_app_token_is_sent_but_never_part_of_a_match(tmp_path: Path):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(
            200, json={"data": {"products": {"edges": [], "pageInfo": {"hasNextPage": False}}}}
        )

    resource = SaleorResource(app_token="sk-test", token_host="coreldove-edge.saleor.cloud", min_interval_s=0)
    client = resource.client(EDGE)
    assert client.headers["Authorization"] == "Bearer sk-test"
    client._transport = httpx.MockTransport(handler)
    pages = list(resource.pages(client, EDGE, "products", products_of(resource)))
    assert seen == ["Bearer sk-test"] and pages[0].nodes == []
    # replay answers the same request with or without the token (the recording has none)
    other = SaleorResource(app_token="sk-other", token_host="CorelDove-Edge.saleor.cloud", min_interval_s=0)
    replayed, _ = collect(other, EDGE, "orders",
                          orders_of(SaleorResource(), date(2026, 11, 10)))  # fmt: skip
    assert len(replayed[0].nodes) == 3


def test_the_app_token_goes_only_to_its_own_host():
    # A tenant's saleor_url is a setting: naming another host must not earn it the token.
    resource = SaleorResource(app_token="sk-test", token_host="coreldove.saleor.cloud")
    assert resource.client("https://coreldove.saleor.cloud/graphql/").headers["Authorization"]
    for url in ("https://attacker.example/graphql/", "http://127.0.0.1:8000/graphql/", None):
        with pytest.raises(SaleorTokenScopeError, match="is not sent to"):
            resource.client(url)
    with pytest.raises(SaleorTokenScopeError, match=f"{ENV_SALEOR_TOKEN_HOST} is not set"):
        SaleorResource(app_token="sk-test").client("https://coreldove.saleor.cloud/graphql/")


def test_live_mode_without_a_token_names_the_variable():
    with pytest.raises(SaleorTokenMissingError, match=ENV_SALEOR_TOKEN):
        SaleorResource(mode="live").client()
    assert "Authorization" not in SaleorResource().client().headers  # replay needs none


def test_a_cursor_that_does_not_advance_stops_the_loop():
    answer = {"data": {"orders": {"edges": [], "pageInfo": {"hasNextPage": True, "endCursor": "same"}}}}
    resource = SaleorResource(min_interval_s=0)
    client = resource.client()
    client._transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    with pytest.raises(SourceError, match="already used; stopped instead of looping"):
        list(resource.pages(client, EDGE, "orders", orders_of(resource, date(2026, 11, 10))))


def response(status: int, **kwargs) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", EDGE), **kwargs)


@pytest.mark.parametrize(
    ("answer", "outcome", "fragment"),
    [
        (response(200, json=[1, 2]), Reject, "expected a JSON object, got list"),
        (response(200, json={"data": {"orders": None}}), Reject, "no data.orders with edges and pageInfo"),
        (response(200, json={"data": {"orders": {"edges": []}}}), Reject, "no data.orders"),
        (
            response(200, json={"data": None, "errors": [{"message": "Internal Server Error"}]}),
            Reject,
            "GraphQL errors in the answer: GraphQLError: Internal Server Error",
        ),
        (response(401, json={"errors": [{"message": "Invalid token"}]}), Reject, "check SALEOR_APP_TOKEN"),
        (response(429, headers={"Retry-After": "7"}, text="slow down"), Retry, "HTTP 429"),
        (response(502, text="<html>bad gateway</html>"), Retry, "HTTP 502"),
        (response(413, text="too large"), Reject, "HTTP 413 from saleor"),
    ],
)
def test_classifier(answer, outcome, fragment):
    with pytest.raises(outcome, match=fragment) as caught:
        classify(answer, "orders")
    if outcome is Retry and answer.status_code == 429:
        assert caught.value.retry_after_s == 7.0


def test_permission_message_names_every_missing_permission():
    errors = [
        {
            "message": "To access this path, you need one of the following permissions: "
            "MANAGE_ORDERS, MANAGE_USERS",
            "extensions": {"exception": {"code": "PermissionDenied"}},
        }
    ]
    message = graphql_error(errors, "orders")
    assert "lacks MANAGE_ORDERS or MANAGE_USERS" in message
    assert graphql_error("nonsense", "orders").startswith("malformed `errors`")


def test_rate_slots_are_per_saleor_environment():
    assert SaleorResource.rate_key(CORELDOVE) == "saleor:coreldove.saleor.cloud"
    assert SaleorResource.rate_key(CORELDOVE) != SaleorResource.rate_key(EDGE)
    assert SaleorResource().min_interval_s == 0.5  # 120 requests/minute, the sandbox policy
