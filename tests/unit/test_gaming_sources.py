"""The gaming source clients, driven through their real httpx clients and replayed answers: the
recordings in fixtures/, or recordings written to a temporary folder for answers the shared
fixtures do not hold (a second 401, a Steam block). Waits are recorded instead of slept."""

import json
import re
import time

import httpx
import pytest

from orchestration.errors import PlatformError
from orchestration.gaming_sources import (
    IgdbResource,
    OpenCriticResource,
    SteamStoreResource,
    _classify_igdb,
    _classify_token,
    clear_token_cache,
)
from orchestration.replay import ReplayTransport
from orchestration.sources import Attempt, Reject, Retry, SourceError

IGDB_GAMES = "https://api.igdb.com/v4/games"
TOKEN_URL = "https://id.twitch.tv/oauth2/token"
STEAM = "https://store.steampowered.com"
OPENCRITIC = "https://opencritic-api.p.rapidapi.com"


@pytest.fixture(autouse=True)
def fresh_tokens():
    clear_token_cache()
    yield
    clear_token_cache()


def quiet(resource):
    waits: list[float] = []
    object.__setattr__(resource, "_sleep", waits.append)
    return waits


def sent(resource):
    """A client of `resource` that also keeps every request it sends."""
    requests: list[httpx.Request] = []
    return resource.http_client(event_hooks={"request": [requests.append]}), requests


def record(folder, name, request, *responses):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"request": request, "responses": list(responses)}))


def token_recording(folder, *tokens, expires_in=5183942):
    request = {
        "method": "POST",
        "url": TOKEN_URL,
        "params": {"client_id": "replay", "grant_type": "client_credentials"},
    }
    answers = [
        {"status": 200, "json": {"access_token": t, "expires_in": expires_in, "token_type": "bearer"}}
        for t in tokens
    ]
    record(folder / "igdb", "token", request, *answers)


def igdb_recording(folder, limit, offset, *responses):
    request = {"method": "POST", "url": IGDB_GAMES, "body": IgdbResource.games_query(limit, offset)}
    record(folder / "igdb", f"games_{limit}_{offset}", request, *responses)


def statuses(attempts):
    return [(a.source, a.status) for a in attempts]


# --- IGDB and the Twitch token -----------------------------------------------------------------------


def test_one_token_serves_every_page_and_is_never_stored_in_clear():
    igdb = IgdbResource(page_size=4)
    client, requests = sent(igdb)
    attempts: list[Attempt] = []
    first = igdb.games_page(client, 4, 0, attempts=attempts)
    # the recording answers 401 first: the cached token is refused, a new one is minted
    assert [g["name"] for g in first][:2] == ["Elden Ring", "Forza Horizon 4"]
    second = igdb.games_page(client, 4, 4, attempts=attempts)
    assert len(second) == 4
    assert statuses(attempts) == [("twitch", 200), ("igdb", 401), ("twitch", 200), ("igdb", 200),
                                  ("igdb", 429), ("igdb", 200)]  # fmt: skip
    games = [r for r in requests if r.url.path == "/v4/games"]
    bearers = [r.headers["Authorization"] for r in games]
    # the retry after the 401 carries the fresh token, and later pages keep using it
    assert bearers[0] != bearers[1] and bearers[1] == bearers[2] == bearers[3]
    assert all(
        r.headers["Client-ID"] == "replay" and r.headers["Content-Type"] == "text/plain" for r in games
    )
    tokens = [json.loads(a.body) for a in attempts if a.source == "twitch"]
    assert all(t["access_token"] == "[redacted]" for t in tokens)
    assert all("client_secret" not in a.request for a in attempts)


def test_the_token_is_cached_until_shortly_before_it_expires(tmp_path):
    token_recording(tmp_path, "first", "second", "third")
    page = [{"id": 1, "name": "A"}]
    igdb_recording(tmp_path, 1, 0, {"status": 200, "json": page})
    cached = IgdbResource(fixtures_dir=str(tmp_path), page_size=1)
    client, requests = sent(cached)
    for _ in range(3):
        assert cached.games_page(client, 1, 0, attempts=[]) == page
    assert [r.url.host for r in requests].count("id.twitch.tv") == 1
    # a margin longer than the token's life: every request mints a new one
    clear_token_cache()
    expiring = IgdbResource(fixtures_dir=str(tmp_path), page_size=1, token_margin_s=5183943)
    client, requests = sent(expiring)
    for _ in range(2):
        expiring.games_page(client, 1, 0, attempts=[])
    assert [r.url.host for r in requests].count("id.twitch.tv") == 2


