"""The optional narrative: grounded prompts, the number check, and the chat endpoint's answers
replayed from fixtures/llm through the real client (fixtures/generate_llm.py)."""

import json
import logging

import pytest

from assets.crm_insights import narrate
from fixtures.generate_llm import BASE_URL, END, MODEL, START, scenario_payload, scenario_tenant
from ml.crm.insights import compute_insights, inputs_from_history
from ml.crm.narrative import chat_messages, check_narrative, numbers_in, ungrounded_numbers
from ml.crm.synthetic import generate_history
from orchestration.llm import LlmResource
from orchestration.settings import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "fixtures"
LOG = logging.getLogger("test_llm_narrative")


def insights_for(name: str):
    tenant = scenario_tenant(name)
    history = generate_history(tenant, START, END)
    return tenant, compute_insights(*inputs_from_history(history), now=history.now)


def llm(**kwargs) -> tuple[LlmResource, list[float]]:
    resource = LlmResource(
        mode="replay", fixtures_dir=str(FIXTURES), base_url=BASE_URL, model=MODEL, backoff_s=0.01, **kwargs
    )
    waits: list[float] = []
    object.__setattr__(resource, "_sleep", waits.append)
    return resource, waits


def recorded_answer(name: str) -> str:
    doc = json.loads((FIXTURES / "llm" / f"chat_completions_{name}.json").read_text())
    return doc["responses"][-1]["json"]["choices"][0]["message"]["content"]


def test_numbers_are_read_as_people_write_them():
    quoted = numbers_in("Spend $3,071.98 on #3 gave 49.6% (+19.8 pp, CI +11.4..+28.1) in 2026-09-26")
    assert [q.value for q in quoted] == [3071.98, 3, 49.6, 19.8, 11.4, 28.1, 2026, 9, 26]
    assert [q.decimals for q in quoted][:3] == [2, 0, 1]


def test_a_number_is_grounded_only_within_its_own_rounding():
    payload = {"rate": "29.8%", "uplift": "-21.5 pp", "spend": "3,240.18 USD"}
    assert ungrounded_numbers("29.8% and fell 21.5 points; about 30% overall; $3,240.18", payload) == []
    assert ungrounded_numbers("about 31%", payload) == ["31"]
    assert ungrounded_numbers("29.9%", payload) == ["29.9"]
    assert check_narrative("   ", payload, "m").status == "rejected"


def test_the_prompt_holds_only_the_figures_and_says_to_use_no_other_facts():
    tenant, insights = insights_for("ok")
    messages = chat_messages(scenario_payload("ok"))
    assert "ONLY the facts in the JSON" in messages[0]["content"]
    payload = json.loads(messages[1]["content"])
    assert payload["tenant"] == tenant and payload["leads_counted"] == insights.leads
    assert payload["recommendations"] == [r.text for r in insights.recommendations]


def test_not_configured_sends_nothing():
    resource = LlmResource(mode="live", base_url=None, model=None)  # live: a request would leave the machine
    tenant, insights = insights_for("ok")
    narrative, calls = narrate(resource, tenant, insights, LOG)
    assert (narrative.label, narrative.text, calls) == ("not configured", None, 0)
    with pytest.raises(RuntimeError, match="not configured"):
        resource.complete([{"role": "user", "content": "hi"}])


def test_a_grounded_answer_is_kept():
    resource, waits = llm(api_key="sk-replay-never-recorded")
    tenant, insights = insights_for("ok")
    narrative, calls = narrate(resource, tenant, insights, LOG)
    assert narrative.status == "ok" and calls == 1 and waits == []
    assert narrative.text == recorded_answer("ok")
    assert narrative.model == "gpt-4o-mini-2024-07-18"  # the model that answered, as the API says


def test_a_429_waits_the_retry_after_then_succeeds():
    resource, waits = llm()
    tenant, insights = insights_for("rate_limited")
    narrative, calls = narrate(resource, tenant, insights, LOG)
    assert narrative.status == "ok" and calls == 2 and waits == [1.0]


def test_server_errors_give_up_after_the_attempts_and_keep_the_figures():
    resource, waits = llm()
    tenant, insights = insights_for("server_error")
    before = list(insights.recommendations)
    narrative, calls = narrate(resource, tenant, insights, LOG)
    assert narrative.status == "failed" and narrative.text is None
    assert calls == resource.max_attempts == 3 and len(waits) == 2
    assert "HTTP 500" in narrative.reason and "gave up after 3 attempts" in narrative.reason
    assert insights.recommendations == before


def test_a_malformed_body_is_rejected_without_retrying():
    resource, waits = llm()
    tenant, insights = insights_for("malformed")
    narrative, calls = narrate(resource, tenant, insights, LOG)
    assert narrative.status == "failed" and calls == 1 and waits == []
    assert "malformed response body" in narrative.reason


def test_an_answer_that_invents_a_number_is_dropped_with_the_reason():
    resource, _ = llm()
    tenant, insights = insights_for("invented")
    narrative, calls = narrate(resource, tenant, insights, LOG)
    assert narrative.status == "rejected" and narrative.text is None and calls == 1
    invented = recorded_answer("invented").rsplit(" to ", 1)[1].rstrip(".%")
    assert invented in narrative.reason and "not among the figures" in narrative.reason
    # Without its last sentence the same answer passes: only the invention sinks it.
    grounded = recorded_answer("invented").rsplit(" Doing so", 1)[0]
    assert check_narrative(grounded, scenario_payload("invented"), MODEL).status == "ok"
