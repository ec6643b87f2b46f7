"""CRM exports a tenant drops (CSV or JSON): leads, outcomes, campaigns (with daily figures) and
touches. Schema and whole-file validation.

A file is checked completely before anything of it is loaded; one bad row rejects the whole
file (as the gaming exports do), with every problem listed by CSV line or JSON path, field and
what to fix, so the tenant fixes the export and drops it again. Partial loads would make the
corrected file half-duplicate what was already loaded; a rejected file loses nothing (it waits
in quarantine with its reason).

Outcomes and touches point at leads by email: every email must be a lead the tenant already has
(`lookup`), and an outcome may not predate its lead. Pure: lookups are passed in.

leads      record_id, email, source, created_at
           [first_name, last_name, phone, company_name, campaign_id, updated_at, utm_source,
            utm_medium, utm_campaign]
outcomes   email, outcome (qualified | won | lost), occurred_at [value]
campaigns  campaign_id, name, channel [segment, started_on, ended_on]
  daily    day, spend, currency, impressions, clicks, conversions
touches    email, campaign_id, touched_at, kind

JSON: {"export": {"kind", "schema_version", "exported_at"}, "<kind>": [...]} (campaigns carry a
"daily" list each). CSV: one row per record; for campaigns one row per campaign and day, the
campaign's columns repeated (a row without `day` is a campaign without figures yet).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ml.crm.emails import email_key
from ml.crm.leads import OUTCOMES
from ml.gaming.exports import (  # the drop folder's shared validation vocabulary
    MAX_RECORDS,
    ExportInvalid,
    Problem,
    _Collector,
    _decode,
    _line_order,
    _Record,
    _TooMany,
    _unknown_fields,
    file_format,
)

KINDS = ("leads", "outcomes", "campaigns", "touches")
SCHEMA_VERSION = 1
FUTURE_SLACK = timedelta(days=1)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$")

FIELDS: dict[str, dict[str, bool]] = {
    "leads": {
        "record_id": True,
        "email": True,
        "source": True,
        "created_at": True,
        "first_name": False,
        "last_name": False,
        "phone": False,
        "company_name": False,
        "campaign_id": False,
        "updated_at": False,
        "utm_source": False,
        "utm_medium": False,
        "utm_campaign": False,
    },
    "outcomes": {"email": True, "outcome": True, "occurred_at": True, "value": False},
    "campaigns": {
        "campaign_id": True,
        "name": True,
        "channel": True,
        "segment": False,
        "started_on": False,
        "ended_on": False,
    },
    "touches": {"email": True, "campaign_id": True, "touched_at": True, "kind": True},
}
DAILY_FIELDS = {
    "day": True,
    "spend": True,
    "currency": True,
    "impressions": True,
    "clicks": True,
    "conversions": True,
}

# Known leads of the tenant: lookup(email_keys) -> {email_key: created_at} for those that exist.
Lookup = Callable[[set[str]], dict[str, datetime]]


@dataclass
class CrmExport:
    kind: str
    file_format: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> int:
        return len(self.rows) + len(self.daily)


def _day(r: _Record, name: str, required: bool = False) -> date | None:
    if not r.present(name):
        if required:
            r.required(name)
        return None
    text = str(r.raw[name]).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text[:10]):
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            pass
    r.fail(f"{name}: {text!r} is not a date", "use YYYY-MM-DD")
    return None


def _count(r: _Record, name: str) -> int | None:
    if not r.required(name):
        return None
    return r.integer(name, 0, 10**12)


def _email(r: _Record) -> str | None:
    if not r.required("email"):
        return None
    key = email_key(str(r.raw["email"]))
    if key is None:
        r.fail(
            f"email {str(r.raw['email'])!r} is not an email address", "correct the address or drop the row"
        )
    return key


def _lead(r: _Record, latest: datetime) -> dict[str, Any]:
    record_id = r.text("record_id", required=True, max_len=100)
    if record_id is not None and not ID_PATTERN.match(record_id):
        r.fail(f"record_id {record_id!r} is not a valid id", "use letters, digits and _.:@- (up to 100)")
    _email(r)
    r.text("source", required=True, max_len=40)
    created = r.timestamp("created_at", required=True, latest=latest)
    updated = r.timestamp("updated_at", latest=latest)
    if created and updated and updated < created:
        r.fail("updated_at is before created_at", "check both dates")
    for name in ("first_name", "last_name", "company_name", "phone", "campaign_id"):
        r.text(name, max_len=200)
    # The doc is the row as received (non-empty fields): leads.parse_record reads it.
    return {k: str(v).strip() for k, v in r.raw.items() if r.present(k)}


def _outcome(r: _Record, latest: datetime) -> dict[str, Any]:
    key = _email(r)
    outcome = r.choice("outcome", OUTCOMES, required=True)
    at = r.timestamp("occurred_at", required=True, latest=latest)
    value = r.money("value")
    if value is not None and outcome != "won":
        r.fail(f"a {outcome} outcome has a value", "give a value only to won outcomes")
    return {"email_key": key, "outcome": outcome, "occurred_at": at, "value": value}


def _campaign(r: _Record) -> dict[str, Any]:
    campaign_id = r.text("campaign_id", required=True, max_len=100)
    if campaign_id is not None and not ID_PATTERN.match(campaign_id):
        r.fail(f"campaign_id {campaign_id!r} is not a valid id", "use letters, digits and _.:@- (up to 100)")
    channel = r.text("channel", required=True, max_len=40)
    started, ended = _day(r, "started_on"), _day(r, "ended_on")
    if started and ended and ended < started:
        r.fail("ended_on is before started_on", "check both dates")
    return {
        "campaign_id": campaign_id,
        "name": r.text("name", required=True, max_len=200),
        "channel": re.sub(r"[^a-z0-9]+", "_", channel.lower()).strip("_") if channel else None,
        "segment": r.text("segment", max_len=60),
        "started_on": started,
        "ended_on": ended,
    }


def _daily(r: _Record, campaign_id: str | None, latest: datetime) -> dict[str, Any]:
    day = _day(r, "day", required=True)
    if day and day > latest.date():
        r.fail(f"day {day} is in the future", "export only days that are over")
    currency = r.text("currency", required=True, max_len=10)
    if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency):
        r.fail(f"currency {currency!r} is not an ISO 4217 code", "use e.g. USD, EUR")
    row = {
        "campaign_id": campaign_id,
        "day": day,
        "spend": r.money("spend", required=True),
        "currency": currency.upper() if currency else None,
        "impressions": _count(r, "impressions"),
        "clicks": _count(r, "clicks"),
        "conversions": _count(r, "conversions"),
    }
    if r.ok and not row["conversions"] <= row["clicks"] <= row["impressions"]:
        r.fail("conversions <= clicks <= impressions does not hold", "check the day's figures")
    return row


def _touch(r: _Record, latest: datetime) -> dict[str, Any]:
    key = _email(r)
    campaign_id = r.text("campaign_id", required=True, max_len=100)
    kind = r.text("kind", required=True, max_len=40)
    return {
        "email_key": key,
        "campaign_id": campaign_id,
        "touched_at": r.timestamp("touched_at", required=True, latest=latest),
        "kind": re.sub(r"[^a-z0-9]+", "_", kind.lower()).strip("_") if kind else None,
    }


def _csv_rows(text: str, kind: str, problems: _Collector) -> list[tuple[str, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.add("line 1", f"unreadable CSV header ({exc})", "export as comma-separated UTF-8")
        return []
    if not header or not any(h.strip() for h in header):
        problems.add("line 1", "no header row", "the first line must name the columns")
        return []
    columns = [h.strip().lower() for h in header]
    allowed = {**FIELDS[kind], **(DAILY_FIELDS if kind == "campaigns" else {})}
    before = len(problems.problems)
    _unknown_fields([c for c in columns if c], sorted(allowed), "line 1 (header)", problems)
    for name, needed in FIELDS[kind].items():
        if needed and name not in columns:
            problems.add("line 1 (header)", f"column {name} is missing", f"add a {name} column")
    for name in sorted({c for c in columns if c and columns.count(c) > 1}):
        problems.add("line 1 (header)", f"column {name} appears twice", "keep one of them")
    if len(problems.problems) > before:
        return []
    rows = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"line {reader.line_num}"
            if len(row) != len(columns):
                problems.add(where, f"{len(row)} fields where the header has {len(columns)}", "check quoting")
                continue
            rows.append((where, dict(zip(columns, row, strict=True))))
            if len(rows) > MAX_RECORDS:
                problems.add(where, f"more than {MAX_RECORDS:,} rows", "split the export into several files")
                return []
    except csv.Error as exc:
        problems.add(f"line {reader.line_num}", f"unreadable CSV ({exc})", "check quoting")
    return rows


def _json_rows(text: str, kind: str, problems: _Collector) -> list[tuple[str, dict[str, Any]]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(
            f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}", "fix the JSON syntax"
        )
        return []
    if isinstance(document, list):
        document = {kind: document}
    if not isinstance(document, dict):
        problems.add(
            "file", f"the JSON is a {type(document).__name__}", f'use {{"export": ..., "{kind}": [...]}}'
        )
        return []
    header = document.get("export") or {}
    if not isinstance(header, dict):
        problems.add("export", "the export header is not an object", "use {kind, schema_version, ...}")
        return []
    if header.get("kind", kind) != kind:
        problems.add(
            "export.kind",
            f"this is a {header['kind']!r} export in the {kind} inbox",
            f"drop it into the {header['kind']} folder instead",
        )
    if header.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        problems.add("export.schema_version", "unsupported schema_version", f"use {SCHEMA_VERSION}")
    _unknown_fields(sorted(set(document) - {"export", kind}), ["export", kind], "file", problems)
    records = document.get(kind)
    if not isinstance(records, list):
        problems.add("file", f'no "{kind}" list', f'put the records in a "{kind}" array')
        return []
    allowed = sorted({*FIELDS[kind], *(["daily"] if kind == "campaigns" else [])})
    rows = []
    for index, raw in enumerate(records):
        where = f"{kind}[{index}]"
        if not isinstance(raw, dict):
            problems.add(where, "not an object", "write each record as a JSON object")
            continue
        _unknown_fields(sorted(raw), allowed, where, problems)
        rows.append((where, raw))
    return rows


def validate_crm_export(
    kind: str, file_name: str, data: bytes, *, lookup: Lookup, now: datetime
) -> CrmExport:
    """The file's clean rows, or ExportInvalid naming every row and field at fault."""
    if kind not in KINDS:
        raise ValueError(f"unknown CRM export kind {kind!r}")
    problems = _Collector()
    export = CrmExport(kind, file_format(file_name) or "")
    try:
        _validate(export, file_name, data, lookup, now, problems)
    except _TooMany:
        raise ExportInvalid(file_name, sorted(problems.problems, key=_line_order), truncated=True) from None
    if problems.problems:
        raise ExportInvalid(file_name, sorted(problems.problems, key=_line_order))
    return export


