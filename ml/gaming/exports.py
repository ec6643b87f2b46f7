"""ThrillRing's tournaments and players exports (JSON or CSV): schema and whole-file validation.

A file is checked completely before anything of it is loaded: its format, every field's
presence, type, range and date, unique ids, and references (every entry's player must be known,
in this file's tenant's warehouse; an entry-only row must point at a tournament described in
the file or already loaded). `validate_export` returns the clean records, or raises
`ExportInvalid` listing every problem with where it is (CSV line, JSON record path) and what to
fix. Pure: the warehouse lookups are passed in as a function.

Schemas (schema_version 1):

players      player_id, handle, country (ISO 3166 alpha-2), joined_at, last_active_at
             [team, primary_game, platform, skill_rating, status]
tournaments  tournament_id, name, game, format, start_at, prize_pool, currency (ISO 4217), status
             [end_at (required once completed), region, team_size, max_entrants]
  entries    player_id [team, placement, prize_won, registered_at, status]

JSON: {"export": {"kind", "schema_version", "exported_at", "source"}, "players": [...]}, or
{"export": ..., "tournaments": [{..., "entries": [...]}], "entries": [{"tournament_id", ...}]}
(top-level entries belong to tournaments loaded before). CSV: one row per player; for
tournaments one row per entry with the tournament's columns repeated (`entry_status` for the
entry's status; a row without player_id is a tournament without entries yet; a row with only
tournament_id and entry columns adds entries to a tournament loaded before).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

KINDS = ("tournaments", "players")
FORMATS = ("csv", "json")
SCHEMA_VERSION = 1
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_RECORDS = 500_000
MAX_PROBLEMS = 50
MAX_PRIZE = Decimal("100000000")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=400)  # tournaments are announced up to about a year ahead

TOURNAMENT_FORMATS = (
    "single_elimination",
    "double_elimination",
    "round_robin",
    "swiss",
    "battle_royale",
    "league",
    "ladder",
)
TOURNAMENT_STATUSES = ("scheduled", "registration_open", "live", "completed", "cancelled")
ENTRY_STATUSES = (
    "registered",
    "checked_in",
    "playing",
    "eliminated",
    "finished",
    "withdrawn",
    "disqualified",
)
PLAYER_STATUSES = ("active", "inactive", "suspended", "banned")
PLATFORMS = ("pc", "playstation", "xbox", "switch", "mobile")
# ISO 4217 codes prize pools are paid in (the major and the esports-market currencies).
CURRENCIES = frozenset(
    ("USD", "EUR", "GBP", "JPY", "KRW", "CNY", "BRL", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK")
    + ("PLN", "CZK", "HUF", "CHF", "INR", "SGD", "HKD", "TWD", "THB", "PHP", "IDR", "MYR", "VND")
    + ("MXN", "ARS", "CLP", "COP", "PEN", "ZAR", "TRY", "UAH", "AED", "SAR", "ILS")
)
COUNTRIES = frozenset(r for r in phonenumbers.SUPPORTED_REGIONS if re.fullmatch("[A-Z]{2}", r))
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

PLAYER_FIELDS = {
    "player_id": True,
    "handle": True,
    "country": True,
    "joined_at": True,
    "last_active_at": True,
    "team": False,
    "primary_game": False,
    "platform": False,
    "skill_rating": False,
    "status": False,
}
TOURNAMENT_FIELDS = {
    "tournament_id": True,
    "name": True,
    "game": True,
    "format": True,
    "start_at": True,
    "prize_pool": True,
    "currency": True,
    "status": True,
    "end_at": False,
    "region": False,
    "team_size": False,
    "max_entrants": False,
}
ENTRY_FIELDS = {
    "player_id": True,
    "team": False,
    "placement": False,
    "prize_won": False,
    "registered_at": False,
    "status": False,
}
# The flat CSV of tournaments: tournament columns, then the entry's (its status renamed).
ENTRY_CSV_COLUMNS = {"player_id", "team", "placement", "prize_won", "registered_at", "entry_status"}
TOURNAMENT_CSV_COLUMNS = set(TOURNAMENT_FIELDS) | ENTRY_CSV_COLUMNS


@dataclass(frozen=True)
class Problem:
    where: str  # "line 14", "tournaments[2].entries[0]", "file"
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}; {self.fix}"


class ExportInvalid(ValueError):  # noqa: N818 - reads as a sentence: raise ExportInvalid(...)
    def __init__(self, file_name: str, problems: list[Problem], truncated: bool = False):
        self.file_name, self.problems, self.truncated = file_name, problems, truncated
        more = " (and more; only the first problems are listed)" if truncated else ""
        first = "; ".join(str(p) for p in problems[:3])
        super().__init__(
            f"{file_name}: {len(problems)} problem(s){more}; nothing of it was loaded. First: {first}"
        )

    def report(self) -> str:
        lines = [
            f"{self.file_name} was rejected: nothing of it was loaded.",
            "Fix every problem below and drop the corrected file into the inbox again.",
            "",
        ]
        lines += [f"- {p}" for p in self.problems]
        if self.truncated:
            lines.append(f"- ... validation stopped after {MAX_PROBLEMS} problems")
        return "\n".join(lines) + "\n"


@dataclass
class Export:
    kind: str
    file_format: str
    players: list[dict[str, Any]] = field(default_factory=list)
    tournaments: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    exported_at: datetime | None = None

    @property
    def records(self) -> int:
        return len(self.players) if self.kind == "players" else len(self.tournaments)


# Known ids in the warehouse: lookup("players" | "tournaments", ids) -> the subset that exists.
Lookup = Callable[[str, set[str]], set[str]]


class _TooMany(Exception):
    pass


class _Collector:
    def __init__(self):
        self.problems: list[Problem] = []

    def add(self, where: str, message: str, fix: str) -> None:
        self.problems.append(Problem(where, message, fix))
        if len(self.problems) >= MAX_PROBLEMS:
            raise _TooMany


# --- values ---------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected text, got {type(value).__name__}")
    text = " ".join(str(value).split())
    return text or None


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 date or date-time; a time without offset is UTC."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 date-time string, got {type(value).__name__}")
    text = value.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{value!r} is not an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(f"{value!r} is not a whole number")


def _money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected an amount, got true/false")
    text = str(value).strip().replace("_", "")
    if isinstance(value, str) and not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        raise ValueError(f"{value!r} is not an amount (digits with an optional '.', no currency sign)")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{value!r} has more than 2 decimals")
    return amount


# --- records --------------------------------------------------------------------------------------


class _Record:
    """One record's fields, checked one by one; problems go to the collector with its place."""

    def __init__(self, raw: Mapping[str, Any], where: str, problems: _Collector):
        self.raw, self.where, self.problems = raw, where, problems
        self.ok = True

    def fail(self, message: str, fix: str) -> None:
        self.ok = False
        self.problems.add(self.where, message, fix)

    def present(self, name: str) -> bool:
        value = self.raw.get(name)
        return value is not None and not (isinstance(value, str) and not value.strip())

    def required(self, name: str) -> bool:
        if self.present(name):
            return True
        self.fail(f"{name} is missing", f"give every record a {name}")
        return False

    def text(self, name: str, required: bool = False, max_len: int = 200) -> str | None:
        if required and not self.required(name):
            return None
        try:
            value = _text(self.raw.get(name))
        except ValueError as exc:
            self.fail(f"{name}: {exc}", f"write {name} as text")
            return None
        if value is not None and len(value) > max_len:
            self.fail(f"{name} is {len(value)} characters long", f"shorten it to at most {max_len}")
            return None
        return value

    def identifier(self, name: str) -> str | None:
        value = self.text(name, required=True, max_len=64)
        if value is not None and not ID_PATTERN.match(value):
            self.fail(
                f"{name} {value!r} is not a valid id",
                "use letters, digits, '_', '-', '.', ':' (up to 64, starting with a letter or digit)",
            )
            return None
        return value

    def choice(self, name: str, allowed: Iterable[str], *, required: bool = False, default=None):
        value = self.text(name, required=required)
        if value is None:
            return default
        normalised = value.lower().replace("-", "_").replace(" ", "_")
        allowed = tuple(allowed)
        if normalised not in allowed:
            self.fail(
                f"{name} {value!r} is not one of {', '.join(allowed)}", f"use one of {', '.join(allowed)}"
            )
            return None
        return normalised

    def timestamp(self, name: str, *, required: bool = False, latest: datetime | None = None):
        if not self.present(name):
            if required:
                self.required(name)
            return None
        try:
            value = parse_timestamp(self.raw[name])
        except ValueError as exc:
            self.fail(f"{name}: {exc}", "use ISO 8601, e.g. 2026-10-03T17:00:00Z")
            return None
        if value < EARLIEST or (latest is not None and value > latest):
            bound = f"after {latest:%Y-%m-%d}" if latest is not None and value > latest else "before 2000"
            self.fail(f"{name} {value:%Y-%m-%d %H:%M} is {bound}", "check the date (year typo?)")
            return None
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        if not self.present(name):
            return None
        try:
            value = _integer(self.raw[name])
        except ValueError as exc:
            self.fail(f"{name}: {exc}", f"write {name} as a whole number")
            return None
        if not low <= value <= high:
            self.fail(f"{name} {value} is out of range", f"{name} must be between {low} and {high}")
            return None
        return value

    def money(self, name: str, *, required: bool = False) -> Decimal | None:
        if not self.present(name):
            if required:
                self.required(name)
            return None
        try:
            value = _money(self.raw[name])
        except ValueError as exc:
            self.fail(f"{name}: {exc}", f"write {name} as a plain amount, e.g. 2500.00")
            return None
        if value < 0 or value > MAX_PRIZE:
            self.fail(f"{name} {value} is out of range", f"{name} must be between 0 and {MAX_PRIZE:,}")
            return None
        return value