def test_a_second_401_names_the_credentials(tmp_path):
    token_recording(tmp_path, "a", "b")
    unauthorized = {"status": 401, "json": {"message": "Authorization Failure. Have you tried:"}}
    igdb_recording(tmp_path, 1, 0, unauthorized, unauthorized)
    igdb = IgdbResource(fixtures_dir=str(tmp_path))
    attempts: list[Attempt] = []
    with pytest.raises(SourceError) as caught:
        igdb.games_page(igdb.http_client(), 1, 0, attempts=attempts)
    error = caught.value
    assert "freshly minted token was refused too" in str(
        error
    ) and "IGDB_CLIENT_ID and IGDB_CLIENT_SECRET" in str(error)
    assert error.retryable is False and error.attempts is attempts
    assert statuses(attempts) == [("twitch", 200), ("igdb", 401), ("twitch", 200), ("igdb", 401)]


def test_refused_client_credentials_fail_at_once_naming_them(tmp_path):
    request = {
        "method": "POST",
        "url": TOKEN_URL,
        "params": {"client_id": "replay", "grant_type": "client_credentials"},
    }
    record(
        tmp_path / "igdb",
        "token",
        request,
        {"status": 400, "json": {"status": 400, "message": "invalid client secret"}},
    )
    igdb = IgdbResource(fixtures_dir=str(tmp_path))
    attempts: list[Attempt] = []
    with pytest.raises(SourceError) as caught:
        igdb.games_page(igdb.http_client(), 1, 0, attempts=attempts)
    assert str(caught.value).startswith(
        "twitch: Twitch refused the client credentials (HTTP 400: invalid client secret)"
    )
    assert "IGDB_CLIENT_ID" in str(caught.value) and statuses(attempts) == [("twitch", 400)]


def test_igdb_429_backs_off_without_retry_after():
    igdb = IgdbResource(page_size=4, backoff_s=3.0)
    waits = quiet(igdb)
    attempts: list[Attempt] = []
    igdb.games_page(igdb.http_client(), 4, 4, attempts=attempts)
    assert ("igdb", 429) in statuses(attempts) and waits == [3.0]


def test_live_mode_needs_credentials_and_keeps_the_secret_out_of_logs():
    with pytest.raises(PlatformError, match="IGDB_CLIENT_ID and IGDB_CLIENT_SECRET"):
        IgdbResource(mode="live").credentials()
    secret = "s3cr3t-value"
    igdb = IgdbResource(mode="live", client_id="cid", client_secret=secret, max_attempts=1)
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503, text="down")))
    attempts: list[Attempt] = []
    with pytest.raises(SourceError) as caught:
        igdb.token(client, attempts)
    assert secret not in str(caught.value) and all(secret not in a.request for a in attempts)
    assert "client_id=cid" in attempts[0].request


@pytest.mark.parametrize(
    ("answer", "outcome", "fragment"),
    [
        (httpx.Response(200, json={"count": 31}), Reject, "HTTP 200 with a dict, not an array"),
        (httpx.Response(200, text="[{"), Reject, "malformed response body from igdb"),
        (
            httpx.Response(
                400, json=[{"title": "Syntax Error", "status": 400, "cause": "Expecting a STRING"}]
            ),
            Reject,
            "HTTP 400 Syntax Error: Expecting a STRING",
        ),  # fmt: skip
        (
            httpx.Response(403, json=[{"title": "Forbidden", "cause": "not available in your API tier"}]),
            Reject,
            "not available in your API tier",
        ),  # fmt: skip
        (httpx.Response(429, json={"message": "Too Many Requests"}), Retry, "HTTP 429 Too Many Requests"),
        (httpx.Response(408, json=[{"title": "Request Timeout"}]), Retry, "HTTP 408"),
        (httpx.Response(500, json=[{"title": "Internal server error"}]), Retry, "HTTP 500"),
    ],
)
def test_igdb_classifier(answer, outcome, fragment):
    answer.request = httpx.Request("POST", IGDB_GAMES)
    with pytest.raises(outcome, match=re.escape(fragment)) as caught:
        _classify_igdb(answer)
    if outcome is Retry:
        assert caught.value.retry_after_s is None  # IGDB sends no Retry-After: back off


