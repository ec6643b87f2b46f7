"""The news feed client against a real local HTTP server (live mode): conditional GET,
timeouts, Retry-After, body decoding and size limits."""

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestration.feed_sources import NewsFeedResource
from orchestration.sources import SourceError

ETAG = '"v1-4f2a"'
LATIN1_FEED = (
    '<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel><title>Fr</title>'
    "<item><title>Caf\xe9</title><link>https://fr.example/a</link></item></channel></rss>"
).encode("latin-1")


class Publisher(BaseHTTPRequestHandler):
    seen: list[dict] = []
    limited_calls = 0

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may have timed out and hung up, which is what one test wants.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - the http.server interface
        Publisher.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        if self.path == "/feed":
            if self.headers.get("If-None-Match") == ETAG:
                self._send(304, headers={"ETag": ETAG})
            else:
                self._send(200, LATIN1_FEED, {"Content-Type": "application/rss+xml", "ETag": ETAG})
        elif self.path == "/slow":
            time.sleep(1.0)
            self._send(200, LATIN1_FEED)
        elif self.path == "/limited":
            Publisher.limited_calls += 1
            if Publisher.limited_calls == 1:
                self._send(429, b"slow down", {"Retry-After": "3"})
            else:
                self._send(200, LATIN1_FEED)
        elif self.path == "/very-limited":
            self._send(429, b"come back tomorrow", {"Retry-After": "86400"})
        else:
            self._send(404, b"<h1>Not Found</h1>")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Publisher)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def live(**kwargs) -> tuple[NewsFeedResource, list[float]]:
    resource = NewsFeedResource(mode="live", **kwargs)
    waits: list[float] = []
    resource._sleep = waits.append  # record the waits instead of sleeping through them
    return resource, waits


def test_conditional_get_sends_the_validators_and_a_304_means_unchanged(server):
    feeds, _ = live()
    with feeds.http_client() as client:
        first = feeds.fetch_feed(client, f"{server}/feed")
        attempts = []
        second = feeds.fetch_feed(client, f"{server}/feed", etag=first.etag, attempts=attempts)
    assert first.status == 200 and first.etag == ETAG and not first.not_modified
    assert "Café" in first.text  # decoded by the feed's own declaration, not as UTF-8
    assert second.not_modified and second.text == ""
    assert Publisher.seen[-1]["if-none-match"] == ETAG
    assert "rss+xml" in Publisher.seen[-1]["accept"] and "bizosaas" in Publisher.seen[-1]["user-agent"]
    assert [a.status for a in attempts] == [304]


def test_a_timeout_is_retried_and_then_reported(server):
    feeds, waits = live(timeout_s=0.2, max_attempts=2, backoff_s=0.5)
    attempts = []
    with (
        feeds.http_client() as client,
        pytest.raises(SourceError, match=r"timed out after 0.2 s \(gave up after 2"),
    ):
        feeds.fetch_feed(client, f"{server}/slow", attempts=attempts)
    assert [a.status for a in attempts] == [0, 0] and waits == [0.5]


def test_retry_after_is_honoured_and_a_too_long_one_fails_now(server):
    feeds, waits = live(max_wait_s=60)
    with feeds.http_client() as client:
        attempts = []
        answer = feeds.fetch_feed(client, f"{server}/limited", attempts=attempts)
        assert answer.status == 200 and waits == [3.0] and [a.status for a in attempts] == [429, 200]
        with pytest.raises(SourceError, match="asks to wait 86400 s, more than this run's max_wait_s=60"):
            feeds.fetch_feed(client, f"{server}/very-limited")


def test_a_gone_feed_and_an_oversized_body_are_refused_without_retries(server):
    feeds, waits = live(max_bytes=100)
    with feeds.http_client() as client:
        with pytest.raises(SourceError, match="HTTP 404: the feed is gone"):
            feeds.fetch_feed(client, f"{server}/nowhere")
        with pytest.raises(SourceError, match="exceeds max_bytes=100"):
            feeds.fetch_feed(client, f"{server}/feed")
    assert waits == []