def _unknown_fields(keys: Iterable[str], known: Iterable[str], where: str, problems: _Collector) -> None:
    known = list(known)
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(known)}"
            problems.add(where, f"unknown field {key!r}", hint)


def _player(raw: Mapping[str, Any], where: str, problems: _Collector, latest: datetime):
    r = _Record(raw, where, problems)
    player_id = r.identifier("player_id")
    handle = r.text("handle", required=True, max_len=32)
    if handle is not None and len(handle) < 2:
        r.fail(f"handle {handle!r} is too short", "handles have 2 to 32 characters")
    country = r.text("country", required=True, max_len=10)
    if country is not None:
        country = country.upper()
        if country not in COUNTRIES:
            r.fail(f"country {country!r} is not an ISO 3166 alpha-2 code", "use e.g. GB, US, DE, KR, BR")
    joined = r.timestamp("joined_at", required=True, latest=latest)
    active = r.timestamp("last_active_at", required=True, latest=latest)
    if joined and active and active < joined:
        r.fail(
            f"last_active_at {active:%Y-%m-%d %H:%M} is before joined_at {joined:%Y-%m-%d %H:%M}",
            "a player cannot be active before joining; check both dates",
        )
    row = {
        "player_id": player_id,
        "handle": handle,
        "country": country,
        "team": r.text("team", max_len=64),
        "primary_game": r.text("primary_game", max_len=100),
        "platform": r.choice("platform", PLATFORMS),
        "skill_rating": r.integer("skill_rating", 0, 10000),
        "status": r.choice("status", PLAYER_STATUSES, default="active"),
        "joined_at": joined,
        "last_active_at": active,
    }
    return row if r.ok else None


