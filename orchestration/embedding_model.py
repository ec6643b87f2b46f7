"""Which embedding model the knowledge layer uses, as a resource the assets and the API share.

`BIZOSAAS_EMBEDDING_MODEL` picks it (default all-MiniLM-L6-v2, local and offline); a tenant may
override it with `knowledge.embedding_model` in its settings. text-embedding-3-small goes to an
OpenAI-compatible endpoint (`BIZOSAAS_EMBEDDING_BASE_URL`, `BIZOSAAS_EMBEDDING_API_KEY`).
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from ml.knowledge.embedders import LOCAL_MODELS, MINILM, Embedder, MiniLmEmbedder, model_dim
from orchestration.knowledge_settings import KnowledgeSettings
from orchestration.settings import ENV_EMBEDDING_API_KEY, ENV_EMBEDDING_BASE_URL, ENV_EMBEDDING_MODEL


class EmbeddingModelResource(ConfigurableResource):
    model: str = Field(default=MINILM, description=f"Default embedding model ({ENV_EMBEDDING_MODEL}).")
    base_url: str = Field(
        default="https://api.openai.com/v1",
        description=f"OpenAI-compatible endpoint for API models ({ENV_EMBEDDING_BASE_URL}).",
    )
    api_key: str | None = Field(
        default=None, description=f"Bearer key for API models ({ENV_EMBEDDING_API_KEY})."
    )
    batch_size: int = Field(default=64, ge=1, description="Texts per forward pass (local models).")

    def model_for(self, knowledge: KnowledgeSettings) -> str:
        """The tenant's model: its `knowledge.embedding_model` setting, else the default."""
        chosen = knowledge.embedding_model or self.model
        model_dim(chosen)  # unknown models fail here, with the choices
        return chosen

    def embedder(self, model: str | None = None) -> Embedder:
        model = model or self.model
        model_dim(model)
        if model in LOCAL_MODELS:
            return MiniLmEmbedder(batch_size=self.batch_size)
        raise NotImplementedError(f"API embedding model {model!r}: see issue 7 (embeddings part)")