def _validate(
    export: CrmExport, file_name: str, data: bytes, lookup: Lookup, now: datetime, problems
) -> None:
    if not export.file_format:
        problems.add("file", f"{file_name!r} is neither .csv nor .json", "export as CSV or JSON")
        return
    text = _decode(data, problems)
    if text is None:
        return
    if not text.strip():
        problems.add("file", "the file is empty", "export at least one record")
        return
    reader = _csv_rows if export.file_format == "csv" else _json_rows
    rows = reader(text, export.kind, problems)
    if not rows and not problems.problems:
        problems.add("file", "no records in the file", "export at least one record")
    latest = now + FUTURE_SLACK
    kind = export.kind
    seen: dict[Any, str] = {}
    references: list[tuple[str, dict[str, Any]]] = []
    for where, raw in rows:
        r = _Record(raw, where, problems)
        if kind == "leads":
            row = _lead(r, latest)
            identity = row.get("record_id")
        elif kind == "outcomes":
            row = _outcome(r, latest)
            identity = (row["email_key"], row["outcome"])
        elif kind == "touches":
            row = _touch(r, latest)
            identity = (row["email_key"], row["campaign_id"], row["touched_at"], row["kind"])
        else:
            row = _campaign(r)
            identity = row["campaign_id"]
            _campaign_days(export, r, row, raw, where, latest, problems)
        if r.ok and identity in seen:
            r.fail(f"the same record as {seen[identity]}", "keep one of them")
        if r.ok:
            seen.setdefault(identity, where)
            export.rows.append(row)
            if kind in ("outcomes", "touches"):
                references.append((where, row))
    if kind == "campaigns":
        export.rows = list({row["campaign_id"]: row for row in export.rows}.values())
    if references:
        known = lookup({row["email_key"] for _, row in references})
        for where, row in references:
            created = known.get(row["email_key"])
            if created is None:
                problems.add(
                    where,
                    f"email {row['email_key']} is not a known lead of this tenant",
                    "load the lead first (leads export or CRM sync), then drop this file again",
                )
            elif kind == "outcomes" and row["occurred_at"] < created:
                problems.add(
                    where,
                    f"occurred_at {row['occurred_at']:%Y-%m-%d %H:%M} is before the lead was created "
                    f"({created:%Y-%m-%d %H:%M})",
                    "an outcome cannot precede its lead; check the date",
                )


