"""The directory's source clients, driven through their real httpx clients and the recorded
answers in `fixtures/` (replay mode). Waits are recorded instead of slept, so nothing here
touches the network or the clock. The few in-process responses stand in for answers the
fixtures do not hold (a bad key, a spent quota, a network failure)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import httpx
import pytest

from ml.directory.listings import build_listings, osm_refs_of
from orchestration.directory_sources import (
    LocationIQResource,
    NominatimResource,
    OverpassResource,
    _classify_locationiq,
    _classify_nominatim,
    _classify_overpass,
    details_query,
)
from orchestration.sources import (
    USER_AGENT,
    Attempt,
    HttpSourceResource,
    Reject,
    Retry,
    SourceError,
    describe,
    json_body,
    retry_after_seconds,
)

COFFEE = "coffee in Austin, TX"
BAR = "bar in Austin, TX"
FLORIST = "florist in Austin, TX"
BAKERY = "bakery in Reykjavík, Iceland"
RESTAURANTS = "restaurants in Austin, TX"
PHARMACY = "pharmacy in Austin, TX"
DENTIST = "dentist in Portland, OR"
OVERPASS_URL = "https://overpass-api.de/api/interpreter"
LOCATIONIQ_URL = "https://us1.locationiq.com/v1/search"


def quiet(resource: HttpSourceResource) -> list[float]:
    """Record the resource's waits instead of sleeping them."""
    waits: list[float] = []
    try:
        resource._sleep = waits.append
    except (AttributeError, TypeError, ValueError):
        object.__setattr__(resource, "_sleep", waits.append)
    return waits


def nominatim(**config) -> tuple[NominatimResource, list[float]]:
    resource = NominatimResource(min_interval_s=0, **config)
    return resource, quiet(resource)


def locationiq(**config) -> tuple[LocationIQResource, list[float]]:
    resource = LocationIQResource(min_interval_s=0, **config)
    return resource, quiet(resource)


def overpass(**config) -> tuple[OverpassResource, list[float]]:
    resource = OverpassResource(**config)
    return resource, quiet(resource)


def search_refs(text: str, with_locationiq: bool = False) -> list[tuple[str, int]]:
    """The OSM objects of a search, built from the recorded answers as the asset does."""
    primary, _ = nominatim()
    places = primary.search(primary.http_client(), text)
    fallback = None
    if with_locationiq:
        secondary, _ = locationiq()
        fallback = secondary.search(secondary.http_client(), text)
    listings, _ = build_listings(places, fallback)
    return osm_refs_of(listings)


def response(status: int, *, url: str = LOCATIONIQ_URL, **kwargs) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", url), **kwargs)


def statuses(attempts: list[Attempt]) -> list[int]:
    return [a.status for a in attempts]


# --- retries, Retry-After and max_wait_s through Nominatim ----------------------------------------


def test_replay_is_the_default_mode_and_waits_really_sleep_by_default():
    resource = NominatimResource()
    assert resource.mode == "replay"
    assert resource._sleep is time.sleep


def test_429_with_retry_after_then_success_waits_what_the_api_asked():
    resource, waits = nominatim()
    attempts: list[Attempt] = []
    slots: list[int] = []
    places = resource.search(
        resource.http_client(), COFFEE, attempts=attempts, before_attempt=lambda: slots.append(1)
    )
    assert [p["name"] for p in places] == ["Café Olé Congress", "Hyde Park Roasters"]
    assert statuses(attempts) == [429, 200]
    assert [a.attempt for a in attempts] == [1, 2]
    assert all(a.source == "nominatim" for a in attempts)
    assert "Too many requests" in attempts[0].body  # the raw body is kept as evidence
    assert waits == [1.0]  # Retry-After: 1, not the backoff
    assert len(slots) == 2  # the rate slot is taken before every attempt