def test_token_classifier():
    ok = httpx.Response(200, json={"access_token": "t", "expires_in": 60, "token_type": "bearer"})
    assert _classify_token(ok) == ("t", 60.0)
    with pytest.raises(Reject, match="malformed token answer"):
        _classify_token(httpx.Response(200, json={"token_type": "bearer"}))
    with pytest.raises(Reject, match="invalid client"):
        _classify_token(httpx.Response(403, json={"status": 403, "message": "invalid client"}))
    with pytest.raises(Retry):
        _classify_token(httpx.Response(502, text="bad gateway"))


PLANS = [
    (50, [(50, 0)]),
    (500, [(500, 0)]),
    (1000, [(500, 0), (500, 500)]),
    (1001, [(500, 0), (500, 500), (1, 1000)]),
]


@pytest.mark.parametrize(("count", "pages"), PLANS)
def test_igdb_request_plan(count, pages):
    assert IgdbResource().pages(count) == pages
    assert IgdbResource(page_size=4).pages(9) == [(4, 0), (4, 4), (1, 8)]


def test_live_defaults_follow_the_published_limits():
    assert IgdbResource().min_interval_s == 0.25  # 4 requests/s
    assert IgdbResource().page_size == 500  # IGDB's maximum
    assert SteamStoreResource().min_interval_s == 1.5  # 200 requests per 5 minutes
    assert SteamStoreResource().throttle_pause_s >= 60  # minutes, not seconds, after a 429
    oc = OpenCriticResource()
    assert (oc.search_daily_limit, oc.daily_limit) == (25, 200)


# --- Steam -------------------------------------------------------------------------------------------


def test_steam_appdetails_success_false_is_an_answer():
    steam = SteamStoreResource()
    attempts: list[Attempt] = []
    body = steam.appdetails(steam.http_client(), 1293830, "us", attempts=attempts)
    assert body == {"1293830": {"success": False}} and statuses(attempts) == [("steam", 200)]


def test_steam_429_pauses_then_retries():
    steam = SteamStoreResource(throttle_pause_s=75.0)
    waits = quiet(steam)
    attempts: list[Attempt] = []
    body = steam.appdetails(steam.http_client(), 1245620, "gb", attempts=attempts)
    assert body["1245620"]["data"]["price_overview"]["currency"] == "GBP"
    assert statuses(attempts) == [("steam", 429), ("steam", 200)] and waits == [75.0]
    # a pause longer than the run accepts fails at once (the next refresh retries)
    impatient = SteamStoreResource(throttle_pause_s=600.0, max_wait_s=120)
    quiet(impatient)
    with pytest.raises(SourceError, match="asks to wait 600 s") as caught:
        impatient.appdetails(impatient.http_client(), 1245620, "gb", attempts=[])
    assert caught.value.retryable


def test_steam_block_malformed_and_misused_answers(tmp_path):
    url = f"{STEAM}/api/appdetails"
    record(tmp_path / "steam", "blocked", {"url": url, "params": {"appids": "1", "cc": "us", "l": "english"}},
           {"status": 403, "text": "<html>Access Denied</html>"})  # fmt: skip
    record(tmp_path / "steam", "null", {"url": url, "params": {"appids": "2", "cc": "us", "l": "english"}},
           {"status": 200, "json": None})  # fmt: skip
    record(tmp_path / "steam", "other", {"url": url, "params": {"appids": "3", "cc": "us", "l": "english"}},
           {"status": 200, "json": {"4": {"success": True}}})  # fmt: skip
    steam = SteamStoreResource(fixtures_dir=str(tmp_path))
    waits = quiet(steam)
    for appid, fragment in [(1, "Steam blocked this IP (HTTP 403)"), (2, "malformed answer from steam"),
                            (3, "no entry for app 3")]:  # fmt: skip
        attempts: list[Attempt] = []
        with pytest.raises(SourceError, match=re.escape(fragment)) as caught:
            steam.appdetails(steam.http_client(), appid, "us", attempts=attempts)
        assert not caught.value.retryable and len(attempts) == 1
    assert waits == []


