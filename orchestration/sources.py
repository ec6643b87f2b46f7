"""Base resource for external HTTP sources (one small subclass per API in `assets/`' domains).

Subclasses set `source` (the fixtures subfolder) and a base URL; they build requests with
`self.http_client()`, which is the same client in live, replay and record mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import httpx
from dagster import ConfigurableResource
from pydantic import Field

from orchestration.replay import transport_for
from orchestration.settings import PROJECT_ROOT

USER_AGENT = "bizosaas-data-platform/0.1 (+https://bizoholic.example; data-ops@bizoholic.example)"


class HttpSourceResource(ConfigurableResource):
    mode: str = Field(default="replay", description="live | replay | record (BIZOSAAS_SOURCE_MODE)")
    fixtures_dir: str = Field(
        default=str(PROJECT_ROOT / "fixtures"),
        description="Folder of recorded responses, one subfolder per source.",
    )
    timeout_s: float = Field(default=30.0, description="Per-request timeout in seconds.")

    # The fixtures subfolder and the pool name of the API; each subclass sets its own.
    source: ClassVar[str] = ""

    def http_client(self, **kwargs) -> httpx.Client:
        if not self.source:
            raise TypeError(f"{type(self).__name__} must set `source`")
        headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
        transport = transport_for(self.mode, Path(self.fixtures_dir) / self.source)
        return httpx.Client(transport=transport, headers=headers, timeout=self.timeout_s, **kwargs)
