"""Replay and recording at the HTTP transport, so source clients have one code path.

A source client builds its `httpx.Client` with `http_client(...)`. In `live` mode requests go
to the network; in `replay` mode a `ReplayTransport` answers them from recorded exchanges in
`fixtures/<source>/*.json`; in `record` mode live answers are also written there (secrets
redacted). Retries, rate limits and parsing run identically in every mode.

A recorded exchange is one JSON file (a request body is `json`, `form` or `body` text):

    {"request":  {"method": "GET", "url": "https://host/path", "params": {...}, "json": ...},
     "responses": [{"status": 429, "headers": {"Retry-After": "1"}, "text": "..."},
                   {"status": 200, "headers": {...}, "json": [...]}]}

`responses` are served in order for repeated identical requests (the last one repeats), which
is how a 429-then-success sequence is replayed. A body is `json` or `text`.

With BIZOSAAS_REPLAY_FAULTS set (`429=0.03,timeout=0.02,malformed=0.02`), replayed answers are
replaced at those rates by the faults real sources show: a 429 with Retry-After, a read timeout,
or a malformed body (a truncated answer, or a gateway's HTML page with status 502 or 200). A
fault does not consume the recording, so the retry gets the answer the fault stood in for.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from orchestration.errors import PlatformError
from orchestration.settings import ENV_REPLAY_FAULT_SEED, ENV_REPLAY_FAULTS, load_settings

MODES = ("live", "replay", "record")
# Query parameters and headers that carry credentials: never part of a match, never recorded.
SECRET_PARAMS = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "access_token",
        "token",
        "client_secret",
        "x_cg_demo_api_key",
        "x_cg_pro_api_key",
    }
)
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "client-id",
        "x-rapidapi-key",
        "x-cg-demo-api-key",
        "x-cg-pro-api-key",
        "cookie",
        "set-cookie",
    }
)


class UnrecordedRequestError(PlatformError):
    """Replay mode met a request that has no recording."""


def _canonical_body(content: bytes) -> str:
    if not content:
        return ""
    text = content.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        pass
    if "=" in text and not any(ch.isspace() for ch in text):
        # A form post (Overpass `data=<query>`): compare decoded fields, whitespace-insensitive,
        # so a fixture can hold the query as readable text.
        try:
            fields = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            fields = None
        if fields:
            return "form:" + json.dumps(sorted((k, " ".join(v.split())) for k, v in fields))
    # Apicalypse bodies and other text: normalise whitespace only.
    return " ".join(text.split())


def request_signature(method: str, url: str, params: dict[str, Any] | None, body: bytes) -> str:
    """The identity of a request for replay: method, URL without query, sorted non-secret
    query parameters, and the canonical body."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query += [(k, str(v)) for k, v in (params or {}).items()]
    query = sorted((k, v) for k, v in query if k.lower() not in SECRET_PARAMS)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    encoded = "&".join(f"{k}={v}" for k, v in query)
    sig = f"{method.upper()} {base}" + (f"?{encoded}" if encoded else "")
    canonical = _canonical_body(body)
    if canonical:
        sig += f" body={canonical}"
    return sig


@dataclass
class Recording:
    path: Path
    responses: list[dict[str, Any]]


def _load_recordings(
    directory: Path, pattern: str = "**/*.json", known: dict[str, Recording] | None = None
) -> dict[str, Recording]:
    """Recordings by signature; a signature also in `known` (another folder's) is an error too."""
    recordings: dict[str, Recording] = {}
    known = known or {}
    for path in sorted(directory.glob(pattern)):
        try:
            doc = json.loads(path.read_text())
            req = doc["request"]
            body = b""
            if "json" in req:
                body = json.dumps(req["json"]).encode()
            elif "form" in req:
                body = urlencode(req["form"]).encode()
            elif "body" in req:
                body = str(req["body"]).encode()
            sig = request_signature(req.get("method", "GET"), req["url"], req.get("params"), body)
            responses = doc["responses"]
            if not responses:
                raise ValueError("no responses")
        except (ValueError, KeyError, TypeError) as exc:
            raise PlatformError(f"fixture {path} is not a valid recording: {exc}") from exc
        if sig in recordings or sig in known:
            other = (recordings.get(sig) or known[sig]).path
            raise PlatformError(f"fixtures {other} and {path} record the same request")
        recordings[sig] = Recording(path, responses)
    return recordings


FAULT_KINDS = ("429", "timeout", "malformed")
FAULT_EXAMPLE = "429=0.03,timeout=0.02,malformed=0.02"
# Short enough that a soak's retries stay quick, long enough to be a real wait.
FAULT_RETRY_AFTER_S = 1
FAULT_TIMEOUT_DELAY_S = 0.05
# Marks an injected answer, so a stored raw response shows it came from the soak, not the API.
FAULT_HEADER = "X-Bizosaas-Replay-Fault"
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
CHALLENGE_HTML = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)


