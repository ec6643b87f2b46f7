import json

import httpx
import pytest

from orchestration.replay import (
    RecordingTransport,
    ReplayTransport,
    UnrecordedRequestError,
    request_signature,
    transport_for,
)
from orchestration.settings import PROJECT_ROOT
from orchestration.sources import HttpSourceResource

NOMINATIM = "https://nominatim.openstreetmap.org/search"
PARAMS = {
    "q": "coffee in Austin, TX",
    "format": "jsonv2",
    "addressdetails": 1,
    "extratags": 1,
    "namedetails": 1,
    "limit": 40,
}


class NominatimProbe(HttpSourceResource):
    source = "nominatim"


def test_replay_serves_recorded_responses_in_order_through_the_client():
    client = NominatimProbe(mode="replay").http_client()
    # parameter order does not matter; the recording holds a 429 and then the answer
    first = client.get(NOMINATIM, params=dict(reversed(list(PARAMS.items()))))
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    second = client.get(NOMINATIM, params=PARAMS)
    assert second.status_code == 200
    names = [place["name"] for place in second.json()]
    assert names == ["Café Olé Congress", "Hyde Park Roasters"]
    # the last recorded response repeats
    assert client.get(NOMINATIM, params=PARAMS).json() == second.json()
    assert client.headers["User-Agent"].startswith("bizosaas-data-platform/")


def test_unrecorded_request_fails_clearly_naming_the_request():
    client = NominatimProbe(mode="replay").http_client()
    with pytest.raises(UnrecordedRequestError) as err:
        client.get(NOMINATIM, params={**PARAMS, "q": "tattoo in Reno, NV"})
    message = str(err.value)
    assert "GET https://nominatim.openstreetmap.org/search" in message
    assert "q=tattoo in Reno, NV" in message
    assert "BIZOSAAS_SOURCE_MODE=record" in message


def test_credentials_never_take_part_in_matching():
    a = request_signature("GET", "https://x.example/p?key=SECRET1&q=1", None, b"")
    b = request_signature("GET", "https://x.example/p?q=1&key=OTHER", None, b"")
    assert a == b and "SECRET" not in a
    body1 = request_signature("POST", "https://x.example/g", None, b'{"b": 1, "a": [1, 2]}')
    body2 = request_signature("POST", "https://x.example/g", None, b'{"a":[1,2],"b":1}')
    assert body1 == body2
    assert body1 != request_signature("POST", "https://x.example/g", None, b'{"a":[2,1],"b":1}')


def test_record_mode_writes_a_redacted_fixture_that_replays(tmp_path):
    def upstream(request: httpx.Request) -> httpx.Response:
        assert request.url.params["key"] == "sk-live-123"
        return httpx.Response(200, json={"rates": {"EUR": 0.92}}, headers={"Set-Cookie": "session=abc"})

    recorder = RecordingTransport(tmp_path, inner=httpx.MockTransport(upstream))
    with httpx.Client(transport=recorder) as client:
        live = client.get("https://fx.example/v6/latest", params={"base": "USD", "key": "sk-live-123"})
    assert live.json() == {"rates": {"EUR": 0.92}}
    saved = list(tmp_path.glob("*.json"))
    assert len(saved) == 1
    text = saved[0].read_text()
    assert "sk-live-123" not in text and "session=abc" not in text
    with httpx.Client(transport=ReplayTransport(tmp_path)) as client:
        replayed = client.get("https://fx.example/v6/latest", params={"base": "USD", "key": "other"})
    assert replayed.json() == {"rates": {"EUR": 0.92}}


def test_malformed_fixture_and_unknown_mode_are_clear_errors(tmp_path):
    (tmp_path / "broken.json").write_text(json.dumps({"request": {"url": "https://x.example"}}))
    with pytest.raises(Exception, match="broken.json is not a valid recording"):
        ReplayTransport(tmp_path)
    with pytest.raises(Exception, match="unknown source mode 'offline'"):
        transport_for("offline", tmp_path)
    with pytest.raises(Exception, match="no recorded responses"):
        transport_for("replay", tmp_path / "absent")
    assert transport_for("live", tmp_path) is None


def test_every_bundled_fixture_loads():
    for directory in (PROJECT_ROOT / "fixtures").iterdir():
        # drops*/ hold file exports for the drop folder and knowledge/ the labelled retrieval
        # queries, not recorded HTTP exchanges
        if directory.is_dir() and not directory.name.startswith("drops") and directory.name != "knowledge":
            assert ReplayTransport(directory)._recordings, directory