@pytest.mark.parametrize("max_attempts", [4, 2])
def test_always_429_gives_up_after_max_attempts(max_attempts):
    resource, waits = nominatim(max_attempts=max_attempts, backoff_s=7.0)
    attempts: list[Attempt] = []
    with pytest.raises(SourceError) as caught:
        resource.search(resource.http_client(), BAR, attempts=attempts)
    error = caught.value
    assert error.retryable is True
    assert error.source == "nominatim"
    assert str(error).startswith("nominatim: HTTP 429")
    assert f"gave up after {max_attempts} attempts" in str(error)
    assert statuses(error.attempts) == [429] * max_attempts
    assert error.attempts is attempts  # the caller's list holds the evidence too
    assert waits == [1.0] * (max_attempts - 1)  # Retry-After wins over backoff_s, no wait after the last


def test_retry_after_longer_than_max_wait_fails_at_once():
    resource, waits = nominatim(max_wait_s=0.5)
    with pytest.raises(SourceError) as caught:
        resource.search(resource.http_client(), BAR)
    error = caught.value
    assert "asks to wait 1 s" in str(error)
    assert "more than this run's max_wait_s=0.5" in str(error)
    assert error.retryable is True
    assert statuses(error.attempts) == [429]
    assert waits == []


def test_malformed_body_is_rejected_after_one_attempt_with_a_snippet():
    resource, waits = nominatim()
    with pytest.raises(SourceError) as caught:
        resource.search(resource.http_client(), FLORIST)
    error = caught.value
    assert error.retryable is False
    assert len(error.attempts) == 1 and error.attempts[0].status == 200
    assert "malformed" in str(error)
    assert '[{"place_id":324399656' in str(error)  # the start of what came instead of JSON
    assert waits == []


def test_empty_nominatim_answer_is_an_empty_list():
    resource, waits = nominatim()
    attempts: list[Attempt] = []
    assert resource.search(resource.http_client(), BAKERY, attempts=attempts) == []
    assert statuses(attempts) == [200]
    assert waits == []


@pytest.mark.parametrize(
    ("answer", "outcome", "fragment"),
    [
        (response(200, json={"error": "Unable to parse query"}), Reject, "Nominatim error: Unable to parse"),
        (response(200, json={"places": []}), Reject, "expected an array, got dict"),
        (response(403, text="<html>blocked</html>"), Reject, "usage policy"),
        (response(404, json={"error": "not found"}), Reject, "HTTP 404 from nominatim"),
        (response(503, headers={"Retry-After": "3"}, text="busy"), Retry, "HTTP 503"),
    ],
)
def test_nominatim_classifier(answer, outcome, fragment):
    with pytest.raises(outcome, match=fragment) as caught:
        _classify_nominatim(answer)
    if outcome is Retry:
        assert caught.value.retry_after_s == 3.0


# --- LocationIQ ------------------------------------------------------------------------------------


def test_locationiq_rate_limited_second_is_retried():
    resource, waits = locationiq()
    attempts: list[Attempt] = []
    places = resource.search(resource.http_client(), COFFEE, attempts=attempts)
    assert len(places) == 8
    assert statuses(attempts) == [429, 200]
    assert "Rate Limited Second" in attempts[0].body
    assert waits == [1.0]


def test_locationiq_unable_to_geocode_is_no_results():
    resource, waits = locationiq()
    attempts: list[Attempt] = []
    assert resource.search(resource.http_client(), BAKERY, attempts=attempts) == []
    assert statuses(attempts) == [404]
    assert waits == []


@pytest.mark.parametrize("status", [401, 403])
def test_locationiq_bad_key_is_rejected_naming_the_setting(status):
    with pytest.raises(Reject, match="LOCATIONIQ_API_KEY") as caught:
        _classify_locationiq(response(status, json={"error": "Invalid key"}))
    assert "Invalid key" in str(caught.value)


def test_locationiq_daily_quota_is_rejected_not_retried():
    with pytest.raises(Reject, match="Rate Limited Day"):
        _classify_locationiq(response(429, json={"error": "Rate Limited Day"}))
    # and through fetch: one attempt, no wait, not retryable
    resource, waits = locationiq(api_key="k")
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(429, json={"error": "Rate Limited Day"}))
    )
    with pytest.raises(SourceError) as caught:
        resource.search(client, COFFEE)
    assert caught.value.retryable is False
    assert statuses(caught.value.attempts) == [429]
    assert waits == []


