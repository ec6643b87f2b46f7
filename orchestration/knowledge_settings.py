"""A tenant's `settings.knowledge`: one parser for the knowledge layer's assets and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import Failure

from ml.knowledge.embedders import MODEL_DIMS
from ml.knowledge.entities import ENTITY_TYPES
from orchestration.settings import ENV_EMBEDDING_MODEL
from orchestration.tenant_settings import settings_error, tenant_settings


@dataclass(frozen=True)
class KnowledgeSettings:
    embedding_model: str | None = None  # None: the platform default (BIZOSAAS_EMBEDDING_MODEL)
    similar_k: int = 5  # SIMILAR_TO edges per entity (its nearest of the same type)
    similar_min: float = 0.5  # ...with at least this cosine similarity
    similar_types: tuple[str, ...] = ("business", "game", "product", "campaign")


def knowledge_settings(tenant_id: str, settings: dict[str, Any]) -> KnowledgeSettings:
    """The tenant's knowledge settings (defaults where absent), or a Failure naming the bad key."""
    fail = settings_error(tenant_id, "knowledge")
    knowledge = settings.get("knowledge") or {}
    if not isinstance(knowledge, dict):
        raise fail("", "an object", knowledge)
    values: dict[str, Any] = {}
    if knowledge.get("embedding_model") is not None:
        model = knowledge["embedding_model"]
        if model not in MODEL_DIMS:
            raise fail("embedding_model", f"one of {', '.join(MODEL_DIMS)}", model)
        values["embedding_model"] = model
    if "similar_k" in knowledge:
        k = knowledge["similar_k"]
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 50:
            raise fail("similar_k", "a whole number between 0 and 50", k)
        values["similar_k"] = k
    if "similar_min" in knowledge:
        value = knowledge["similar_min"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not -1 <= value <= 1:
            raise fail("similar_min", "a cosine similarity between -1 and 1", value)
        values["similar_min"] = float(value)
    if "similar_types" in knowledge:
        types = knowledge["similar_types"]
        if not isinstance(types, list) or not set(types) <= set(ENTITY_TYPES):
            raise fail("similar_types", f"a list drawn from {', '.join(ENTITY_TYPES)}", types)
        values["similar_types"] = tuple(types)
    return KnowledgeSettings(**values)


def tenant_knowledge(warehouse, embedding_model, tenant_id: str) -> tuple[KnowledgeSettings, str]:
    """The tenant's knowledge settings and embedding model (its setting, else the platform
    default), or a Failure naming what is wrong."""
    knowledge = knowledge_settings(tenant_id, tenant_settings(warehouse, tenant_id))
    try:
        return knowledge, embedding_model.model_for(knowledge)
    except ValueError as exc:
        raise Failure(f"tenant {tenant_id!r}: {exc} ({ENV_EMBEDDING_MODEL})") from None
