"""What an embeddings run has to do: the diff between a tenant's entities and its stored vectors.

Content hashes (entities.content_hash: the template version and the text) decide everything: an
entity whose hash matches its stored vector is left alone, so a re-run with nothing changed embeds
nothing, and a model switch (a new, empty space) embeds everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ml.knowledge.entities import Entity

T = TypeVar("T")


@dataclass(frozen=True)
class EmbeddingPlan:
    new: list[Entity]  # no vector yet
    changed: list[Entity]  # a vector of another text (hash differs)
    unchanged: int
    gone: list[tuple[str, str]]  # (entity_type, entity_id) of vectors whose entity disappeared

    todo: list[Entity]  # new and changed, in the order the entities were given (type, then id)


def plan_embeddings(entities: Sequence[Entity], stored: Mapping[tuple[str, str], str]) -> EmbeddingPlan:
    """Compare `entities` with `stored` ((entity_type, entity_id) -> content_hash)."""
    new: list[Entity] = []
    changed: list[Entity] = []
    todo: list[Entity] = []
    unchanged = 0
    seen: set[tuple[str, str]] = set()
    for entity in entities:
        key = (entity.entity_type, entity.entity_id)
        if key in seen:
            raise ValueError(f"entity {entity.key} appears twice")
        seen.add(key)
        digest = stored.get(key)
        if digest is None:
            new.append(entity)
        elif digest != entity.content_hash:
            changed.append(entity)
        else:
            unchanged += 1
            continue
        todo.append(entity)
    gone = sorted(set(stored) - seen)
    return EmbeddingPlan(new, changed, unchanged, gone, todo)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def count_by_type(entities: Sequence[Entity]) -> dict[str, int]:
    return dict(sorted(Counter(e.entity_type for e in entities).items()))
