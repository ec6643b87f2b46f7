"""An OpenAI-compatible chat-completions endpoint (OpenAI, Azure's compatible route, vLLM,
Ollama, LM Studio, ...), for the optional narrative of campaign insights.

Not configured (no base URL or no model), it is never called: nothing leaves the platform.
Requests go through `HttpSourceResource.fetch`, so retries, Retry-After, timeouts and replay are
the platform's; the key travels only in the Authorization header, which replay never matches on
and recording never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import Field

from orchestration.settings import ENV_LLM_API_KEY, ENV_LLM_BASE_URL, ENV_LLM_MODEL
from orchestration.sources import Attempt, HttpSourceResource, Reject, json_body, retry_on_status


@dataclass(frozen=True)
class ChatAnswer:
    content: str
    model: str
    finish_reason: str | None
    usage: dict[str, Any]
    attempts: list[Attempt]


class LlmResource(HttpSourceResource):
    """POST {base_url}/chat/completions with a model name and messages."""

    source = "llm"
    base_url: str | None = Field(
        default=None,
        description=f"The endpoint's base URL, e.g. https://api.openai.com/v1 ({ENV_LLM_BASE_URL}).",
    )
    api_key: str | None = Field(
        default=None, description=f"Bearer key ({ENV_LLM_API_KEY}); local servers may need none."
    )
    model: str | None = Field(default=None, description=f"Model name, e.g. gpt-4o-mini ({ENV_LLM_MODEL}).")
    temperature: float = Field(
        default=0.0, ge=0, le=2, description="0 keeps the summary close to the figures."
    )
    max_tokens: int = Field(default=400, ge=16, description="Upper bound on the answer's length.")
    timeout_s: float = Field(default=60.0, description="Per-request timeout in seconds (generation is slow).")
    max_attempts: int = Field(default=3, ge=1, description="Attempts per request, the first included.")

    @property
    def configured(self) -> bool:
        return bool((self.base_url or "").strip() and (self.model or "").strip())

    def endpoint(self) -> str:
        return self.base_url.strip().rstrip("/") + "/chat/completions"

    def complete(self, messages: list[dict[str, str]]) -> ChatAnswer:
        """The model's answer to `messages`; SourceError when the endpoint fails for good."""
        if not self.configured:
            raise RuntimeError(f"the LLM endpoint is not configured ({ENV_LLM_BASE_URL}, {ENV_LLM_MODEL})")
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        attempts: list[Attempt] = []
        with self.http_client(headers=headers) as client:
            request = client.build_request("POST", self.endpoint(), json=body)
            content, model, finish, usage = self.fetch(client, request, classify, attempts=attempts)
        return ChatAnswer(content, model or self.model, finish, usage, attempts)


def openai_error_message(response: httpx.Response) -> str:
    """The `error.message` of an OpenAI-style error body, else the start of the body."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
    except (ValueError, AttributeError):
        pass
    return " ".join(response.text[:160].split())


def classify(response: httpx.Response) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """(content, model, finish_reason, usage) of a chat.completion; Retry or Reject otherwise."""
    status = response.status_code
    if status == 200:
        body = json_body(response, "llm")
        choices = body.get("choices") if isinstance(body, dict) else None
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = first.get("message") if isinstance(first.get("message"), dict) else {}
        content = message.get("content")
        if not isinstance(content, str):
            raise Reject("malformed response from llm: no choices[0].message.content string")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return content, body.get("model"), first.get("finish_reason"), usage
    if status in (401, 403):
        raise Reject(f"the LLM endpoint refused the key (HTTP {status}: {openai_error_message(response)}); "
                     f"check {ENV_LLM_API_KEY}")  # fmt: skip
    if status in (400, 404, 422):
        raise Reject(
            f"the LLM endpoint rejected the request (HTTP {status}): {openai_error_message(response)}"
        )
    retry_on_status(response)
    raise Reject(f"HTTP {status} from the LLM endpoint: {openai_error_message(response)}")
