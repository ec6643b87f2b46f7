"""The CRM's leads API: MicroPyramid's Django-CRM ("BottleCRM", DRF), one org per tenant.

A thin resource: it builds `GET <api_url>leads/` requests, follows the API's own pagination and
says what an answer means. The envelope is hand-rolled: open and closed leads are two sections
paginated side by side by one `offset` parameter (each section's `offset` is the next offset or
null), and converted leads are left out of the list, so they are read in a second pass with
`status=converted`. Parsing lives in `ml.crm.leads`.

The credential is per tenant (the CRM derives the org from it): CRM_API_TOKEN_<TENANT>, read
from the environment when a run starts, sent only to that tenant's `settings.crm.api_url`
(redirects are never followed), never logged and never recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from orchestration.errors import PlatformError
from orchestration.settings import ENV_CRM_TOKEN_PREFIX
from orchestration.sources import Attempt, HttpSourceResource, Reject, SourceError, json_body, retry_on_status

SECTIONS = ("open_leads", "close_leads")


def token_env(tenant_id: str) -> str:
    return ENV_CRM_TOKEN_PREFIX + tenant_id.upper()


class CrmTokenMissingError(PlatformError):
    def __init__(self, tenant_id: str, api_url: str) -> None:
        super().__init__(
            f"{token_env(tenant_id)} is not set: tenant {tenant_id!r} has a CRM at {api_url} and live calls "
            "need its org API key or personal access token; set it in the environment Dagster runs with "
            "(or remove settings.crm.api_url if the tenant only drops exports)"
        )


def auth_headers(token: str) -> dict[str, str]:
    """A JWT access token goes as Bearer; org API keys and personal access tokens as `Token:`
    (the header BottleCRM accepts for both)."""
    if token.count(".") == 2 and not token.startswith("bcrm_pat_"):
        return {"Authorization": f"Bearer {token}"}
    return {"Token": token}


@dataclass
class LeadsPage:
    number: int
    params: dict[str, Any]
    body: dict[str, Any]

    @property
    def leads(self) -> list[dict[str, Any]]:
        return [lead for section in SECTIONS for lead in self.body[section][section]]

    @property
    def next_offset(self) -> int | None:
        offsets = [self.body[s].get("offset") for s in SECTIONS if self.body[s].get("offset") is not None]
        return min(offsets) if offsets else None


class CrmLeadsResource(HttpSourceResource):
    """BottleCRM's leads list at the tenant's own CRM (tenant settings: crm.api_url)."""

    source = "crm"
    page_size: int = Field(
        default=100, ge=1, le=1000, description="Leads per section per page (the API has no maximum)."
    )
    min_interval_s: float = Field(
        default=0.5,
        ge=0,
        description="Seconds between requests to one CRM: it has no throttling, so we are the polite side.",
    )
    max_pages: int = Field(default=2000, ge=1, description="Pages one listing may span before it is stopped.")

    def token(self, tenant_id: str) -> str | None:
        return os.environ.get(token_env(tenant_id)) or None

    def client(self, tenant_id: str, api_url: str) -> httpx.Client:
        """A client for this tenant's CRM, carrying its token (replay needs none)."""
        token = self.token(tenant_id)
        if token:
            return self.http_client(headers=auth_headers(token), follow_redirects=False)
        if self.mode != "replay":
            raise CrmTokenMissingError(tenant_id, api_url)
        return self.http_client(follow_redirects=False)

    @staticmethod
    def leads_url(api_url: str) -> str:
        return api_url.rstrip("/") + "/leads/"

    @staticmethod
    def rate_key(api_url: str) -> str:
        return f"crm:{urlsplit(api_url).netloc}"

    def pages(
        self,
        client: httpx.Client,
        tenant_id: str,
        api_url: str,
        filters: dict[str, str],
        *,
        before_attempt: Callable[[], None] | None = None,
        on_page: Callable[[dict[str, Any], list[Attempt]], None] | None = None,
    ) -> Iterator[LeadsPage]:
        """Every page of the listing with `filters`; `on_page` receives each page's exchanges
        (failed ones too) before the page is parsed or the next one requested."""
        offset = 0
        env = token_env(tenant_id)
        for number in range(1, self.max_pages + 1):
            params = {"limit": str(self.page_size), "offset": str(offset), **filters}
            attempts: list[Attempt] = []
            request = client.build_request("GET", self.leads_url(api_url), params=params)
            try:
                body = self.fetch(
                    client,
                    request,
                    lambda r: classify(r, env),
                    before_attempt=before_attempt,
                    attempts=attempts,
                )
            finally:
                if on_page is not None:
                    on_page(params, attempts)
            page = LeadsPage(number, params, body)
            yield page
            following = page.next_offset
            if following is None:
                return
            if not isinstance(following, int) or following <= offset:
                raise SourceError(
                    f"crm: page {number} says the next offset is {following!r} after {offset}; stopped "
                    "instead of looping",
                    source=self.source,
                    attempts=attempts,
                    retryable=False,
                )
            offset = following
        raise SourceError(
            f"crm: the leads listing still had pages after max_pages={self.max_pages}",
            source=self.source,
            attempts=[],
            retryable=False,
        )


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:160].split())
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("errors") or body.get("message") or body)[:200]
    return str(body)[:200]


def classify(response: httpx.Response, env: str) -> dict[str, Any]:
    """The envelope of a good answer; otherwise Retry or Reject with the reason."""
    status = response.status_code
    if status == 200:
        body = json_body(response, "crm")
        if not isinstance(body, dict):
            raise Reject(
                f"malformed response from the CRM: expected a JSON object, got {type(body).__name__}"
            )
        for section in SECTIONS:
            part = body.get(section)
            if not (isinstance(part, dict) and isinstance(part.get(section), list)):
                raise Reject(f"malformed response from the CRM: no {section}.{section} list in the answer")
            if not all(isinstance(lead, dict) for lead in part[section]):
                raise Reject(f"malformed response from the CRM: {section}.{section} holds a non-object")
        return body
    if status == 401:
        raise Reject(f"the CRM refused the credential (HTTP 401: {_detail(response)}); check {env}")
    if status == 403:
        raise Reject(
            f"the CRM denied access (HTTP 403: {_detail(response)}); {env} must be an admin-scoped org key "
            "(non-admin credentials only see their own leads)"
        )
    if 300 <= status < 400:
        raise Reject(
            f"the CRM answered with a redirect (HTTP {status} to {response.headers.get('location')!r}); "
            "not followed, so the token stays with api_url: fix settings.crm.api_url"
        )
    if status == 400:
        raise Reject(f"the CRM rejected the request (HTTP 400): {_detail(response)}")
    retry_on_status(response)
    raise Reject(f"HTTP {status} from the CRM: {_detail(response)}")
