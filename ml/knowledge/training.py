"""Labels of the plan's `ai_training_data` rows: what each entity type is known to be.

Only real signals become labels: a lead's outcome once it is closed (won/lost, also its feedback
score), a game's genres, a business's category, a product's category, a campaign's channel. An
entity without such a signal (an open lead, a game without genres) is not a training row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ml.knowledge.entities import BUSINESS, CAMPAIGN, GAME, LEAD, PRODUCT, Entity

CLOSED_OUTCOMES = {"won": 1.0, "lost": 0.0}


def training_labels(entity: Entity) -> tuple[dict[str, Any], float | None] | None:
    """(labels, feedback_score) of `entity`, or None when it carries no label."""
    attrs = entity.attrs
    if entity.entity_type == LEAD:
        status = attrs.get("status")
        if status in CLOSED_OUTCOMES:
            return {"outcome": status}, CLOSED_OUTCOMES[status]
        return None
    if entity.entity_type == GAME:
        genres = list(attrs.get("genres") or ())
        return ({"genres": genres}, None) if genres else None
    if entity.entity_type == BUSINESS:
        if not attrs.get("category"):
            return None
        return {"category": attrs["category"], "subcategory": attrs.get("subcategory") or None}, None
    if entity.entity_type == PRODUCT:
        return ({"category": attrs["category"]}, None) if attrs.get("category") else None
    if entity.entity_type == CAMPAIGN:
        return ({"channel": attrs["channel"]}, None) if attrs.get("channel") else None
    return None


def label_balance(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per data_type, how often each label value occurs (genres counted one by one)."""
    balance: dict[str, Counter] = {}
    for row in rows:
        counter = balance.setdefault(row["data_type"], Counter())
        for name, value in row["labels"].items():
            for item in value if isinstance(value, list) else [value]:
                counter[f"{name}={item}"] += 1
    return {kind: dict(counter.most_common(10)) for kind, counter in sorted(balance.items())}