def parse_faults(text: str) -> dict[str, float]:
    """`429=0.03,timeout=0.02,malformed=0.02` as {kind: probability}; blank means no faults."""
    rates: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, sep, value = (x.strip() for x in part.partition("="))
        kind = kind.lower()
        if not sep or kind not in FAULT_KINDS:
            raise PlatformError(
                f"{ENV_REPLAY_FAULTS}: {part!r} is not kind=probability with kind one of "
                f"{', '.join(FAULT_KINDS)} (e.g. {FAULT_EXAMPLE})"
            )
        if kind in rates:
            raise PlatformError(f"{ENV_REPLAY_FAULTS}: {kind} is given twice")
        try:
            rate = float(value)
        except ValueError:
            raise PlatformError(f"{ENV_REPLAY_FAULTS}: {kind}={value!r} is not a number") from None
        if math.isnan(rate) or not 0 <= rate <= 1:
            raise PlatformError(f"{ENV_REPLAY_FAULTS}: {kind}={value} is not a probability between 0 and 1")
        rates[kind] = rate
    if sum(rates.values()) > 1 + 1e-9:
        raise PlatformError(f"{ENV_REPLAY_FAULTS}: the probabilities add up to more than 1 ({text!r})")
    return rates


class FaultInjector:
    """Decides, per replayed answer, whether a fault replaces it; one seeded RNG behind a lock,
    shared by every transport of a process (runs fetch from several threads)."""

    def __init__(self, rates: dict[str, float], seed: int | str | None = None):
        self.rates = {k: v for k, v in rates.items() if v > 0}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.draws = 0

    def draw(self) -> tuple[str | None, float]:
        """The fault for the next answer (None for none) and a uniform number choosing its variant."""
        with self._lock:
            x, variant = self._rng.random(), self._rng.random()
            self.draws += 1
            cumulative = 0.0
            for kind in FAULT_KINDS:
                cumulative += self.rates.get(kind, 0.0)
                if x < cumulative:
                    self.injected[kind] += 1
                    return kind, variant
        return None, variant

    @staticmethod
    def fault_response(
        kind: str, variant: float, request: httpx.Request, recorded: httpx.Response | None = None
    ) -> httpx.Response:
        """The answer standing in for `recorded`; a timeout raises as httpx would."""
        marker = {FAULT_HEADER: kind}
        if kind == "429":
            headers = {"Retry-After": str(FAULT_RETRY_AFTER_S), "content-type": "text/plain", **marker}
            return httpx.Response(429, headers=headers, text="Too Many Requests", request=request)
        if kind == "timeout":
            time.sleep(FAULT_TIMEOUT_DELAY_S)
            raise httpx.ReadTimeout("The read operation timed out (injected replay fault)", request=request)
        if kind != "malformed":
            raise ValueError(f"unknown fault {kind!r}")
        html = {"content-type": "text/html; charset=utf-8", **marker}
        if variant < 1 / 3 and recorded is not None and len(recorded.content) > 1:
            # A connection cut mid-body behind a proxy: the recorded status and headers, half the body.
            headers = {k: v for k, v in recorded.headers.items() if k.lower() != "content-length"}
            content = recorded.content[: len(recorded.content) // 2]
            return httpx.Response(recorded.status_code, headers={**headers, **marker}, content=content,
                                  request=request)  # fmt: skip
        if variant < 2 / 3:
            return httpx.Response(502, headers=html, text=BAD_GATEWAY_HTML, request=request)
        return httpx.Response(200, headers=html, text=CHALLENGE_HTML, request=request)


_injectors: dict[tuple[str, str], FaultInjector] = {}
_injectors_lock = threading.Lock()


def faults_from_env() -> FaultInjector | None:
    """The process's injector for BIZOSAAS_REPLAY_FAULTS, or None when unset or all zero.

    The seed is mixed with the process id: every run process would otherwise draw the same
    sequence, and the same first requests of every run would fail."""
    text = os.environ.get(ENV_REPLAY_FAULTS, "").strip()
    seed = os.environ.get(ENV_REPLAY_FAULT_SEED, "").strip()
    if not text:
        return None
    if seed and not seed.lstrip("-").isdigit():
        raise PlatformError(f"{ENV_REPLAY_FAULT_SEED} must be a whole number, got {seed!r}")
    rates = parse_faults(text)
    if not any(rates.values()):
        return None
    with _injectors_lock:
        injector = _injectors.get((text, seed))
        if injector is None:
            injector = FaultInjector(rates, f"{seed or 0}:{os.getpid()}")
            _injectors[(text, seed)] = injector
        return injector


class ReplayTransport(httpx.BaseTransport):
    """Answers requests from recordings; an unknown request is an error naming it."""

    def __init__(self, directory: Path, overlay: Path | None = None, faults: FaultInjector | None = None):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise PlatformError(f"no recorded responses at {self.directory} (replay mode)")
        self._recordings = _load_recordings(self.directory)
        # The overlay (synthetic tenants' recordings) keeps one sub-folder per host, read on the
        # first request to that host: hundreds of tenants' shops must not all load per client.
        self.overlay = overlay if overlay is not None and Path(overlay).is_dir() else None
        self._hosts_loaded: set[str] = set()
        if self.overlay is not None:
            self._recordings.update(_load_recordings(self.overlay, "*.json", self._recordings))
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self.calls: list[str] = []
        self.faults = faults

    def _load_host(self, host: str) -> None:
        with self._lock:
            if self.overlay is None or host in self._hosts_loaded:
                return
            folder = self.overlay / host
            if folder.is_dir():
                self._recordings.update(_load_recordings(folder, "**/*.json", self._recordings))
            self._hosts_loaded.add(host)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sig = request_signature(request.method, str(request.url), None, request.read())
        self._load_host(request.url.netloc.decode("ascii").lower())
        recording = self._recordings.get(sig)
        if recording is None:
            raise UnrecordedRequestError(
                f"replay: no recording for {sig} in {self.directory}"
                + (f" or {self.overlay}" if self.overlay else "")
                + "; record it with "
                "BIZOSAAS_SOURCE_MODE=record, or add a fixture file"
            )
        fault, variant = self.faults.draw() if self.faults else (None, 0.0)
        with self._lock:
            index = self._served.get(sig, 0)
            if fault is None:
                self._served[sig] = index + 1
            self.calls.append(sig)
        answer = recording.responses[min(index, len(recording.responses) - 1)]
        headers = dict(answer.get("headers") or {})
        if "json" in answer:
            content = json.dumps(answer["json"]).encode()
            headers.setdefault("content-type", "application/json")
        else:
            content = str(answer.get("text", "")).encode()
        response = httpx.Response(
            answer.get("status", 200), headers=headers, content=content, request=request
        )
        if fault is not None:
            return FaultInjector.fault_response(fault, variant, request, response)
        return response


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60]