def _tournament(raw: Mapping[str, Any], where: str, problems: _Collector, latest: datetime):
    r = _Record(raw, where, problems)
    start = r.timestamp("start_at", required=True, latest=latest)
    end = r.timestamp("end_at", latest=latest)
    status = r.choice("status", TOURNAMENT_STATUSES, required=True)
    currency = r.text("currency", required=True, max_len=10)
    if currency is not None:
        currency = currency.upper()
        if currency not in CURRENCIES:
            r.fail(f"currency {currency!r} is not a known ISO 4217 code", "use e.g. USD, EUR, GBP")
    if start and end and end < start:
        r.fail(
            f"end_at {end:%Y-%m-%d %H:%M} is before start_at {start:%Y-%m-%d %H:%M}",
            "swap or correct the dates",
        )
    if status == "completed" and not r.present("end_at"):
        r.fail("a completed tournament has no end_at", "give completed tournaments their end_at")
    row = {
        "tournament_id": r.identifier("tournament_id"),
        "name": r.text("name", required=True, max_len=200),
        "game": r.text("game", required=True, max_len=100),
        "format": r.choice("format", TOURNAMENT_FORMATS, required=True),
        "region": r.text("region", max_len=40),
        "team_size": r.integer("team_size", 1, 100),
        "max_entrants": r.integer("max_entrants", 1, 1_000_000),
        "start_at": start,
        "end_at": end,
        "prize_pool": r.money("prize_pool", required=True),
        "currency": currency,
        "status": status,
    }
    return row if r.ok else None


