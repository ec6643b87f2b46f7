"""The knowledge layer's pure parts: entity texts and hashes, the incremental plan, training labels,
and the API embedder replayed from fixtures/embeddings_api through the real client
(fixtures/generate_embeddings_api.py)."""

import re
from datetime import date

import numpy as np
import pytest

from fixtures.generate_embeddings_api import BASE_URL, DIM, MODEL, SCENARIO_TEXTS, vector
from ml.knowledge.entities import (
    business_entity,
    campaign_entity,
    content_hash,
    game_entity,
    lead_entity,
    product_entity,
)
from ml.knowledge.incremental import chunks, plan_embeddings
from ml.knowledge.training import label_balance, training_labels
from orchestration.embedding_model import ApiEmbedder, EmbeddingModelResource
from orchestration.settings import ENV_EMBEDDING_API_KEY, PROJECT_ROOT
from orchestration.sources import SourceError

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")

LEAD_ROW = {
    "lead_id": "l-1", "company_name": "Harbor Cafe", "source": "paid_search", "campaign_id": "c-1",
    "campaign_name": "Spring Search", "status": "won",
    # Personal fields a careless query might hand over: none may reach the text.
    "email": "ana.lopez@harborcafe.com", "phone": "+1 512 555 0100", "name": "Ana Lopez",
}  # fmt: skip


def test_entity_texts_follow_their_templates_and_carry_no_personal_data():
    lead = lead_entity(LEAD_ROW)
    assert lead.text == "Lead at Harbor Cafe from paid search via campaign Spring Search. Status: won."
    business = business_entity({"business_id": "b-1", "name": "Blue Door Bakery", "category": "food",
                                "subcategory": "bakery", "cuisine": None, "city": "Austin", "state": "TX",
                                "phone": "+1 512 555 0199", "email": "hello@bluedoor.example"})  # fmt: skip
    game = game_entity({"igdb_id": 7, "name": "Elden Ring", "genres": ["RPG"], "platforms": ["PC"],
                        "release_date": date(2022, 2, 25)})  # fmt: skip
    product = product_entity(
        {"product_id": "p-1", "name": "Grinder", "category": "Kitchen", "product_type": None}
    )
    campaign = campaign_entity({"campaign_id": "c-1", "name": "Spring Search", "channel": "paid_search",
                                "segment": "SMB owners"})  # fmt: skip
    for entity in (lead, business, game, product, campaign):
        assert not EMAIL.search(entity.text) and not PHONE.search(entity.text), entity.text
        assert "Ana" not in entity.text and "Lopez" not in entity.text
    assert [e.text.split(".")[0] for e in (business, product, campaign)] == [
        "Blue Door Bakery", "Grinder", "Campaign Spring Search"]  # fmt: skip
    assert "email" not in lead.raw and "phone" not in lead.raw and "name" not in lead.raw
    assert game.text == "Elden Ring. Video game. Genres: RPG. Platforms: PC. Released 2022."


def test_the_hash_changes_with_the_text_and_only_with_it():
    lead = lead_entity(LEAD_ROW)
    same_text = lead_entity({**LEAD_ROW, "email": "other@example.com", "lead_id": "l-2"})
    assert same_text.text == lead.text and same_text.content_hash == lead.content_hash
    closed = lead_entity({**LEAD_ROW, "status": "lost"})
    assert closed.text != lead.text and closed.content_hash != lead.content_hash
    assert lead.content_hash == content_hash(lead.text) and len(lead.content_hash) == 64


def test_the_plan_embeds_only_new_and_changed_and_drops_the_gone():
    entities = [lead_entity({**LEAD_ROW, "lead_id": f"l-{i}", "company_name": f"Co {i}"}) for i in range(5)]
    stored = {("lead", e.entity_id): e.content_hash for e in entities[:4]}
    stored[("lead", "l-1")] = "stale"
    stored[("lead", "l-9")] = "of a deleted lead"
    plan = plan_embeddings(entities, stored)
    assert [e.entity_id for e in plan.new] == ["l-4"] and [e.entity_id for e in plan.changed] == ["l-1"]
    assert [e.entity_id for e in plan.todo] == ["l-1", "l-4"]  # the entities' order, not by kind
    assert plan.unchanged == 3 and plan.gone == [("lead", "l-9")]
    nothing = plan_embeddings(entities, {("lead", e.entity_id): e.content_hash for e in entities})
    assert nothing.todo == [] and nothing.gone == [] and nothing.unchanged == 5
    with pytest.raises(ValueError, match="twice"):
        plan_embeddings([entities[0], entities[0]], {})
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]