def test_steam_prices_are_batched_and_reviews_summarised():
    steam = SteamStoreResource()
    batches = SteamStoreResource(price_batch_size=2).price_batches([570, 730, 220, 730, 620])
    assert batches == [[220, 570], [620, 730]]
    assert len(steam.price_batches(range(1, 251))) == 3
    gb = [1245620, 1293830, 730, 620, 570, 271590, 1145360]
    attempts: list[Attempt] = []
    body = SteamStoreResource(throttle_pause_s=0).prices(
        steam.http_client(), sorted(gb), "gb", attempts=attempts
    )
    assert set(body) == {str(a) for a in gb} and body["730"] == {"success": True, "data": []}
    assert body["1293830"] == {"success": False}
    reviews = steam.reviews(steam.http_client(), 292030, attempts=[])
    assert reviews["query_summary"]["review_score"] == 9


# --- OpenCritic --------------------------------------------------------------------------------------


def test_opencritic_headers_key_and_quota():
    secret = "rapid-key-123"
    oc = OpenCriticResource(api_key=secret)
    client, requests = sent(oc)
    attempts: list[Attempt] = []
    quota: dict[str, str] = {}
    hits = oc.search(client, "Elden Ring", attempts=attempts, quota=quota)
    assert hits[0] == {"id": 12090, "name": "Elden Ring", "dist": 0.0, "relation": "game"}
    detail = oc.game(client, 12090, attempts=attempts, quota=quota)
    assert detail["topCriticScore"] == 95.1 and detail["Platforms"]
    assert requests[0].headers["X-RapidAPI-Key"] == secret
    assert requests[0].headers["X-RapidAPI-Host"] == "opencritic-api.p.rapidapi.com"
    assert all(secret not in a.request for a in attempts)
    assert quota["x-ratelimit-requests-limit"] == "200" and quota["x-ratelimit-requests-remaining"].isdigit()


def test_opencritic_refusals_and_limits(tmp_path):
    url = f"{OPENCRITIC}/game/search"
    folder = tmp_path / "opencritic"
    refused = {"status": 403, "json": {"message": "You are not subscribed to this API."}}
    record(folder, "403", {"url": url, "params": {"criteria": "A"}}, refused)

    def limited(reset):
        return {
            "status": 429,
            "headers": {"X-RateLimit-Requests-Reset": reset},
            "json": {"message": "Too many"},
        }

    record(folder, "429", {"url": url, "params": {"criteria": "B"}}, limited("43071"))
    record(
        folder, "429s", {"url": url, "params": {"criteria": "C"}}, limited("2"), {"status": 200, "json": []}
    )
    oc = OpenCriticResource(fixtures_dir=str(tmp_path))
    waits = quiet(oc)
    with pytest.raises(SourceError, match="You are not subscribed to this API.") as caught:
        oc.search(oc.http_client(), "A", attempts=[])
    assert "OPENCRITIC_RAPIDAPI_KEY" in str(caught.value) and caught.value.attempts[-1].status == 403
    # a quota that resets in 12 hours is not waited for
    with pytest.raises(SourceError, match="asks to wait 43071 s"):
        oc.search(oc.http_client(), "B", attempts=[])
    assert oc.search(oc.http_client(), "C", attempts=[]) == [] and waits == [2.0]


@pytest.mark.parametrize(
    ("mode", "api_key", "enabled"),
    [("replay", None, True), ("live", None, False), ("live", "", False), ("live", "k", True)],
)
def test_opencritic_enabled(mode, api_key, enabled):
    assert OpenCriticResource(mode=mode, api_key=api_key).enabled is enabled


def test_replay_serves_the_gaming_fixtures_in_order():
    transport = ReplayTransport(IgdbResource().fixtures_dir + "/igdb")
    client = httpx.Client(transport=transport)
    body = IgdbResource.games_query(4, 0)
    statuses_seen = [client.post(IGDB_GAMES, content=body).status_code for _ in range(3)]
    assert statuses_seen == [401, 200, 200]  # the last recorded answer repeats
    started = time.perf_counter()
    assert client.post(IGDB_GAMES, content=IgdbResource.games_query(50, 0)).json()[0]["id"] == 1942
    assert time.perf_counter() - started < 1
