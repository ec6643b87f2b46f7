"""The Business Directory's sources: Nominatim (primary), LocationIQ (fallback), Overpass
(POI details). Each is a thin resource that builds requests and says what an answer means;
retries live in `HttpSourceResource.fetch`, parsing in `ml.directory.listings`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import httpx
from pydantic import Field

from ml.directory.listings import OSM_TYPES
from orchestration.sources import (
    Attempt,
    HttpSourceResource,
    Reject,
    Retry,
    json_body,
    retry_after_seconds,
    retry_on_status,
)


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return " ".join(response.text[:80].split())
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error)


class NominatimResource(HttpSourceResource):
    """OpenStreetMap Nominatim `/search`. Its usage policy allows at most one request per
    second for the whole platform, which callers enforce with a shared rate slot."""

    source = "nominatim"
    base_url: str = Field(
        default="https://nominatim.openstreetmap.org",
        description="Nominatim server; switch to a self-hosted instance without a release.",
    )
    min_interval_s: float = Field(
        default=1.0, ge=0, description="Seconds between requests, platform-wide (usage policy: 1 s)."
    )
    result_limit: int = Field(default=40, ge=1, le=40, description="Results per search (max 40).")

    def search_request(self, client: httpx.Client, text: str) -> httpx.Request:
        params = {
            "q": text,
            "format": "jsonv2",
            "addressdetails": 1,
            "extratags": 1,
            "namedetails": 1,
            "limit": self.result_limit,
        }
        return client.build_request("GET", f"{self.base_url}/search", params=params)

    def search(
        self,
        client: httpx.Client,
        text: str,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt] | None = None,
    ) -> list[dict]:
        request = self.search_request(client, text)
        return self.fetch(
            client, request, _classify_nominatim, before_attempt=before_attempt, attempts=attempts
        )


def _classify_nominatim(response: httpx.Response) -> list[dict]:
    status = response.status_code
    if status == 200:
        body = json_body(response, "nominatim")
        if isinstance(body, dict) and "error" in body:
            raise Reject(f"Nominatim error: {_error_message(response)}")
        if not isinstance(body, list):
            raise Reject(f"malformed response from nominatim: expected an array, got {type(body).__name__}")
        return body
    if status == 403:
        raise Reject(
            "blocked by Nominatim's usage policy (HTTP 403): check the User-Agent and the request "
            "rate, or switch base_url to a self-hosted instance"
        )
    retry_on_status(response)
    raise Reject(f"HTTP {status} from nominatim: {_error_message(response)}")


class LocationIQResource(HttpSourceResource):
    """LocationIQ `/v1/search` (Nominatim-compatible): the fallback when Nominatim finds
    too little. The free tier allows 5,000 requests a day, tracked in a shared ledger."""

    source = "locationiq"
    api_key: str | None = Field(default=None, description="Access token (LOCATIONIQ_API_KEY).")
    base_url: str = Field(default="https://us1.locationiq.com", description="LocationIQ region endpoint.")
    daily_limit: int = Field(default=5000, ge=0, description="Requests per UTC day (free tier: 5,000).")
    min_interval_s: float = Field(default=0.5, ge=0, description="Seconds between requests (free: 2/s).")
    result_limit: int = Field(default=50, ge=1, le=50)

    @property
    def enabled(self) -> bool:
        # Replay needs no key (matching ignores it); live calls without one would only 401.
        return self.mode == "replay" or bool(self.api_key)

    def search(
        self,
        client: httpx.Client,
        text: str,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt] | None = None,
    ) -> list[dict]:
        params = {
            "key": self.api_key or "replay",
            "q": text,
            "format": "json",
            "addressdetails": 1,
            "extratags": 1,
            "namedetails": 1,
            "normalizecity": 1,
            "limit": self.result_limit,
        }
        request = client.build_request("GET", f"{self.base_url}/v1/search", params=params)
        return self.fetch(
            client, request, _classify_locationiq, before_attempt=before_attempt, attempts=attempts
        )


def _classify_locationiq(response: httpx.Response) -> list[dict]:
    status, message = response.status_code, ""
    if status == 200:
        body = json_body(response, "locationiq")
        if not isinstance(body, list):
            raise Reject(f"malformed response from locationiq: expected an array, got {type(body).__name__}")
        return body
    message = _error_message(response)
    if status == 404 and "unable to geocode" in message.lower():
        return []  # LocationIQ's way of saying "no results"
    if status == 429 and "day" in message.lower():
        raise Reject("LocationIQ's daily quota is spent (Rate Limited Day); it resets at 00:00 UTC")
    if status in (401, 403):
        raise Reject(f"LocationIQ refused the key ({message}): check LOCATIONIQ_API_KEY")
    if status == 429:
        # Per-second and per-minute limits: honour Retry-After when sent, else wait out the window.
        window = 60.0 if "minute" in message.lower() else 1.0
        raise Retry(f"HTTP 429 {message}", retry_after_seconds(response) or window)
    retry_on_status(response)
    raise Reject(f"HTTP {status} from locationiq: {message}")


def details_query(refs: Iterable[tuple[str, int]], timeout_s: int = 60) -> str:
    """One Overpass QL query for the tags of many OSM objects, in a canonical order."""
    by_type: dict[str, list[int]] = {t: [] for t in OSM_TYPES}
    for osm_type, osm_id in refs:
        by_type[osm_type].append(int(osm_id))
    groups = "".join(f"{t}(id:{','.join(map(str, sorted(set(ids))))});" for t, ids in by_type.items() if ids)
    return f"[out:json][timeout:{timeout_s}];({groups});out center tags;"


class OverpassResource(HttpSourceResource):
    """Overpass API: POI details (opening hours, phone, website, cuisine) for many objects
    per query. A `runtime error` remark means the answer is incomplete: retried, never stored
    as a (partial) result."""

    source = "overpass"
    endpoint: str = Field(default="https://overpass-api.de/api/interpreter")
    batch_size: int = Field(default=100, ge=1, description="OSM objects per query.")
    query_timeout_s: int = Field(default=60, ge=1, description="Overpass [timeout:] for each query.")
    backoff_s: float = Field(default=2.0, ge=0, description="First backoff; Overpass sends no Retry-After.")

    def batches(self, refs: Sequence[tuple[str, int]]) -> list[list[tuple[str, int]]]:
        ordered = sorted(set(refs), key=lambda ref: (OSM_TYPES.index(ref[0]), ref[1]))
        return [ordered[i : i + self.batch_size] for i in range(0, len(ordered), self.batch_size)]

    def details(
        self,
        client: httpx.Client,
        refs: Sequence[tuple[str, int]],
        *,
        attempts: list[Attempt] | None = None,
    ) -> list[dict]:
        """The Overpass answers (one per batch) for `refs`."""
        answers = []
        for batch in self.batches(refs):
            request = client.build_request(
                "POST", self.endpoint, data={"data": details_query(batch, self.query_timeout_s)}
            )
            answers.append(self.fetch(client, request, _classify_overpass, attempts=attempts))
        return answers


def _classify_overpass(response: httpx.Response) -> dict:
    status = response.status_code
    if status == 200:
        body = json_body(response, "overpass")
        if not isinstance(body, dict) or not isinstance(body.get("elements"), list):
            raise Reject("malformed response from overpass: no `elements` array")
        remark = str(body.get("remark") or "")
        if remark.startswith("runtime error"):
            raise Retry(f"Overpass {remark}")
        return body
    if status == 400:
        raise Reject(f"Overpass rejected the query: {' '.join(response.text[:160].split())}")
    retry_on_status(response)
    raise Reject(f"HTTP {status} from overpass")
