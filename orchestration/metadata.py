"""Materialization metadata helpers shared by every domain's assets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import MetadataValue


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = ", ".join(map(str, value))
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:80]


def preview_table(rows: Sequence[Mapping[str, Any]], limit: int = 10) -> MetadataValue:
    """The first `limit` rows as a Markdown table (rendered in the Dagster UI)."""
    rows = list(rows)[:limit]
    if not rows:
        return MetadataValue.md("_no rows_")
    columns = list(rows[0].keys())
    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
        *("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows),
    ]
    return MetadataValue.md("\n".join(lines))
