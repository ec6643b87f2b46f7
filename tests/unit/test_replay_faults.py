import json
import threading

import httpx
import pytest

from orchestration.errors import PlatformError
from orchestration.replay import (
    FAULT_HEADER,
    FaultInjector,
    ReplayTransport,
    faults_from_env,
    parse_faults,
    transport_for,
)
from orchestration.settings import ENV_REPLAY_FAULT_SEED, ENV_REPLAY_FAULTS
from orchestration.sources import HttpSourceResource, SourceError, json_body, retry_on_status

URL = "https://api.example/items"


class ScriptedFaults(FaultInjector):
    """Faults in a given order (None = the recorded answer), for exact sequences."""

    def __init__(self, script: list[tuple[str | None, float]]):
        super().__init__({})
        self.script = list(script)

    def draw(self):
        return self.script.pop(0) if self.script else (None, 0.0)


@pytest.fixture
def recorded(tmp_path):
    source = tmp_path / "probe"
    source.mkdir()
    doc = {
        "request": {"method": "GET", "url": URL},
        "responses": [{"status": 200, "json": {"items": [1, 2, 3], "page": 1}},
                      {"status": 200, "json": {"items": [4, 5], "page": 2}}],
    }  # fmt: skip
    (source / "items.json").write_text(json.dumps(doc))
    return tmp_path


class Probe(HttpSourceResource):
    source = "probe"


def _client(fixtures, faults):
    return httpx.Client(transport=ReplayTransport(fixtures / "probe", faults=faults))


def test_parse_faults_reads_rates_and_rejects_bad_input_naming_the_setting():
    assert parse_faults("429=0.03, timeout=0.02,MALFORMED=0.02") == {
        "429": 0.03,
        "timeout": 0.02,
        "malformed": 0.02,
    }
    assert parse_faults("") == {} and parse_faults(" , ") == {}
    for text, fragment in [
        ("503=0.1", "kind=probability"),
        ("timeout", "kind=probability"),
        ("429=lots", "not a number"),
        ("429=1.5", "between 0 and 1"),
        ("429=nan", "between 0 and 1"),
        ("429=0.1,429=0.2", "given twice"),
        ("429=0.6,timeout=0.5", "more than 1"),
    ]:
        with pytest.raises(PlatformError, match=fragment) as err:
            parse_faults(text)
        assert ENV_REPLAY_FAULTS in str(err.value)


def test_injection_rates_match_the_configuration_and_a_seed_repeats_them():
    rates = {"429": 0.2, "timeout": 0.1, "malformed": 0.05}
    n = 20_000
    injector = FaultInjector(rates, seed=7)
    draws = [injector.draw()[0] for _ in range(n)]
    for kind, rate in rates.items():
        # within 4 standard deviations of a binomial count
        sd = (n * rate * (1 - rate)) ** 0.5
        assert abs(draws.count(kind) - n * rate) < 4 * sd, kind
        assert injector.injected[kind] == draws.count(kind)
    assert draws.count(None) == n - sum(injector.injected.values())
    again = FaultInjector(rates, seed=7)
    assert [again.draw()[0] for _ in range(n)] == draws
    assert FaultInjector({"429": 0.0}).draw()[0] is None


def test_concurrent_draws_are_all_counted():
    injector = FaultInjector({"429": 0.5}, seed=1)
    hits: list[int] = []

    def worker():
        hits.append(sum(injector.draw()[0] == "429" for _ in range(2_000)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert injector.draws == 16_000
    assert injector.injected["429"] == sum(hits)


def test_each_fault_replaces_the_answer_without_consuming_the_recording(recorded):
    faults = ScriptedFaults(
        [
            ("429", 0.0),
            ("timeout", 0.0),
            ("malformed", 0.1),
            (None, 0.0),
            ("malformed", 0.5),
            ("malformed", 0.9),
        ]
    )
    client = _client(recorded, faults)
    throttled = client.get(URL)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.headers[FAULT_HEADER] == "429"
    with pytest.raises(httpx.ReadTimeout):
        client.get(URL)
    truncated = client.get(URL)
    # the recorded status, half the recorded body: not JSON any more
    assert truncated.status_code == 200 and json.dumps({"items": [1, 2, 3], "page": 1}).startswith(
        truncated.text
    )
    with pytest.raises(ValueError):
        truncated.json()
    # the faults consumed nothing: the first recorded answer comes now, then the second
    assert client.get(URL).json()["page"] == 1
    gateway = client.get(URL)
    assert gateway.status_code == 502 and "502 Bad Gateway" in gateway.text
    challenge = client.get(URL)
    assert challenge.status_code == 200 and challenge.headers["content-type"].startswith("text/html")
    assert client.get(URL).json()["page"] == 2


def test_the_source_client_retries_throttles_timeouts_and_gateway_pages_then_gets_the_data(recorded):
    probe = Probe(mode="replay", fixtures_dir=str(recorded))
    waits: list[float] = []
    probe._sleep = waits.append
    client = _client(recorded, ScriptedFaults([("429", 0.0), ("timeout", 0.0), ("malformed", 0.5)]))

    def classify(response):
        retry_on_status(response)
        return json_body(response, "probe")

    attempts = []
    body = probe.fetch(client, client.build_request("GET", URL), classify, attempts=attempts)
    assert body["page"] == 1
    assert [a.status for a in attempts] == [429, 0, 502, 200]
    assert waits == [1.0, 2.0, 4.0]  # Retry-After, then the doubling backoff


def test_a_truncated_body_fails_the_fetch_with_a_clear_reason(recorded):
    probe = Probe(mode="replay", fixtures_dir=str(recorded))
    client = _client(recorded, ScriptedFaults([("malformed", 0.0)]))
    with pytest.raises(SourceError, match=r"malformed response body from probe \(HTTP 200\)"):
        probe.fetch(client, client.build_request("GET", URL), lambda r: json_body(r, "probe"))


def test_faults_come_from_the_environment_only_when_set(recorded, monkeypatch):
    monkeypatch.delenv(ENV_REPLAY_FAULTS, raising=False)
    assert faults_from_env() is None
    assert transport_for("replay", recorded / "probe").faults is None
    monkeypatch.setenv(ENV_REPLAY_FAULTS, "429=0,timeout=0")
    assert faults_from_env() is None
    monkeypatch.setenv(ENV_REPLAY_FAULTS, "429=1")
    monkeypatch.setenv(ENV_REPLAY_FAULT_SEED, "3")
    injector = faults_from_env()
    assert injector is not None and injector is faults_from_env()  # one per process
    transport = transport_for("replay", recorded / "probe")
    assert transport.faults is injector
    assert httpx.Client(transport=transport).get(URL).status_code == 429
    monkeypatch.setenv(ENV_REPLAY_FAULT_SEED, "abc")
    with pytest.raises(PlatformError, match=ENV_REPLAY_FAULT_SEED):
        faults_from_env()
    monkeypatch.setenv(ENV_REPLAY_FAULTS, "bogus")
    monkeypatch.setenv(ENV_REPLAY_FAULT_SEED, "3")
    with pytest.raises(PlatformError, match=ENV_REPLAY_FAULTS):
        transport_for("replay", recorded / "probe")