def _entry(raw: Mapping[str, Any], where: str, problems: _Collector, latest: datetime, status_field: str):
    r = _Record(raw, where, problems)
    row = {
        "player_id": r.identifier("player_id"),
        "team": r.text("team", max_len=64),
        "placement": None,
        "prize_won": r.money("prize_won"),
        "registered_at": r.timestamp("registered_at", latest=latest),
        "status": r.choice(status_field, ENTRY_STATUSES, default="registered"),
    }
    if r.present("placement"):
        try:
            placement = _integer(r.raw["placement"])
        except ValueError as exc:
            r.fail(f"placement: {exc}", "write the placement as a whole number (1 = winner)")
        else:
            if placement < 1:
                r.fail(f"placement {placement} is not positive", "placements start at 1 (the winner)")
            else:
                row["placement"] = placement
    return row if r.ok else None


# --- files ----------------------------------------------------------------------------------------


def file_format(file_name: str) -> str | None:
    suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    return suffix if suffix in FORMATS else None


def _decode(data: bytes, problems: _Collector) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add(
            f"line {line}", f"byte {exc.start} is not UTF-8 ({exc.reason})", "save the export as UTF-8"
        )
        return None


def _csv_records(text: str, kind: str, problems: _Collector) -> list[tuple[str, dict[str, str]]]:
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
    allowed = PLAYER_FIELDS if kind == "players" else TOURNAMENT_CSV_COLUMNS
    _unknown_fields([c for c in columns if c], sorted(allowed), "line 1 (header)", problems)
    header_ok = len(problems.problems)
    # Tournament rows may be entry-only, so only their id column is required in every file.
    required = (
        [f for f, needed in PLAYER_FIELDS.items() if needed] if kind == "players" else ["tournament_id"]
    )
    for name in required:
        if name not in columns:
            problems.add("line 1 (header)", f"column {name} is missing", f"add a {name} column")
    duplicates = sorted({c for c in columns if c and columns.count(c) > 1})
    for name in duplicates:
        problems.add("line 1 (header)", f"column {name} appears twice", "keep one of them")
    if len(problems.problems) > header_ok:
        return []  # without its required columns the rows cannot be read
    records = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"line {reader.line_num}"
            if len(row) != len(columns):
                problems.add(
                    where,
                    f"{len(row)} fields where the header has {len(columns)}",
                    "check quoting and commas",
                )
                continue
            records.append((where, dict(zip(columns, row, strict=True))))
            if len(records) > MAX_RECORDS:
                problems.add(
                    where, f"more than {MAX_RECORDS:,} records", "split the export into several files"
                )
                return []
    except csv.Error as exc:
        problems.add(f"line {reader.line_num}", f"unreadable CSV ({exc})", "check quoting")
    return records