def test_locationiq_classifier_other_answers():
    assert _classify_locationiq(response(200, json=[{"osm_id": "1"}])) == [{"osm_id": "1"}]
    with pytest.raises(Retry) as caught:
        _classify_locationiq(response(429, json={"error": "Rate Limited Second"}))
    assert caught.value.retry_after_s == 1.0
    with pytest.raises(Retry):
        _classify_locationiq(response(502, text="bad gateway"))
    with pytest.raises(Reject, match="expected an array"):
        _classify_locationiq(response(200, json={"error": "x"}))
    with pytest.raises(Reject, match="HTTP 404 from locationiq"):
        _classify_locationiq(response(404, json={"error": "Not found"}))


@pytest.mark.parametrize(
    ("mode", "api_key", "enabled"),
    [("replay", None, True), ("live", None, False), ("live", "", False), ("live", "k", True)],
)
def test_locationiq_enabled(mode, api_key, enabled):
    assert LocationIQResource(mode=mode, api_key=api_key).enabled is enabled


def test_locationiq_key_is_sent_but_never_recorded():
    secret = "pk.0123456789abcdef"
    resource, _ = locationiq(api_key=secret)
    sent: list[httpx.Request] = []
    client = resource.http_client(event_hooks={"request": [sent.append]})
    attempts: list[Attempt] = []
    resource.search(client, COFFEE, attempts=attempts)
    assert len(sent) == 2
    assert all(parse_qs(r.url.query.decode())["key"] == [secret] for r in sent)
    assert attempts and all(secret not in a.request and "key=" not in a.request for a in attempts)
    assert all(a.request.startswith(f"GET {LOCATIONIQ_URL}?q=coffee") for a in attempts)


def test_locationiq_key_is_not_in_the_error_message():
    secret = "pk.0123456789abcdef"
    resource, _ = locationiq(api_key=secret)
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(401, json={"error": "Invalid key"}))
    )
    with pytest.raises(SourceError) as caught:
        resource.search(client, COFFEE)
    assert "LOCATIONIQ_API_KEY" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in caught.value.attempts[0].request


@pytest.mark.parametrize(
    "url",
    [
        "https://us1.locationiq.com/v1/search?key=s3cret&q=coffee",
        "https://us1.locationiq.com/v1/search?q=coffee&key=s3cret",
        "https://api.example/v1?api_key=s3cret&q=coffee",
    ],
)
def test_describe_never_shows_the_key(url):
    text = describe(httpx.Request("GET", url))
    assert text.startswith("GET https://")
    assert "s3cret" not in text and "key=" not in text
    assert "q=coffee" in text


# --- Overpass ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backoff_s", [2.0, 0.25])
def test_overpass_504_then_200_is_retried_after_the_backoff(backoff_s):
    refs = search_refs(COFFEE, with_locationiq=True)
    assert len(refs) == 8
    resource, waits = overpass(backoff_s=backoff_s)
    attempts: list[Attempt] = []
    answers = resource.details(resource.http_client(), refs, attempts=attempts)
    assert len(answers) == 1 and len(answers[0]["elements"]) == 8
    assert statuses(attempts) == [504, 200]
    assert waits == [backoff_s]  # Overpass sends no Retry-After


def test_overpass_429_html_then_200_is_retried():
    resource, waits = overpass()
    attempts: list[Attempt] = []
    answers = resource.details(resource.http_client(), search_refs(DENTIST), attempts=attempts)
    assert len(answers[0]["elements"]) == 11
    assert statuses(attempts) == [429, 200]
    assert waits == [2.0]


@pytest.mark.parametrize(("backoff_s", "max_attempts"), [(2.0, 4), (0.5, 3)])
def test_overpass_runtime_error_remark_is_retried_with_doubling_backoff_then_fails(backoff_s, max_attempts):
    refs = search_refs(PHARMACY, with_locationiq=True)
    resource, waits = overpass(backoff_s=backoff_s, max_attempts=max_attempts)
    with pytest.raises(SourceError) as caught:
        resource.details(resource.http_client(), refs)
    error = caught.value
    assert error.retryable is True
    assert statuses(error.attempts) == [200] * max_attempts  # every answer was a 200, all incomplete
    assert 'runtime error: Query timed out in "query" at line 1 after 61 seconds.' in str(error)
    assert f"gave up after {max_attempts} attempts" in str(error)
    assert waits == [backoff_s * 2**n for n in range(max_attempts - 1)]