def test_training_labels_come_only_from_real_signals():
    won, open_lead = lead_entity(LEAD_ROW), lead_entity({**LEAD_ROW, "status": "open"})
    assert training_labels(won) == ({"outcome": "won"}, 1.0)
    assert training_labels(lead_entity({**LEAD_ROW, "status": "lost"})) == ({"outcome": "lost"}, 0.0)
    assert training_labels(open_lead) is None
    game = game_entity({"igdb_id": 1, "name": "G", "genres": ["RPG", "Adventure"], "platforms": []})
    assert training_labels(game) == ({"genres": ["RPG", "Adventure"]}, None)
    assert training_labels(game_entity({"igdb_id": 2, "name": "H", "genres": [], "platforms": []})) is None
    campaign = campaign_entity({"campaign_id": "c", "name": "C", "channel": "email"})
    assert training_labels(campaign) == ({"channel": "email"}, None)
    rows = [{"data_type": "game", "labels": {"genres": ["RPG", "Adventure"]}},
            {"data_type": "game", "labels": {"genres": ["RPG"]}}]  # fmt: skip
    assert label_balance(rows) == {"game": {"genres=RPG": 2, "genres=Adventure": 1}}


def api(**kwargs) -> tuple[EmbeddingModelResource, list[float]]:
    resource = EmbeddingModelResource(
        mode="replay",
        fixtures_dir=str(PROJECT_ROOT / "fixtures"),
        base_url=BASE_URL,
        backoff_s=0.01,
        **kwargs,
    )
    waits: list[float] = []
    object.__setattr__(resource, "_sleep", waits.append)
    return resource, waits


def test_the_api_embedder_returns_unit_rows_in_input_order():
    resource, waits = api(api_key="sk-replay-never-recorded")
    embedder = resource.embedder(MODEL)
    assert isinstance(embedder, ApiEmbedder) and embedder.dim == DIM == 1536
    texts = SCENARIO_TEXTS["ok"]
    # The recording answers in reverse order and texts repeat (sent once): rows follow the input.
    asked = [*texts, texts[0], texts[2]]
    vectors = embedder.embed(asked)
    expected = np.array([vector(t) for t in asked], dtype=np.float32)
    assert vectors.shape == (5, DIM) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-6)
    assert len(embedder.attempts) == 1 and embedder.usage_tokens > 0 and waits == []


def test_a_429_is_retried_after_its_retry_after():
    resource, waits = api()
    vectors = resource.embedder(MODEL).embed(SCENARIO_TEXTS["rate_limited"])
    assert vectors.shape == (2, DIM) and waits == [1.0]


def test_a_malformed_answer_and_a_refused_key_fail_clearly():
    resource, _ = api()
    with pytest.raises(SourceError, match="malformed response body from the embeddings API") as malformed:
        resource.embedder(MODEL).embed(SCENARIO_TEXTS["malformed"])
    assert not malformed.value.retryable and len(malformed.value.attempts) == 1
    with pytest.raises(SourceError, match=f"refused the key.*check {ENV_EMBEDDING_API_KEY}"):
        resource.embedder(MODEL).embed(SCENARIO_TEXTS["unauthorized"])


def test_an_unknown_model_is_refused_with_the_choices():
    resource, _ = api()
    with pytest.raises(ValueError, match="text-embedding-3-small"):
        resource.embedder("text-embedding-3-large")


def test_embeddings_of_a_tenant_depend_on_its_partitions_of_each_domain_it_has():
    from dagster import AssetKey, DagsterInstance

    from assets import knowledge
    from orchestration.partitions import tenant_partitions

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(knowledge.knowledge_partitions.name, ["thrillring", "bizoholic"])
        instance.add_dynamic_partitions(tenant_partitions("gaming").name, ["thrillring"])
        instance.add_dynamic_partitions(tenant_partitions("directory").name, ["bizoholic"])
        wanted = knowledge.knowledge_partitions.subset_with_partition_keys(["thrillring"])
        for upstream, domain, found in (("game_catalogue", "gaming", ["thrillring"]),
                                        ("businesses_master", "directory", [])):  # fmt: skip
            mapping = knowledge.embeddings.get_partition_mapping(AssetKey(upstream))
            result = mapping.get_upstream_mapped_partitions_result_for_partitions(
                wanted,
                knowledge.knowledge_partitions,
                tenant_partitions(domain),
                dynamic_partitions_store=instance,
            )
            assert sorted(result.partitions_subset.get_partition_keys()) == found