class RecordingTransport(httpx.BaseTransport):
    """Passes requests to the network and writes each exchange as a fixture."""

    def __init__(self, directory: Path, inner: httpx.BaseTransport | None = None):
        self.directory = Path(directory)
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.inner.handle_request(request)
        response.read()
        parts = urlsplit(str(request.url))
        params = {
            k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SECRET_PARAMS
        }
        recorded_request: dict[str, Any] = {
            "method": request.method,
            "url": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "params": params,
        }
        if body and "form-urlencoded" in request.headers.get("content-type", ""):
            recorded_request["form"] = dict(parse_qsl(body.decode(), keep_blank_values=True))
        elif body:
            try:
                recorded_request["json"] = json.loads(body)
            except ValueError:
                recorded_request["body"] = body.decode("utf-8", errors="replace")
        answer: dict[str, Any] = {
            "status": response.status_code,
            "headers": {
                k: v
                for k, v in response.headers.items()
                if k.lower() not in SECRET_HEADERS and k.lower() not in {"content-length", "content-encoding"}
            },
        }
        try:
            answer["json"] = response.json()
        except ValueError:
            answer["text"] = response.text
        sig = request_signature(request.method, str(request.url), None, body)
        name = f"{_slug(parts.path) or 'root'}_{hashlib.sha256(sig.encode()).hexdigest()[:10]}.json"
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / name
        existing = json.loads(path.read_text())["responses"] if path.exists() else []
        path.write_text(
            json.dumps(
                {"request": recorded_request, "responses": [*existing, answer]}, indent=2, ensure_ascii=False
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content, request=request
        )


def synthetic_overlay(source: str) -> Path:
    """Where synthetic tenants' recordings of `source` live: `<data dir>/synthetic/fixtures/<source>/`,
    one sub-folder per host (see orchestration.synthetic_tenants)."""
    return load_settings().data_dir / "synthetic" / "fixtures" / source


def transport_for(mode: str, fixtures_dir: Path) -> httpx.BaseTransport | None:
    """The transport for a source in `mode`; None means httpx's own network transport."""
    if mode == "live":
        return None
    if mode == "replay":
        return ReplayTransport(
            fixtures_dir, synthetic_overlay(Path(fixtures_dir).name), faults=faults_from_env()
        )
    if mode == "record":
        return RecordingTransport(fixtures_dir)
    raise PlatformError(f"unknown source mode {mode!r}; choose one of {', '.join(MODES)}")
