"""Query-parameter helpers every route's filters share: blank text, time zones, LIKE patterns."""

from __future__ import annotations

from datetime import UTC, datetime

from serving.errors import ApiError


def clean_text(value: str | None, name: str) -> str | None:
    """`value` with its whitespace collapsed; a blank one is a 422 naming the parameter."""
    if value is None:
        return None
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ApiError(422, f"{name}: must not be blank")
    return cleaned


def as_utc(moment: datetime, name: str) -> datetime:
    """In UTC (naive means UTC): Postgres refuses offsets beyond ±16 h that Python accepts."""
    try:
        return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)
    except OverflowError:
        raise ApiError(422, f"{name}: {moment.isoformat()} is out of range") from None


def escape_like(text: str) -> str:
    """`text` matched literally inside a LIKE/ILIKE pattern (backslash is Postgres' default escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
