"""Answers to knowledge searches: grounded on the retrieved entities, through the real LLM client
replaying recorded OpenAI responses (fixtures/generate_knowledge_llm.py)."""

from fixtures.generate_knowledge_llm import BASE_URL, FOREIGN, MODEL, QUESTIONS, scenario_results
from ml.knowledge.answer import check_answer, grounding_payload
from orchestration.llm import LlmResource
from orchestration.settings import PROJECT_ROOT
from serving.routes.brain import generate_answer


def llm():
    return LlmResource(mode="replay", fixtures_dir=str(PROJECT_ROOT / "fixtures"), base_url=BASE_URL,
                       model=MODEL, backoff_s=0, max_attempts=1)  # fmt: skip


def test_citations_of_entities_not_retrieved_are_dropped():
    payload = grounding_payload("q", scenario_results())
    kept, other = payload["entities"][0]["key"], "game:1"
    answer = check_answer(f"Try this one [{kept}] and that one [{other}].", payload, "m")
    assert answer.status == "ok" and answer.citations == (kept,) and answer.dropped == (other,)
    assert answer.text == f"Try this one [{kept}] and that one."
    assert check_answer(f"Only [{other}].", payload, "m").status == "rejected"
    assert check_answer("   ", payload, "m").reason == "the model returned an empty answer"


def test_a_configured_endpoint_answers_citing_the_results():
    answer = generate_answer(llm(), QUESTIONS["rag_ok"], scenario_results())
    assert answer.status == "ok" and answer.model == "gpt-4o-mini-2024-07-18"
    assert answer.citations == tuple(r.key for r in scenario_results()) and not answer.dropped


def test_a_foreign_citation_is_removed_and_an_uncited_answer_dropped():
    answer = generate_answer(llm(), QUESTIONS["rag_foreign"], scenario_results())
    assert answer.status == "ok" and answer.dropped == (FOREIGN,) and FOREIGN not in answer.text
    uncited = generate_answer(llm(), QUESTIONS["rag_uncited"], scenario_results())
    assert uncited.status == "rejected" and uncited.text is None


def test_no_endpoint_no_results_and_a_failing_endpoint():
    assert generate_answer(None, "q", scenario_results()).status == "not configured"
    assert generate_answer(llm(), "q", []).status == "rejected"
    # No recording answers this question: the client fails and the results stand alone.
    failed = generate_answer(llm(), "a question nobody recorded", scenario_results())
    assert failed.status == "failed" and failed.reason