def test_backoff_is_capped_by_max_wait():
    refs = search_refs(PHARMACY)
    resource, waits = overpass(backoff_s=2.0, max_attempts=5, max_wait_s=5.0)
    with pytest.raises(SourceError, match="gave up after 5 attempts"):
        resource.details(resource.http_client(), refs)
    assert waits == [2.0, 4.0, 5.0, 5.0]


def test_overpass_informational_remark_is_accepted():
    body = {"elements": [{"type": "node", "id": 1}], "remark": "runtime remark: Timeout is 60 s."}
    assert _classify_overpass(response(200, url=OVERPASS_URL, json=body)) == body


@pytest.mark.parametrize(
    ("answer", "outcome", "fragment"),
    [
        (
            response(
                400, url=OVERPASS_URL, text="<html><body><p>Error: line 1: parse error</p></body></html>"
            ),
            Reject,
            "Overpass rejected the query: <html><body><p>Error: line 1: parse error",
        ),
        (response(200, url=OVERPASS_URL, json={"remark": "x"}), Reject, "no `elements` array"),
        (response(200, url=OVERPASS_URL, text="<osm>xml</osm>"), Reject, "malformed response body"),
        (
            response(200, url=OVERPASS_URL, json={"elements": [], "remark": "runtime error: x"}),
            Retry,
            "Overpass runtime error: x",
        ),
        (response(429, url=OVERPASS_URL, text="rate_limited"), Retry, "HTTP 429"),
        (response(404, url=OVERPASS_URL, text="no"), Reject, "HTTP 404 from overpass"),
    ],
)
def test_overpass_classifier(answer, outcome, fragment):
    with pytest.raises(outcome, match=re.escape(fragment)):
        _classify_overpass(answer)


def test_overpass_400_is_rejected_after_one_attempt():
    resource, waits = overpass()
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(400, text="<html>parse error</html>"))
    )
    with pytest.raises(SourceError) as caught:
        resource.details(client, [("node", 1)])
    assert caught.value.retryable is False
    assert statuses(caught.value.attempts) == [400]
    assert waits == []


# --- Overpass queries and batches ------------------------------------------------------------------


def test_details_query_is_canonical():
    refs = [("way", 20), ("relation", 7), ("node", 3), ("node", 1), ("way", 5), ("node", 3)]
    query = details_query(refs)
    assert query == "[out:json][timeout:60];(node(id:1,3);way(id:5,20);relation(id:7););out center tags;"
    assert details_query(list(reversed(refs))) == query
    assert details_query(sorted(refs)) == query
    assert details_query([("node", "3"), ("node", 3)], timeout_s=25) == (
        "[out:json][timeout:25];(node(id:3););out center tags;"
    )
    assert "way" not in details_query([("node", 1)])