def _campaign_days(export, r: _Record, row, raw, where, latest, problems) -> None:
    """A campaign's daily figures: the CSV row's own columns, or a JSON record's `daily` list."""
    if export.file_format == "csv":
        daily = [(where, raw)] if any(r.present(name) for name in DAILY_FIELDS) else []
        # Repeated campaign columns must agree with the campaign's first row.
        first = next((c for c in export.rows if c["campaign_id"] == row["campaign_id"]), None)
        if first is not None and r.ok:
            for name in ("name", "channel", "segment", "started_on", "ended_on"):
                if first[name] != row[name]:
                    r.fail(
                        f"{name} {row[name]!r} differs from the campaign's first row", "repeat it unchanged"
                    )
    else:
        entries = raw.get("daily") or []
        if not isinstance(entries, list):
            r.fail("daily is not a list", 'write the figures as "daily": [{day, spend, ...}]')
            entries = []
        daily = [(f"{where}.daily[{i}]", d) for i, d in enumerate(entries)]
    for day_where, day_raw in daily:
        if not isinstance(day_raw, dict):
            problems.add(day_where, "not an object", "write each day as a JSON object")
            continue
        d = _Record(day_raw, day_where, problems)
        figures = _daily(d, row["campaign_id"], latest)
        if d.ok and row["campaign_id"]:
            if any(
                x["campaign_id"] == row["campaign_id"] and x["day"] == figures["day"] for x in export.daily
            ):
                d.fail(f"day {figures['day']} appears twice for {row['campaign_id']}", "keep one of them")
            else:
                export.daily.append(figures)
        if not d.ok:
            r.ok = False


__all__ = ["KINDS", "CrmExport", "ExportInvalid", "Problem", "validate_crm_export"]