def _json_document(text: str, kind: str, problems: _Collector) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(
            f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}", "fix the JSON syntax"
        )
        return None
    if isinstance(document, list):  # a bare list of records
        document = {kind: document}
    if not isinstance(document, dict):
        problems.add(
            "file", f"the JSON is a {type(document).__name__}", f'use {{"export": ..., "{kind}": [...]}}'
        )
        return None
    header = document.get("export")
    if header is not None:
        if not isinstance(header, dict):
            problems.add("export", "the export header is not an object", "use {kind, schema_version, ...}")
            return None
        declared = header.get("kind")
        if declared is not None and declared != kind:
            problems.add(
                "export.kind",
                f"this is a {declared!r} export in the {kind} inbox",
                f"drop it into the {declared} folder instead",
            )
        version = header.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            problems.add(
                "export.schema_version",
                f"schema_version {version!r} is not supported",
                f"export with schema_version {SCHEMA_VERSION}",
            )
    allowed = {"export", kind} | ({"entries"} if kind == "tournaments" else set())
    _unknown_fields(sorted(set(document) - allowed), sorted(allowed), "file", problems)
    records = document.get(kind)
    if not isinstance(records, list):
        problems.add("file", f'no "{kind}" list', f'put the records in a "{kind}" array')
        return None
    if len(records) > MAX_RECORDS:
        problems.add("file", f"more than {MAX_RECORDS:,} records", "split the export into several files")
        return None
    return document


def _exported_at(document: Mapping[str, Any] | None, problems: _Collector) -> datetime | None:
    header = (document or {}).get("export") or {}
    if "exported_at" not in header:
        return None
    try:
        return parse_timestamp(header["exported_at"])
    except ValueError as exc:
        problems.add("export.exported_at", str(exc), "use ISO 8601, e.g. 2026-11-20T06:00:00Z")
        return None


def validate_export(
    kind: str,
    file_name: str,
    data: bytes,
    *,
    lookup: Lookup,
    now: datetime,
) -> Export:
    """The file's clean records, or ExportInvalid with every problem found."""
    if kind not in KINDS:
        raise ValueError(f"unknown export kind {kind!r}")
    problems = _Collector()
    export = Export(kind, file_format(file_name) or "")
    try:
        _validate(export, file_name, data, lookup, now, problems)
    except _TooMany:
        raise ExportInvalid(file_name, sorted(problems.problems, key=_line_order), truncated=True) from None
    if problems.problems:
        raise ExportInvalid(file_name, sorted(problems.problems, key=_line_order))
    return export


def _line_order(problem: Problem) -> int:
    # CSV problems in file order (rows are read before they are checked); others as found.
    match = re.match(r"line (\d+)", problem.where)
    return int(match.group(1)) if match else 0


def _validate(export: Export, file_name: str, data: bytes, lookup: Lookup, now: datetime, problems) -> None:
    if not export.file_format:
        problems.add("file", f"{file_name!r} is neither .csv nor .json", "export as CSV or JSON")
        return
    if len(data) > MAX_FILE_BYTES:
        problems.add(
            "file",
            f"{len(data):,} bytes, over the {MAX_FILE_BYTES:,} limit",
            "split the export into several files",
        )
        return
    if not data.strip():
        problems.add("file", "the file is empty", "export at least one record")
        return
    text = _decode(data, problems)
    if text is None:
        return
    latest = now + FUTURE_SLACK
    if export.file_format == "json":
        document = _json_document(text, export.kind, problems)
        if document is None:
            return
        export.exported_at = _exported_at(document, problems)
        records = [(f"{export.kind}[{i}]", r) for i, r in enumerate(document[export.kind])]
        extra_entries = document.get("entries") or []
        if not isinstance(extra_entries, list):
            problems.add("entries", "entries is not a list", "use an array of entries")
            extra_entries = []
    else:
        records = _csv_records(text, export.kind, problems)
        extra_entries = []
    if not records and not extra_entries:  # an entries-only JSON adds registrations: fine
        if not problems.problems:
            problems.add("file", "no records", "export at least one record")
        return
    if export.kind == "players":
        # Activity cannot lie ahead (a day of slack for clocks); tournaments may be announced.
        _players(export, records, problems, now + timedelta(days=1))
    else:
        _tournaments(export, records, extra_entries, problems, latest, lookup)
        return
    # No reference to check in a players export; duplicates are checked within the file.


