"""CRM lead records -> leads: what a BottleCRM lead (or an export row) means, and how the records
of one person (same normalised email) become one lead.

A record is kept as received (`doc`: the CRM's own field names and values, e.g. source
"compaign", status "in process"); everything else is derived from the doc by `parse_record`, so
the merge history in core.crm_lead_records can always be re-read with the current rules.

Merge rules (`build_lead`): the records of one email_key, oldest first; the lead takes the
email, source and campaign of its first record, its earliest created_at, the latest updated_at,
and for every other field the first non-empty value (the most complete lead, never a blank
over a value). `source_records` counts the records. The lead's status comes from its outcomes
(`status_from_outcomes`), not from any one record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ml.crm.emails import email_key, lead_id_for
from ml.directory.normalize import normalize_phone

# BottleCRM's statuses (SOURCES.md 11a) -> the outcome a status means. `assigned` and `recycled`
# (and anything else) are open. A converted lead is won, a closed one lost; "in process" means a
# salesperson is working it: qualified.
STATUS_OUTCOMES = {"converted": "won", "closed": "lost", "in process": "qualified"}
OUTCOMES = ("qualified", "won", "lost")

# BottleCRM's sources (and the platform's own names, for export files) -> the platform's source.
# "compaign" (sic: the CRM's value) is resolved to the campaign's channel from utm_medium.
SOURCE_ALIASES = {
    "call": "cold_outbound",
    "email": "email",
    "existing customer": "referral",
    "partner": "referral",
    "public relations": "event",
    "other": "web",
    "compaign": "campaign",
    "campaign": "campaign",
}
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# The fields of a record that make a lead; `doc` may hold more (kept, unused).
DOC_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "source",
    "status",
    "created_at",
    "updated_at",
    "opportunity_amount",
    "campaign_id",
)


class RecordError(ValueError):
    """A record that cannot become a lead (no id, no creation time, not an email)."""


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_")


def normalise_source(raw: Any, utm_medium: str | None = None) -> str:
    """The platform's source for a CRM source value: campaign leads take their channel."""
    text = str(raw or "").strip().lower()
    source = SOURCE_ALIASES.get(text, _slug(text) or "unknown")
    if source == "campaign":
        return _slug(utm_medium) if utm_medium and _slug(utm_medium) else "campaign"
    return source


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"not a timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"not an ISO 8601 timestamp: {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _clean(value: Any) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _amount(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


@dataclass(frozen=True)
class SourceRecord:
    """One record of a lead, parsed: where it came from, and what it says."""

    origin: str  # 'api' or 'file:<sha256>'
    record_id: str
    doc: Mapping[str, Any]  # as received
    email_key: str | None
    email: str
    name: str | None
    phone: str | None
    company_name: str | None
    source: str
    campaign_id: str | None
    campaign_data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    outcome: str | None  # what the record's status says (API records), else None
    value: Decimal | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.origin, self.record_id)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.doc, sort_keys=True, default=str).encode()).hexdigest()


def parse_record(origin: str, record_id: str, doc: Mapping[str, Any]) -> SourceRecord:
    """A record from its doc (BottleCRM lead fields, or an export row with the same names).
    Raises RecordError when it has no creation time; `email_key` is None when the email is not
    an email (the caller sets such records aside)."""
    if not record_id:
        raise RecordError("the record has no id")
    created = parse_time(doc.get("created_at"))
    updated = parse_time(doc["updated_at"]) if doc.get("updated_at") else created
    custom = doc.get("custom_fields") if isinstance(doc.get("custom_fields"), dict) else {}
    utm = {k: str(v) for k in UTM_FIELDS if (v := doc.get(k) or custom.get(k))}
    campaign_id = _clean(doc.get("campaign_id")) or utm.get("utm_campaign")
    campaign_data = dict(utm)
    if campaign_id:
        campaign_data["campaign_id"] = campaign_id
    first, last = _clean(doc.get("first_name")), _clean(doc.get("last_name"))
    raw_phone = _clean(doc.get("phone"))
    status = str(doc.get("status") or "").strip().lower()
    outcome = STATUS_OUTCOMES.get(status)
    return SourceRecord(
        origin=origin,
        record_id=str(record_id),
        doc=dict(doc),
        email_key=email_key(doc.get("email")),
        email=str(doc.get("email") or "").strip(),
        name=" ".join(p for p in (first, last) if p) or None,
        phone=(normalize_phone(raw_phone) or raw_phone) if raw_phone else None,
        company_name=_clean(doc.get("company_name")),
        source=normalise_source(doc.get("source"), utm.get("utm_medium")),
        campaign_id=campaign_id,
        campaign_data=campaign_data,
        created_at=created,
        updated_at=max(updated, created),
        outcome=outcome,
        value=_amount(doc.get("opportunity_amount")) if outcome == "won" else None,
    )


