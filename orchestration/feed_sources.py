"""News feeds (RSS 2.0 / Atom) over HTTP: a thin source resource with conditional GET.

The feed's validators (ETag, Last-Modified) from the previous answer are sent back, so an
unchanged feed costs the publisher a 304 and no body. Retries and Retry-After live in
`HttpSourceResource.fetch`; parsing lives in `ml.gaming.news`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import Field

from ml.gaming.news import decode_body
from orchestration.sources import (
    Attempt,
    HttpSourceResource,
    Reject,
    Retry,
    retry_after_seconds,
    retry_on_status,
)

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"


@dataclass(frozen=True)
class FeedAnswer:
    status: int  # 200, or 304 when the feed has not changed since the validators were issued
    text: str
    etag: str | None
    last_modified: str | None
    content_type: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class NewsFeedResource(HttpSourceResource):
    """Any RSS/Atom feed URL. Publishers ask for conditional requests and modest polling
    (hourly here); a 429 or 503 is retried after its Retry-After, within `max_wait_s`."""

    source = "feeds"
    max_bytes: int = Field(default=5_000_000, ge=1, description="Largest feed body accepted, in bytes.")
    max_wait_s: float = Field(
        default=60.0,
        description="Longest Retry-After a run waits for; a feed asking more is retried next hour.",
    )

    def fetch_feed(
        self,
        client: httpx.Client,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        attempts: list[Attempt] | None = None,
        before_attempt: Callable[[], None] | None = None,
    ) -> FeedAnswer:
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        request = client.build_request("GET", url, headers=headers)
        attempts = attempts if attempts is not None else []
        answer = self.fetch(client, request, self._classify, attempts=attempts, before_attempt=before_attempt)
        # Keep the body as the feed's own encoding says, not as httpx guessed from the headers.
        attempts[-1].body = answer.text
        return answer

    def _classify(self, response: httpx.Response) -> FeedAnswer:
        status = response.status_code
        if status in (200, 304):
            content = response.content
            if len(content) > self.max_bytes:
                raise Reject(f"feed body of {len(content):,} bytes exceeds max_bytes={self.max_bytes:,}")
            content_type = response.headers.get("content-type")
            return FeedAnswer(
                status,
                decode_body(content, content_type) if status == 200 else "",
                response.headers.get("etag"),
                response.headers.get("last-modified"),
                content_type,
            )
        if status in (404, 410):
            raise Reject(f"HTTP {status}: the feed is gone from this URL; check it in the tenant's settings")
        if status in (401, 403):
            raise Reject(f"HTTP {status}: the publisher refuses the request (blocked or login required)")
        if status == 429:
            raise Retry("HTTP 429", retry_after_seconds(response))
        retry_on_status(response)
        raise Reject(f"HTTP {status} from the feed")