def _players(export: Export, records, problems: _Collector, latest: datetime) -> None:
    first_line: dict[str, str] = {}
    handles: dict[str, str] = {}
    for where, raw in records:
        if not isinstance(raw, dict):
            problems.add(where, f"a {type(raw).__name__} where a player object was expected", "use objects")
            continue
        if export.file_format == "json":
            _unknown_fields(raw, PLAYER_FIELDS, where, problems)
        player = _player(raw, _label(where, raw, "player_id"), problems, latest)
        if player is None:
            continue
        pid = player["player_id"]
        if pid in first_line:
            problems.add(
                _label(where, raw, "player_id"),
                f"player_id {pid} already appears at {first_line[pid]}",
                "keep one record per player",
            )
            continue
        handle = player["handle"].casefold()
        if handle in handles:
            problems.add(
                _label(where, raw, "player_id"),
                f"handle {player['handle']!r} is also used by player {handles[handle]}",
                "handles are unique; fix one of the two",
            )
            continue
        first_line[pid], handles[handle] = where, pid
        export.players.append(player)


def _label(where: str, raw: Any, id_field: str) -> str:
    value = raw.get(id_field) if isinstance(raw, dict) else None
    return f"{where} ({id_field} {value})" if isinstance(value, str) and value.strip() else where


def _tournaments(export: Export, records, extra_entries, problems: _Collector, latest, lookup) -> None:
    described: dict[str, tuple[str, dict, dict]] = {}  # tournament_id -> (first place, row, raw)
    entries: list[tuple[str, str, dict]] = []  # (place, tournament_id, row)
    entry_only: dict[str, str] = {}  # tournament_id -> place of a row with entry columns only
    is_csv = export.file_format == "csv"
    for where, raw in records:
        if not isinstance(raw, dict):
            problems.add(
                where, f"a {type(raw).__name__} where a tournament object was expected", "use objects"
            )
            continue
        label = _label(where, raw, "tournament_id")
        tid = _text(raw.get("tournament_id")) if isinstance(raw.get("tournament_id"), str) else None
        if is_csv:
            tournament_part = {k: v for k, v in raw.items() if k not in ENTRY_CSV_COLUMNS}
            has_tournament = any(v.strip() for k, v in tournament_part.items() if k != "tournament_id")
            if not has_tournament and tid and tid not in described:
                entry_only.setdefault(tid, label)
            elif has_tournament:
                _tournament_row(tournament_part, label, tid, described, problems, latest)
            if raw.get("player_id", "").strip() or any(raw.get(c, "").strip() for c in ENTRY_CSV_COLUMNS):
                entry = _entry(raw, label, problems, latest, "entry_status")
                if entry is not None and tid:
                    entries.append((label, tid, entry))
            elif not has_tournament:
                problems.add(label, "a row with neither tournament nor entry columns", "remove the empty row")
            continue
        _unknown_fields(raw, [*TOURNAMENT_FIELDS, "entries"], label, problems)
        _tournament_row(raw, label, tid, described, problems, latest)
        nested = raw.get("entries") or []
        if not isinstance(nested, list):
            problems.add(f"{label}.entries", "entries is not a list", "use an array of entries")
            continue
        for j, item in enumerate(nested):
            place = f"{where}.entries[{j}]"
            if not isinstance(item, dict):
                problems.add(place, "an entry is not an object", "use objects")
                continue
            _unknown_fields(item, ENTRY_FIELDS, place, problems)
            entry = _entry(item, _label(place, item, "player_id"), problems, latest, "status")
            if entry is not None and tid:
                entries.append((_label(place, item, "player_id"), tid, entry))
    for j, item in enumerate(extra_entries):
        place = f"entries[{j}]"
        if not isinstance(item, dict):
            problems.add(place, "an entry is not an object", "use objects")
            continue
        _unknown_fields(item, ["tournament_id", *ENTRY_FIELDS], place, problems)
        tid = _text(item.get("tournament_id")) if isinstance(item.get("tournament_id"), str) else None
        if not tid:
            problems.add(place, "tournament_id is missing", "say which tournament the entry belongs to")
            continue
        entry_only.setdefault(tid, place)
        fields = {k: v for k, v in item.items() if k != "tournament_id"}
        entry = _entry(fields, _label(place, item, "player_id"), problems, latest, "status")
        if entry is not None:
            entries.append((_label(place, item, "player_id"), tid, entry))

    # References: tournaments named only by entries must be loaded already; every entry's
    # player must be in the warehouse (players exports are loaded before tournaments ones).
    unknown_tournaments = {t for t in entry_only if t not in described}
    known_tournaments = lookup("tournaments", unknown_tournaments) if unknown_tournaments else set()
    for tid in sorted(unknown_tournaments - known_tournaments):
        problems.add(
            entry_only[tid],
            f"entries for tournament {tid}, which is neither described in this file nor loaded before",
            "add the tournament's columns (name, game, format, start_at, ...) to this export",
        )
    player_ids = {entry["player_id"] for _, _, entry in entries}
    known_players = lookup("players", player_ids) if player_ids else set()
    seen: dict[tuple[str, str], str] = {}
    per_tournament: dict[str, list[dict]] = {}
    for place, tid, entry in entries:
        pid = entry["player_id"]
        if pid not in known_players:
            problems.add(
                place,
                f"player {pid} is not a known player of this tenant",
                "load a players export containing them first (players/ inbox), then drop this file again",
            )
            continue
        if (tid, pid) in seen:
            problems.add(
                place, f"player {pid} is entered twice in tournament {tid} (also at {seen[(tid, pid)]})",
                "keep one entry per player and tournament",
            )  # fmt: skip
            continue
        seen[(tid, pid)] = place
        per_tournament.setdefault(tid, []).append(entry)
        export.entries.append({"tournament_id": tid, **entry})
    for tid, (place, tournament, _) in described.items():
        _check_tournament_entries(tid, place, tournament, per_tournament.get(tid, []), problems)
        export.tournaments.append(tournament)