def bottlecrm_doc(lead: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a BottleCRM lead object a lead is made of (the full answer is in the raw
    responses table)."""
    doc = {name: lead.get(name) for name in DOC_FIELDS if lead.get(name) not in (None, "")}
    custom = lead.get("custom_fields")
    if isinstance(custom, dict) and (utm := {k: custom[k] for k in UTM_FIELDS if custom.get(k)}):
        doc["custom_fields"] = utm
    return doc


def build_lead(tenant_id: str, records: Sequence[SourceRecord]) -> dict[str, Any]:
    """One lead from all the (latest versions of the) records with its email_key."""
    if not records:
        raise ValueError("a lead needs at least one record")
    ordered = sorted(records, key=lambda r: (r.created_at, r.origin, r.record_id))
    first = ordered[0]
    keys = {r.email_key for r in ordered}
    if len(keys) != 1 or first.email_key is None:
        raise ValueError(f"records of different or no email keys: {sorted(map(str, keys))}")

    def first_value(name: str):
        return next((getattr(r, name) for r in ordered if getattr(r, name)), None)

    campaign_id = first.campaign_id or first_value("campaign_id")
    campaign_data = first.campaign_data or first_value("campaign_data") or {}
    return {
        "lead_id": lead_id_for(tenant_id, first.email_key),
        "email": first.email,
        "email_key": first.email_key,
        "name": first_value("name"),
        "phone": first_value("phone"),
        "company_name": first_value("company_name"),
        "source": first.source,
        "campaign_id": campaign_id,
        "campaign_data": campaign_data,
        "created_at": first.created_at,
        "updated_at": max(r.updated_at for r in ordered),
        "source_records": len(ordered),
    }


@dataclass
class MergePlan:
    """What a batch of incoming records does to the tenant's leads."""

    leads: list[dict[str, Any]] = field(default_factory=list)  # leads to upsert (full rows)
    history: list[dict[str, Any]] = field(default_factory=list)  # crm_lead_records rows to append
    created: int = 0
    merged: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def plan_merge(
    tenant_id: str,
    incoming: Iterable[SourceRecord],
    stored: Mapping[tuple[str, str], SourceRecord],
    rejected: Iterable[tuple[str, str, Mapping[str, Any], str]] = (),
    stored_rejected: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> MergePlan:
    """Merge `incoming` records into the leads made of `stored` ones (the latest version of
    every stored record, keyed by (origin, record_id)).

    Each incoming record is `created` (first record of its email), `merged` (joins an existing
    lead), `updated` (a new version of a known record) or unchanged (skipped). Records without
    an email are `rejected`: given as (origin, record_id, doc, reason), kept in the history
    unless `stored_rejected` (the documents of records last stored as rejected) already holds
    the same document: a re-read of an unchanged bad record is not a new event."""
    plan = MergePlan()
    latest: dict[tuple[str, str], SourceRecord] = dict(stored)
    known_keys = {r.email_key for r in stored.values()}
    touched: set[str] = set()
    for record in sorted(incoming, key=lambda r: (r.created_at, r.origin, r.record_id)):
        previous = latest.get(record.key)
        if previous is not None and previous.fingerprint == record.fingerprint:
            plan.unchanged += 1
            continue
        if previous is not None:
            action = "updated"
            touched.add(previous.email_key)  # a re-typed email moves the record to another lead
        elif record.email_key in known_keys:
            action = "merged"
        else:
            action = "created"
        setattr(plan, action, getattr(plan, action) + 1)
        latest[record.key] = record
        known_keys.add(record.email_key)
        touched.add(record.email_key)
        plan.history.append(
            {
                "origin": record.origin,
                "record_id": record.record_id,
                "lead_id": lead_id_for(tenant_id, record.email_key),
                "action": action,
                "record": dict(record.doc),
                "reason": None,
            }
        )
    for origin, record_id, doc, reason in rejected:
        if stored_rejected and stored_rejected.get((origin, record_id)) == dict(doc):
            plan.unchanged += 1
            continue
        plan.rejected += 1
        plan.history.append(
            {
                "origin": origin,
                "record_id": record_id,
                "lead_id": None,
                "action": "rejected",
                "record": dict(doc),
                "reason": reason,
            }
        )
    by_key: dict[str, list[SourceRecord]] = {}
    for record in latest.values():
        if record.email_key in touched:
            by_key.setdefault(record.email_key, []).append(record)
    plan.leads = [build_lead(tenant_id, records) for _, records in sorted(by_key.items())]
    return plan


def status_from_outcomes(outcomes: Iterable[tuple[str, datetime]]) -> str:
    """won or lost, whichever happened last; else qualified when it was; else open."""
    final = [(at, o) for o, at in outcomes if o in ("won", "lost")]
    if final:
        return max(final)[1]
    return "qualified" if any(o == "qualified" for o, _ in outcomes) else "open"


def record_outcomes(
    records: Iterable[SourceRecord],
) -> dict[tuple[str, str], tuple[datetime, Decimal | None]]:
    """Outcomes the CRM's statuses say, per (email_key, outcome): the earliest version of a
    record showing the status, at that version's updated_at (BottleCRM keeps no status history;
    the update that set the status is the best time it gives)."""
    found: dict[tuple[str, str], tuple[datetime, Decimal | None]] = {}
    for record in records:
        if record.outcome is None or record.email_key is None:
            continue
        key = (record.email_key, record.outcome)
        if key not in found or record.updated_at < found[key][0]:
            found[key] = (record.updated_at, record.value)
    return found
