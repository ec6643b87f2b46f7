"""ThrillRing's game sources: IGDB (the catalogue and Steam ids), the Steam store (prices and
user reviews) and OpenCritic (critic scores). Each is a thin resource that builds requests and
says what an answer means; retries live in `HttpSourceResource.fetch`, parsing in `ml.gaming`.
Rate slots and daily budgets are taken by the callers through `ApiLedger`, platform-wide.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
from pydantic import Field

from ml.gaming.steam import entry_for
from orchestration.errors import PlatformError
from orchestration.settings import ENV_IGDB_CLIENT_ID, ENV_IGDB_CLIENT_SECRET, ENV_OPENCRITIC_KEY
from orchestration.sources import (
    Attempt,
    HttpSourceResource,
    Reject,
    Retry,
    SourceError,
    json_body,
    retry_after_seconds,
    retry_on_status,
)

# Replay never sends credentials anywhere; these stand in for them (matching ignores secrets).
REPLAY_CREDENTIAL = "replay"
IGDB_CREDENTIALS = f"{ENV_IGDB_CLIENT_ID} and {ENV_IGDB_CLIENT_SECRET}"
MAX_IGDB_PAGE = 500


def _message(response: httpx.Response) -> str:
    """The human part of an error body: IGDB's `cause`/`title` arrays, `{"message": ...}`
    objects (Twitch, IGDB 401/429, RapidAPI), or the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:120].split())
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return ": ".join(str(first[k]) for k in ("title", "cause") if first.get(k))
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return str(body)[:120]


# --- IGDB (Twitch client credentials) -------------------------------------------------------------


class _Unauthorized(Exception):  # noqa: N818 - a signal from classify(): mint a new token
    pass


