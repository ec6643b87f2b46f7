"""Entities of the knowledge layer: what each modelled row becomes, and the text it is embedded as.

Every entity has a type, an id (its key in its own table), a label, the text that is embedded,
and the attributes the graph builder links on. The text templates are the documented contract
(README, "Knowledge layer"): changing one changes `TEMPLATE_VERSION`, and with it every content
hash, so the next run re-embeds exactly the entities whose text changed.

Texts leave out personal data (emails, phone numbers, names of people): they describe what an
entity is, which is what retrieval matches on.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TEMPLATE_VERSION = "1"

BUSINESS, GAME, PRODUCT, LEAD, CAMPAIGN = "business", "game", "product", "lead", "campaign"
ENTITY_TYPES = (BUSINESS, GAME, PRODUCT, LEAD, CAMPAIGN)

# Graph node types of the entities (the graph adds Tenant, Category, City, Genre, ...).
NODE_TYPES = {BUSINESS: "Business", GAME: "Game", PRODUCT: "Product", LEAD: "Lead", CAMPAIGN: "Campaign"}

TEMPLATES = {
    BUSINESS: "{name}. {subcategory} ({category}){cuisine} in {place}.",
    GAME: "{name}. Video game{genres}{platforms}{released}.",
    PRODUCT: "{name}. {product_type} in {category}.",
    LEAD: "Lead{company} from {source}{campaign}. Status: {status}.",
    CAMPAIGN: "Campaign {name}. Channel: {channel}{segment}.",
}


@dataclass(frozen=True)
class Entity:
    entity_type: str
    entity_id: str
    label: str
    text: str
    # Graph attributes: scalar strings or tuples of strings (category, city, genres, ...).
    attrs: Mapping[str, Any] = field(default_factory=dict)
    # The source fields the text was built from (ai_training_data.raw_data).
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return node_key(self.entity_type, self.entity_id)

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def node_key(node_type: str, node_id: str) -> str:
    """'<type>:<id>' with the type in lower case: the graph's and the API's entity key."""
    return f"{node_type.lower()}:{node_id}"


def split_key(key: str) -> tuple[str, str]:
    node_type, sep, node_id = key.partition(":")
    if not sep or not node_type or not node_id:
        raise ValueError(f"not an entity key (<type>:<id>): {key!r}")
    return node_type, node_id


def content_hash(text: str) -> str:
    return hashlib.sha256(f"v{TEMPLATE_VERSION}\n{text}".encode()).hexdigest()


def slug(value: str) -> str:
    """A stable id for a named thing (a genre, a city): lower case ASCII words joined by '-'."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "unknown"


def _clean(value: Any) -> str:
    return " ".join(str(value).split()) if value not in (None, "") else ""


def _names(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in (_clean(x) for x in (values or ())) if v))


def _list(prefix: str, values: Sequence[str]) -> str:
    return f"{prefix}{', '.join(values)}" if values else ""


def _words(value: str) -> str:
    return value.replace("_", " ")


def business_entity(row: Mapping[str, Any]) -> Entity:
    name, category, subcategory = _clean(row["name"]), _clean(row["category"]), _clean(row["subcategory"])
    city, state = _clean(row.get("city")), _clean(row.get("state"))
    place = ", ".join(p for p in (city, state) if p) or "an unknown place"
    cuisine = _names(row.get("cuisine"))
    text = TEMPLATES[BUSINESS].format(
        name=name,
        subcategory=_words(subcategory).capitalize(),
        category=_words(category),
        cuisine=_list(", cuisine: ", cuisine),
        place=place,
    )
    attrs = {"category": category, "subcategory": subcategory, "city": city, "state": state}
    raw = {"name": name, "category": category, "subcategory": subcategory, "cuisine": list(cuisine),
           "city": city, "state": state}  # fmt: skip
    return Entity(BUSINESS, str(row["business_id"]), name, text, attrs, raw)


def game_entity(row: Mapping[str, Any]) -> Entity:
    name = _clean(row["name"])
    genres, platforms = _names(row.get("genres")), _names(row.get("platforms"))
    released = row.get("release_date")
    text = TEMPLATES[GAME].format(
        name=name,
        genres=_list(". Genres: ", genres),
        platforms=_list(". Platforms: ", platforms),
        released=f". Released {released.year}" if released else "",
    )
    attrs = {"genres": genres, "platforms": platforms}
    raw = {"name": name, "genres": list(genres), "platforms": list(platforms),
           "release_year": released.year if released else None}  # fmt: skip
    return Entity(GAME, str(row["igdb_id"]), name, text, attrs, raw)


def product_entity(row: Mapping[str, Any]) -> Entity:
    name = _clean(row["name"])
    category, product_type = _clean(row.get("category")), _clean(row.get("product_type"))
    text = TEMPLATES[PRODUCT].format(
        name=name, product_type=product_type or "Product", category=category or "no category"
    )
    attrs = {"category": category, "product_type": product_type}
    raw = {"name": name, "category": category, "product_type": product_type}
    return Entity(PRODUCT, str(row["product_id"]), name, text, attrs, raw)


def lead_entity(row: Mapping[str, Any]) -> Entity:
    """A lead is described by its company, source, campaign and status; never its email or name."""
    company, source, status = _clean(row.get("company_name")), _clean(row["source"]), _clean(row["status"])
    campaign_name, campaign_id = _clean(row.get("campaign_name")), _clean(row.get("campaign_id"))
    text = TEMPLATES[LEAD].format(
        company=f" at {company}" if company else "",
        source=_words(source),
        campaign=f" via campaign {campaign_name or campaign_id}" if campaign_id else "",
        status=status,
    )
    label = company or f"lead {row['lead_id']}"
    attrs = {"source": source, "campaign_id": campaign_id, "status": status, "company": company}
    raw = {"company": company, "source": source, "campaign_id": campaign_id, "status": status}
    return Entity(LEAD, str(row["lead_id"]), label, text, attrs, raw)


def campaign_entity(row: Mapping[str, Any]) -> Entity:
    name, channel, segment = _clean(row["name"]), _clean(row["channel"]), _clean(row.get("segment"))
    text = TEMPLATES[CAMPAIGN].format(
        name=name, channel=_words(channel), segment=f". Audience: {segment}" if segment else ""
    )
    attrs = {"channel": channel, "segment": segment}
    raw = {"name": name, "channel": channel, "segment": segment}
    return Entity(CAMPAIGN, str(row["campaign_id"]), name, text, attrs, raw)


BUILDERS = {
    BUSINESS: business_entity,
    GAME: game_entity,
    PRODUCT: product_entity,
    LEAD: lead_entity,
    CAMPAIGN: campaign_entity,
}