def _tournament_row(raw, label, tid, described, problems: _Collector, latest) -> None:
    if tid in described:
        # A repeated tournament (CSV rows of its entries): its columns must say the same.
        first_raw = described[tid][2]
        for name, value in raw.items():
            if name == "tournament_id" or not str(value).strip():
                continue
            if " ".join(str(value).split()) != " ".join(str(first_raw.get(name) or "").split()):
                problems.add(
                    label,
                    f"{name} {str(value).strip()!r} differs from the tournament's first row "
                    f"({described[tid][0]})",
                    "repeat the tournament's columns identically on each of its rows",
                )
        return
    tournament = _tournament(raw, label, problems, latest)
    if tournament is not None:
        described[tournament["tournament_id"]] = (label, tournament, raw)


def _check_tournament_entries(tid, place, tournament, entries, problems: _Collector) -> None:
    cap = tournament["max_entrants"]
    active = [e for e in entries if e["status"] not in ("withdrawn",)]
    if cap is not None and len(active) > cap:
        problems.add(
            place,
            f"tournament {tid} has {len(active)} entrants, more than its max_entrants {cap}",
            "raise max_entrants or mark extra entries withdrawn",
        )
    placements = [e["placement"] for e in entries if e["placement"] is not None]
    if placements and max(placements) > len(entries):
        problems.add(
            place,
            f"tournament {tid} has a placement {max(placements)} but only {len(entries)} entries",
            "placements run from 1 to the number of entrants",
        )
    prizes = sum((e["prize_won"] or Decimal(0)) for e in entries)
    if prizes > tournament["prize_pool"]:
        problems.add(
            place,
            f"tournament {tid} pays out {prizes} {tournament['currency']} in prizes, more than its "
            f"prize_pool {tournament['prize_pool']}",
            "correct prize_won or prize_pool",
        )