_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached Twitch token (tests; a rotated secret)."""
    with _tokens_lock:
        _tokens.clear()


def _classify_token(response: httpx.Response) -> tuple[str, float]:
    status = response.status_code
    if status == 200:
        body = json_body(response, "twitch")
        token, expires_in = (
            (body.get("access_token"), body.get("expires_in")) if isinstance(body, dict) else (None, None)
        )
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise Reject("malformed token answer from Twitch: no access_token/expires_in")
        return token, float(expires_in)
    if status in (400, 401, 403):
        raise Reject(
            f"Twitch refused the client credentials (HTTP {status}: {_message(response)}): "
            f"check {IGDB_CREDENTIALS}"
        )
    retry_on_status(response)
    raise Reject(f"HTTP {status} from Twitch's token endpoint: {_message(response)}")


def _classify_igdb(response: httpx.Response) -> list[dict]:
    status = response.status_code
    if status == 200:
        body = json_body(response, "igdb")
        if not isinstance(body, list):
            raise Reject(
                f"IGDB answered HTTP 200 with a {type(body).__name__}, not an array of games: "
                f"{str(body)[:120]}"
            )
        return body
    if status == 401:
        raise _Unauthorized(_message(response))
    if status == 429:
        # IGDB sends no Retry-After: back off exponentially.
        raise Retry(f"HTTP 429 {_message(response)}")
    if status == 408:
        raise Retry("HTTP 408 Request Timeout")
    if status in (400, 403, 413):
        raise Reject(f"IGDB rejected the query (HTTP {status} {_message(response)})")
    retry_on_status(response)
    raise Reject(f"HTTP {status} from igdb: {_message(response)}")


class IgdbResource(HttpSourceResource):
    """IGDB v4 `/games`, authenticated with a Twitch client-credentials token. The token is
    cached per client id until shortly before it expires, and minted again once when IGDB
    answers 401. IGDB allows 4 requests per second (callers take a shared rate slot)."""

    source = "igdb"
    client_id: str | None = Field(default=None, description=f"Twitch application id ({ENV_IGDB_CLIENT_ID}).")
    client_secret: str | None = Field(
        default=None, description=f"Twitch client secret ({ENV_IGDB_CLIENT_SECRET})."
    )
    base_url: str = Field(default="https://api.igdb.com/v4")
    token_url: str = Field(default="https://id.twitch.tv/oauth2/token")
    min_interval_s: float = Field(
        default=0.25, ge=0, description="Seconds between requests, platform-wide (4/s)."
    )
    page_size: int = Field(
        default=MAX_IGDB_PAGE, ge=1, le=MAX_IGDB_PAGE, description="Games per request (max 500)."
    )
    token_margin_s: float = Field(
        default=3600.0, ge=0, description="Mint a new token this long before expiry."
    )

    def credentials(self) -> tuple[str, str]:
        if self.mode == "replay":
            return REPLAY_CREDENTIAL, REPLAY_CREDENTIAL
        if not self.client_id or not self.client_secret:
            raise PlatformError(f"IGDB needs a Twitch application: set {IGDB_CREDENTIALS} (live mode)")
        return self.client_id, self.client_secret

    @staticmethod
    def games_query(limit: int, offset: int) -> str:
        """Popular main games (and remakes/remasters), most rated first."""
        return (
            "fields name, slug, first_release_date, updated_at, genres.name, platforms.name, "
            "total_rating, total_rating_count, external_games.uid, external_games.external_game_source, "
            "external_games.category; "
            "where version_parent = null & total_rating_count > 0 & game_type = (0, 8, 9); "
            f"sort total_rating_count desc; limit {limit}; offset {offset};"
        )

    def pages(self, count: int) -> list[tuple[int, int]]:
        """(limit, offset) of each request for the `count` most popular games."""
        return [(min(self.page_size, count - offset), offset) for offset in range(0, count, self.page_size)]

    def token(self, client: httpx.Client, attempts: list[Attempt], *, fresh: bool = False) -> str:
        client_id, secret = self.credentials()
        key = (self.token_url, f"{self.mode}:{client_id}:{self.fixtures_dir if self.mode != 'live' else ''}")
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not fresh and cached[1] > time.time():
                return cached[0]
            request = client.build_request(
                "POST",
                self.token_url,
                params={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
            )
            exchanges: list[Attempt] = []
            try:
                token, expires_in = self.fetch(client, request, _classify_token, attempts=exchanges)
            except SourceError as exc:
                raise SourceError(
                    str(exc).replace("igdb:", "twitch:", 1),
                    source="twitch",
                    attempts=attempts,
                    retryable=exc.retryable,
                ) from None
            finally:
                # Kept as evidence like every answer, but never with the token in it.
                attempts += [replace(a, source="twitch", body=_redact_token(a.body)) for a in exchanges]
            _tokens[key] = (token, time.time() + max(0.0, expires_in - self.token_margin_s))
            return token

    def games_page(
        self,
        client: httpx.Client,
        limit: int,
        offset: int,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
    ) -> list[dict]:
        client_id, _ = self.credentials()
        for fresh in (False, True):
            token = self.token(client, attempts, fresh=fresh)
            request = client.build_request(
                "POST",
                f"{self.base_url}/games",
                content=self.games_query(limit, offset).encode(),
                headers={
                    "Client-ID": client_id,
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json",
                    "Content-Type": "text/plain",
                },
            )
            try:
                return self.fetch(
                    client, request, _classify_igdb, before_attempt=before_attempt, attempts=attempts
                )
            except _Unauthorized as exc:
                if fresh:
                    raise SourceError(
                        f"igdb: a freshly minted token was refused too (HTTP 401 {exc}): "
                        f"check {IGDB_CREDENTIALS}",
                        source="igdb",
                        attempts=attempts,
                        retryable=False,
                    ) from None
        raise AssertionError("unreachable")


def _redact_token(body: str) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if isinstance(doc, dict) and "access_token" in doc:
        doc["access_token"] = "[redacted]"
        return json.dumps(doc)
    return body


# --- Steam store ---------------------------------------------------------------------------------


class SteamStoreResource(HttpSourceResource):
    """The Steam storefront: `appdetails` (one app per call for full data; many per call with
    `filters=price_overview`) and `appreviews` (the review summary). About 200 requests per
    5 minutes per IP are tolerated: callers space requests by `min_interval_s` platform-wide.
    A 429 pauses for minutes (Steam sends no Retry-After; ignoring it escalates to a 403 IP
    block), and a 403 stops the run."""

    source = "steam"
    base_url: str = Field(default="https://store.steampowered.com")
    min_interval_s: float = Field(
        default=1.5, ge=0, description="Seconds between requests, platform-wide (~200 per 5 minutes)."
    )
    throttle_pause_s: float = Field(
        default=90.0, ge=0, description="Pause after a 429 (no Retry-After); above max_wait_s the run stops."
    )
    max_wait_s: float = Field(default=300.0, description="Longest single wait a run accepts.")
    price_batch_size: int = Field(
        default=100, ge=1, le=500, description="App ids per price_overview request."
    )
    language: str = Field(
        default="english", description="Store language (`l`): release dates are parsed in English."
    )

    def _classify(self, expect_app: int | None) -> Callable[[httpx.Response], Any]:
        def classify(response: httpx.Response) -> Any:
            status = response.status_code
            if status == 200:
                body = json_body(response, "steam")
                if not isinstance(body, dict):
                    raise Reject(f"malformed answer from steam: expected an object, got {str(body)[:60]!r}")
                if expect_app is not None and entry_for(body, expect_app) is None:
                    raise Reject(f"malformed appdetails answer from steam: no entry for app {expect_app}")
                return body
            if status == 429:
                raise Retry(
                    "HTTP 429 (Steam's storefront limit, ~200 requests per 5 minutes)", self.throttle_pause_s
                )
            if status == 403:
                raise Reject(
                    "Steam blocked this IP (HTTP 403), usually after ignored 429s; "
                    "wait hours before the next refresh"
                )
            if status == 400:
                raise Reject(
                    "Steam rejected the request (HTTP 400): several app ids need filters=price_overview"
                )
            retry_on_status(response)
            raise Reject(f"HTTP {status} from steam")

        return classify

    def price_batches(self, appids: Sequence[int]) -> list[list[int]]:
        ordered = sorted(set(appids))
        return [ordered[i : i + self.price_batch_size] for i in range(0, len(ordered), self.price_batch_size)]

    def appdetails(
        self,
        client: httpx.Client,
        appid: int,
        country: str,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
    ) -> dict:
        """The full appdetails answer for one app (`{"<appid>": {"success": ..., "data": ...}}`)."""
        params = {"appids": str(appid), "cc": country, "l": self.language}
        request = client.build_request("GET", f"{self.base_url}/api/appdetails", params=params)
        return self.fetch(
            client, request, self._classify(appid), before_attempt=before_attempt, attempts=attempts
        )

    def prices(
        self,
        client: httpx.Client,
        appids: Sequence[int],
        country: str,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
    ) -> dict:
        """One batched `filters=price_overview` answer for `appids` (one batch)."""
        params = {"appids": ",".join(map(str, appids)), "cc": country, "filters": "price_overview"}
        request = client.build_request("GET", f"{self.base_url}/api/appdetails", params=params)
        return self.fetch(
            client, request, self._classify(None), before_attempt=before_attempt, attempts=attempts
        )

    def reviews(
        self,
        client: httpx.Client,
        appid: int,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
    ) -> dict:
        """The `appreviews` summary page (num_per_page=0: counts only, no review texts)."""
        params = {"json": "1", "num_per_page": "0", "language": "all", "purchase_type": "all"}
        request = client.build_request("GET", f"{self.base_url}/appreviews/{appid}", params=params)
        return self.fetch(
            client, request, self._classify(None), before_attempt=before_attempt, attempts=attempts
        )


# --- OpenCritic (RapidAPI) ------------------------------------------------------------------------

# RapidAPI refuses the key (401), the plan (403), or the quota/rate (429): all mean "no
# OpenCritic for now"; the catalogue keeps its previous critic data.
OFFLINE_STATUSES = frozenset({401, 403, 429})


class OpenCriticResource(HttpSourceResource):
    """OpenCritic through RapidAPI: `/game/search` (by name) and `/game/{id}`. The free plan
    allows about 25 searches and 200 requests a day, counted in the shared ledger before
    each request (`search_daily_limit`, `daily_limit`)."""

    source = "opencritic"
    api_key: str | None = Field(default=None, description=f"RapidAPI key ({ENV_OPENCRITIC_KEY}).")
    base_url: str = Field(default="https://opencritic-api.p.rapidapi.com")
    rapidapi_host: str = Field(default="opencritic-api.p.rapidapi.com")
    search_daily_limit: int = Field(default=25, ge=0, description="Searches per UTC day (free plan: ~25).")
    daily_limit: int = Field(default=200, ge=0, description="Requests per UTC day, searches included (~200).")

    @property
    def enabled(self) -> bool:
        # Replay needs no key (matching ignores it); live calls without one would only 401.
        return self.mode == "replay" or bool(self.api_key)

    def http_client(self, **kwargs) -> httpx.Client:
        headers = {
            "X-RapidAPI-Key": self.api_key or REPLAY_CREDENTIAL,
            "X-RapidAPI-Host": self.rapidapi_host,
            **kwargs.pop("headers", {}),
        }
        return super().http_client(headers=headers, **kwargs)

    @staticmethod
    def _classify(quota: dict[str, str] | None, expect: type) -> Callable[[httpx.Response], Any]:
        def classify(response: httpx.Response) -> Any:
            if quota is not None:
                quota.update(
                    {
                        k.lower(): v
                        for k, v in response.headers.items()
                        if k.lower().startswith("x-ratelimit-")
                    }
                )
            status = response.status_code
            if status == 200:
                body = json_body(response, "opencritic")
                if not isinstance(body, expect):
                    raise Reject(
                        f"malformed answer from opencritic: expected {expect.__name__}, "
                        f"got {str(body)[:60]!r}"
                    )
                return body
            if status in (401, 403):
                raise Reject(
                    f"OpenCritic (RapidAPI) refused the request (HTTP {status}: {_message(response)}): "
                    f"check {ENV_OPENCRITIC_KEY} and the plan's subscription"
                )
            if status == 429:
                reset = response.headers.get("X-RateLimit-Requests-Reset")
                wait = (
                    float(reset)
                    if reset and reset.replace(".", "", 1).isdigit()
                    else retry_after_seconds(response)
                )
                raise Retry(f"HTTP 429 {_message(response)}", wait)
            retry_on_status(response)
            raise Reject(f"HTTP {status} from opencritic: {_message(response)}")

        return classify

    def search(
        self,
        client: httpx.Client,
        name: str,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
        quota: dict[str, str] | None = None,
    ) -> list:
        request = client.build_request("GET", f"{self.base_url}/game/search", params={"criteria": name})
        return self.fetch(
            client, request, self._classify(quota, list), before_attempt=before_attempt, attempts=attempts
        )

    def game(
        self,
        client: httpx.Client,
        opencritic_id: int,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
        quota: dict[str, str] | None = None,
    ) -> dict:
        request = client.build_request("GET", f"{self.base_url}/game/{int(opencritic_id)}")
        return self.fetch(
            client, request, self._classify(quota, dict), before_attempt=before_attempt, attempts=attempts
        )