@pytest.mark.parametrize(
    ("n_refs", "batch_size", "sizes"), [(14, 5, [5, 5, 4]), (14, 100, [14]), (3, 1, [1, 1, 1])]
)
def test_batches_split_by_batch_size(n_refs, batch_size, sizes):
    refs = [("way", 100 + i) for i in range(n_refs // 2)] + [("node", i) for i in range(n_refs - n_refs // 2)]
    batches = OverpassResource(batch_size=batch_size).batches(refs + refs[:2])  # duplicates count once
    assert [len(b) for b in batches] == sizes
    flat = [ref for batch in batches for ref in batch]
    assert flat == sorted(set(refs), key=lambda ref: (ref[0] != "node", ref[1]))  # nodes first, by id
    assert OverpassResource(batch_size=batch_size).batches(list(reversed(refs))) == batches


def test_one_overpass_request_per_search_and_one_per_object_before_batching():
    refs = search_refs(RESTAURANTS)
    assert len(refs) == 14
    # batched: the one recorded query answers all of them
    resource, _ = overpass()
    attempts: list[Attempt] = []
    answers = resource.details(resource.http_client(), refs, attempts=attempts)
    assert len(attempts) == 1 and len(answers[0]["elements"]) == 13
    # batch_size=1 is what the API calls were before batching: one per object
    queries: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        queries.append(parse_qs(request.content.decode())["data"][0])
        return httpx.Response(200, json={"elements": []})

    unbatched, _ = overpass(batch_size=1)
    client = httpx.Client(transport=httpx.MockTransport(answer))
    assert len(unbatched.details(client, refs)) == len(refs)
    assert len(queries) == len(refs) == 14
    assert queries == [details_query(batch) for batch in unbatched.batches(refs)]


def test_no_refs_no_overpass_request():
    resource, _ = overpass()
    client = httpx.Client(transport=httpx.MockTransport(lambda request: pytest.fail("no request expected")))
    assert resource.details(client, []) == []


# --- the network failing -------------------------------------------------------------------------


@pytest.mark.parametrize("backoff_s", [1.0, 0.3])
def test_transport_errors_are_retried_with_exponential_backoff(backoff_s):
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= 2:
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(200, json=[{"name": "ok"}])

    resource, waits = nominatim(backoff_s=backoff_s, timeout_s=12)
    attempts: list[Attempt] = []
    client = httpx.Client(transport=httpx.MockTransport(flaky))
    assert resource.search(client, COFFEE, attempts=attempts) == [{"name": "ok"}]
    assert statuses(attempts) == [0, 0, 200]
    assert attempts[0].body == "timed out after 12 s"
    assert waits == [backoff_s, 2 * backoff_s]


def test_connection_errors_exhaust_attempts():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    resource, waits = nominatim(max_attempts=3, backoff_s=0.5)
    with pytest.raises(SourceError) as caught:
        resource.search(httpx.Client(transport=httpx.MockTransport(down)), COFFEE)
    assert caught.value.retryable is True
    assert "connection failed: connection refused" in str(caught.value)
    assert "gave up after 3 attempts" in str(caught.value)
    assert statuses(caught.value.attempts) == [0, 0, 0]
    assert waits == [0.5, 1.0]


# --- helpers -------------------------------------------------------------------------------------


def test_retry_after_seconds():
    def with_header(value: str | None) -> httpx.Response:
        return response(429, headers={} if value is None else {"Retry-After": value})

    assert retry_after_seconds(with_header("3")) == 3.0
    assert retry_after_seconds(with_header("1.5")) == 1.5
    assert retry_after_seconds(with_header("-4")) == 0.0
    assert retry_after_seconds(with_header(None)) is None
    assert retry_after_seconds(with_header("soon")) is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(with_header(future)) <= 30
    assert retry_after_seconds(with_header("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0


def test_json_body_quotes_the_start_of_a_bad_body():
    assert json_body(response(200, json={"a": 1}), "x") == {"a": 1}
    with pytest.raises(Reject, match=r"malformed response body from x \(HTTP 502\): '<html> <body>oops'"):
        json_body(response(502, text="<html>\n  <body>oops"), "x")
    long = "<" + "a" * 200
    with pytest.raises(Reject) as caught:
        json_body(response(200, text=long), "x")
    assert "a" * 79 in str(caught.value) and "a" * 80 not in str(caught.value)


@pytest.mark.parametrize("factory", [NominatimResource, LocationIQResource, OverpassResource])
def test_requests_carry_the_platform_user_agent(factory):
    client = factory().http_client()
    request = client.build_request("GET", "https://example.org/")
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("bizosaas-data-platform/")


def test_user_agent_is_on_the_sent_nominatim_request():
    resource, _ = nominatim()
    sent: list[httpx.Request] = []
    client = resource.http_client(event_hooks={"request": [sent.append]})
    resource.search(client, BAKERY)
    assert sent[0].headers["User-Agent"].startswith("bizosaas-data-platform/")


def test_a_resource_without_a_source_cannot_build_a_client():
    with pytest.raises(TypeError, match="must set `source`"):
        HttpSourceResource().http_client()
