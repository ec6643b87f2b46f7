"""Base resource for external HTTP sources (one small subclass per API).

Subclasses set `source` (the fixtures subfolder) and a base URL; they build requests with
`self.http_client()`, which is the same client in live, replay and record mode, and send them
with `self.fetch(...)`, the one place where retries, backoff and Retry-After live.

A subclass only says what an answer means, in a `classify` function: return the parsed body,
raise `Retry` for a transient failure (429, 504, Overpass's runtime-error remark), or `Reject`
for one that retrying cannot fix (bad key, malformed body).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from orchestration.errors import PlatformError
from orchestration.replay import SECRET_PARAMS, transport_for
from orchestration.settings import PROJECT_ROOT

USER_AGENT = "bizosaas-data-platform/0.1 (+https://bizoholic.example; data-ops@bizoholic.example)"
T = TypeVar("T")


class Retry(Exception):  # noqa: N818 - a signal from classify(), not an error to the user
    """The answer is a transient failure; try again (after `retry_after_s` if the API said)."""

    def __init__(self, reason: str, retry_after_s: float | None = None):
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Reject(Exception):  # noqa: N818
    """The answer is a failure that retrying cannot fix."""


@dataclass
class Attempt:
    """One HTTP exchange, kept as evidence (the raw body is stored before it is parsed)."""

    source: str
    request: str
    attempt: int
    status: int
    body: str
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class SourceError(PlatformError):
    """A source failed for good: retries exhausted or the answer rejected."""

    def __init__(self, message: str, *, source: str, attempts: list[Attempt], retryable: bool):
        super().__init__(message)
        self.source = source
        self.attempts = attempts
        self.retryable = retryable


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def describe(request: httpx.Request) -> str:
    """A request as it may be logged: without credentials in the query."""
    url = request.url
    # Every parameter replay treats as a secret (Twitch's client_secret too), in any case.
    for name in {k for k in url.params if k.lower() in SECRET_PARAMS}:
        url = url.copy_remove_param(name)
    return f"{request.method} {url}"


class HttpSourceResource(ConfigurableResource):
    mode: str = Field(default="replay", description="live | replay | record (BIZOSAAS_SOURCE_MODE)")
    fixtures_dir: str = Field(
        default=str(PROJECT_ROOT / "fixtures"),
        description="Folder of recorded responses, one subfolder per source.",
    )
    timeout_s: float = Field(default=30.0, description="Per-request timeout in seconds.")
    max_attempts: int = Field(default=4, ge=1, description="Attempts per request, the first included.")
    backoff_s: float = Field(
        default=1.0, ge=0, description="First backoff between attempts; doubles on each retry."
    )
    max_wait_s: float = Field(
        default=120.0,
        description="Longest single wait a run accepts; a longer Retry-After fails the request now.",
    )

    # The fixtures subfolder and the pool name of the API; each subclass sets its own.
    source: ClassVar[str] = ""
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)

    def http_client(self, **kwargs) -> httpx.Client:
        if not self.source:
            raise TypeError(f"{type(self).__name__} must set `source`")
        headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
        transport = transport_for(self.mode, Path(self.fixtures_dir) / self.source)
        return httpx.Client(transport=transport, headers=headers, timeout=self.timeout_s, **kwargs)

    def fetch(
        self,
        client: httpx.Client,
        request: httpx.Request,
        classify: Callable[[httpx.Response], T],
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt] | None = None,
    ) -> T:
        """Send `request` until `classify` accepts the answer, with bounded retries.

        `before_attempt` runs before every send (rate-limit slots, budgets); every exchange is
        appended to `attempts`, which the caller stores whether the fetch succeeds or not.
        """
        attempts = attempts if attempts is not None else []
        label = describe(request)
        reason = ""
        for number in range(1, self.max_attempts + 1):
            if before_attempt is not None:
                before_attempt()
            wait: float | None = None
            try:
                response = client.send(request)
            except httpx.TimeoutException:
                reason = f"timed out after {self.timeout_s:g} s"
                attempts.append(Attempt(self.source, label, number, 0, reason))
            except httpx.TransportError as exc:
                reason = f"connection failed: {exc}"
                attempts.append(Attempt(self.source, label, number, 0, reason))
            else:
                attempts.append(Attempt(self.source, label, number, response.status_code, response.text))
                try:
                    return classify(response)
                except Retry as retry:
                    reason, wait = str(retry), retry.retry_after_s
                except Reject as reject:
                    raise SourceError(
                        f"{self.source}: {reject} ({label})",
                        source=self.source,
                        attempts=attempts,
                        retryable=False,
                    ) from None
            if number == self.max_attempts:
                break
            wait = wait if wait is not None else min(self.backoff_s * 2 ** (number - 1), self.max_wait_s)
            if wait > self.max_wait_s:
                raise SourceError(
                    f"{self.source}: {reason}; the API asks to wait {wait:.0f} s, more than this "
                    f"run's max_wait_s={self.max_wait_s:g} ({label}); the next refresh retries",
                    source=self.source,
                    attempts=attempts,
                    retryable=True,
                )
            self._sleep(wait)
        raise SourceError(
            f"{self.source}: {reason} (gave up after {self.max_attempts} attempts; {label})",
            source=self.source,
            attempts=attempts,
            retryable=True,
        )


def json_body(response: httpx.Response, source: str) -> Any:
    """The JSON body, or a Reject that quotes the start of what came instead."""
    try:
        return response.json()
    except ValueError:
        snippet = " ".join(response.text[:80].split())
        raise Reject(
            f"malformed response body from {source} (HTTP {response.status_code}): {snippet!r}"
        ) from None


TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def retry_on_status(response: httpx.Response) -> None:
    """Raise Retry for the status codes that mean "try later"."""
    if response.status_code in TRANSIENT_STATUSES:
        raise Retry(f"HTTP {response.status_code}", retry_after_seconds(response))
