"""Whole-file validation of ThrillRing's players and tournaments exports: the bundled files are
valid, CSV and JSON say the same thing, and every kind of mistake is named with its place and
what to fix."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ml.gaming import exports
from ml.gaming.exports import ExportInvalid, validate_export
from orchestration.settings import PROJECT_ROOT

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BUNDLED = PROJECT_ROOT / "fixtures" / "drops" / "thrillring"
MALFORMED = PROJECT_ROOT / "fixtures" / "drops_malformed" / "thrillring" / "tournaments"
KNOWN_PLAYERS = {"P1", "P2", "P3"}

PLAYERS_HEADER = "player_id,handle,country,team,joined_at,last_active_at,platform,skill_rating,status"
PLAYER_ROWS = [
    "P1,Kazor,GB,Night Owls,2025-01-05T10:00:00Z,2026-11-20T18:00:00Z,pc,1500,active",
    "P2,vexlyn,de,,2025-03-01,2026-11-01T09:30:00+01:00,,,",
]
TOURNAMENTS_HEADER = (
    "tournament_id,name,game,format,start_at,end_at,prize_pool,currency,status,max_entrants,"
    "player_id,team,placement,prize_won,registered_at,entry_status"
)
T1 = (
    "T1,Autumn Cup,Valorant,single_elimination,2026-10-03T17:00:00Z,2026-10-04T21:00:00Z,"
    "1000.00,GBP,completed,8"
)
TOURNAMENT_ROWS = [
    f"{T1},P1,,1,600,2026-09-20T10:00:00Z,finished",
    f"{T1},P2,,2,300,,finished",
    "T2,Winter Open,Street Fighter 6,double_elimination,2026-12-05T13:00:00Z,,0,EUR,scheduled,,,,,,,",
]


def lookup(known_tournaments=frozenset()):
    def find(kind, ids):
        return set(ids) & (KNOWN_PLAYERS if kind == "players" else set(known_tournaments))

    return find


def csv_file(header, rows):
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def validate(kind, name, data, known_tournaments=frozenset()):
    return validate_export(kind, name, data, lookup=lookup(known_tournaments), now=NOW)


def problems(kind, name, data, known_tournaments=frozenset()) -> list[str]:
    with pytest.raises(ExportInvalid) as caught:
        validate(kind, name, data, known_tournaments)
    error = caught.value
    assert name in str(error) and "nothing of it was loaded" in str(error)
    assert error.report().count("\n- ") == len(error.problems)
    return [str(p) for p in error.problems]


def test_the_bundled_exports_are_valid():
    players = set()
    for path in sorted((BUNDLED / "players").iterdir()):
        players |= {p["player_id"] for p in validate_export("players", path.name, path.read_bytes(),
                                                           lookup=lookup(), now=NOW).players}  # fmt: skip
    assert len(players) == 240

    def known(kind, ids):
        return set(ids) & (players if kind == "players" else {"TR-2026-0109"})

    october = BUNDLED / "tournaments" / "tournaments_2026-10.csv"
    result = validate_export("tournaments", october.name, october.read_bytes(), lookup=known, now=NOW)
    assert result.file_format == "csv" and result.records == 10 and len(result.entries) == 146
    november = BUNDLED / "tournaments" / "tournaments_2026-11.json"
    result = validate_export("tournaments", november.name, november.read_bytes(), lookup=known, now=NOW)
    assert result.records == 8 and result.exported_at == datetime(2026, 11, 24, 21, 5, tzinfo=UTC)
    assert sum(1 for e in result.entries if e["tournament_id"] == "TR-2026-0109") == 6


def test_csv_and_json_exports_of_the_same_players_agree():
    from_csv = validate("players", "p.csv", csv_file(PLAYERS_HEADER, PLAYER_ROWS)).players
    document = {
        "export": {"kind": "players", "schema_version": 1, "exported_at": "2026-11-24T21:00:00Z"},
        "players": [
            {"player_id": "P1", "handle": "Kazor", "country": "GB", "team": "Night Owls",
             "joined_at": "2025-01-05T10:00:00Z", "last_active_at": "2026-11-20T18:00:00Z", "platform": "pc",
             "skill_rating": 1500, "status": "active"},
            {"player_id": "P2", "handle": "vexlyn", "country": "de", "team": None, "joined_at": "2025-03-01",
             "last_active_at": "2026-11-01T09:30:00+01:00"},
        ],
    }  # fmt: skip
    from_json = validate("players", "p.json", json.dumps(document).encode()).players
    assert from_csv == from_json
    assert from_csv[1]["country"] == "DE" and from_csv[1]["status"] == "active"  # normalised, defaulted
    assert from_csv[1]["last_active_at"] == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    assert from_csv[1]["joined_at"] == datetime(2025, 3, 1, tzinfo=UTC)  # a date alone is midnight UTC
    bare_list = validate("players", "p.json", json.dumps(document["players"]).encode()).players
    assert bare_list == from_json


def test_csv_and_json_exports_of_the_same_tournaments_agree():
    from_csv = validate("tournaments", "t.csv", csv_file(TOURNAMENTS_HEADER, TOURNAMENT_ROWS))
    document = {
        "tournaments": [
            {"tournament_id": "T1", "name": "Autumn Cup", "game": "Valorant", "format": "single_elimination",
             "start_at": "2026-10-03T17:00:00Z", "end_at": "2026-10-04T21:00:00Z", "prize_pool": 1000,
             "currency": "GBP", "status": "completed", "max_entrants": 8,
             "entries": [{"player_id": "P1", "placement": 1, "prize_won": "600", "status": "finished",
                          "registered_at": "2026-09-20T10:00:00Z"},
                         {"player_id": "P2", "placement": 2, "prize_won": 300, "status": "finished"}]},
            {"tournament_id": "T2", "name": "Winter Open", "game": "Street Fighter 6",
             "format": "double_elimination", "start_at": "2026-12-05T13:00:00Z", "prize_pool": "0",
             "currency": "EUR", "status": "scheduled"},
        ]
    }  # fmt: skip
    from_json = validate("tournaments", "t.json", json.dumps(document).encode())
    assert from_csv.tournaments == from_json.tournaments and from_csv.entries == from_json.entries
    assert from_csv.tournaments[0]["prize_pool"] == Decimal("1000.00")
    assert [e["player_id"] for e in from_csv.entries] == ["P1", "P2"]


def test_entries_may_be_added_to_a_tournament_loaded_before():
    rows = ["T9,,,,,,,,,,P3,,,,2026-11-20T10:00:00Z,registered"]
    result = validate("tournaments", "t.csv", csv_file(TOURNAMENTS_HEADER, rows), known_tournaments={"T9"})
    assert result.tournaments == [] and result.entries[0]["tournament_id"] == "T9"
    found = problems("tournaments", "t.csv", csv_file(TOURNAMENTS_HEADER, rows))
    assert found == [
        "line 2 (tournament_id T9): entries for tournament T9, which is neither described in this file nor "
        "loaded before; add the tournament's columns (name, game, format, start_at, ...) to this export"
    ]


def test_an_entries_only_json_adds_registrations():
    document = {
        "tournaments": [],
        "entries": [{"tournament_id": "T9", "player_id": "P2", "status": "checked_in"}],
    }
    result = validate("tournaments", "late.json", json.dumps(document).encode(), known_tournaments={"T9"})
    assert result.records == 0 and result.entries == [
        {"tournament_id": "T9", "player_id": "P2", "team": None, "placement": None, "prize_won": None,
         "registered_at": None, "status": "checked_in"}
    ]  # fmt: skip


def players_with(row: str) -> bytes:
    return csv_file(PLAYERS_HEADER, [PLAYER_ROWS[0], row])


def tournaments_with(*rows: str) -> bytes:
    return csv_file(TOURNAMENTS_HEADER, [TOURNAMENT_ROWS[0], *rows])


def t3(columns: str) -> bytes:
    """A tournament T3 (Cup, Valorant) without entries, from its format column on."""
    return tournaments_with(f"T3,Cup,Valorant,{columns}")


@pytest.mark.parametrize(
    ("kind", "name", "data", "expected"),
    [
        # format
        ("players", "p.xlsx", b"PK\x03\x04", "file: 'p.xlsx' is neither .csv nor .json"),
        ("players", "p.csv", b"", "file: the file is empty"),
        ("players", "p.csv", csv_file(PLAYERS_HEADER, []), "file: no records"),
        ("players", "p.csv", b"player_id,handle\r\n\xff\xfe,x\r\n",
         "line 2: byte 18 is not UTF-8 (invalid start byte); save the export as UTF-8"),
        ("players", "p.json", b'{"players": [\n  {"player_id": "P1",}\n]}',
         "line 2 column 22: invalid JSON: Expecting property name"),
        ("players", "p.json", b'"players"', "file: the JSON is a str"),
        ("players", "p.json", b'{"export": {"kind": "tournaments"}, "players": []}',
         "export.kind: this is a 'tournaments' export in the players inbox"),
        ("players", "p.json", b'{"export": {"schema_version": 2}, "players": [{}]}',
         "export.schema_version: schema_version 2 is not supported"),
        ("players", "p.json", b'{"export": {"exported_at": "yesterday"}, "players": [{}]}',
         "export.exported_at: 'yesterday' is not an ISO 8601 date-time"),
        ("players", "p.json", b'{"player": []}', "file: unknown field 'player'; did you mean 'players'?"),
        ("players", "p.csv", b"player_id,handle,country,joined_at\r\nP1,a,GB,2025-01-01\r\n",
         "line 1 (header): column last_active_at is missing"),
        ("players", "p.csv", csv_file(PLAYERS_HEADER + ",handle", [PLAYER_ROWS[0] + ",x"]),
         "line 1 (header): column handle appears twice"),
        ("players", "p.csv", csv_file(PLAYERS_HEADER.replace("platform", "plaform"), PLAYER_ROWS),
         "line 1 (header): unknown field 'plaform'; did you mean 'platform'?"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,2025-01-01"),
         "line 3: 4 fields where the header has 9"),
        ("players", "p.json", b'{"players": [{"player_id": "P1", "handle": "Kazor", "country": "GB",'
         b' "joined_at": "2025-01-01", "last_active_at": "2025-02-01", "rating": 5}]}',
         "players[0]: unknown field 'rating'; did you mean 'skill_rating'?"),
        ("players", "p.json", b'{"players": [7]}', "players[0]: a int where a player object was expected"),
        # required fields and types
        ("players", "p.csv", players_with("P2,,GB,,2025-01-01,2025-02-01,,,"),
         "line 3 (player_id P2): handle is missing; give every record a handle"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,,2025-01-01,2025-02-01,pc,high,"),
         "line 3 (player_id P2): skill_rating: 'high' is not a whole number"),
        ("players", "p.json", b'{"players": [{"player_id": "P1", "handle": ["x"], "country": "GB",'
         b' "joined_at": "2025-01-01", "last_active_at": "2025-02-01"}]}',
         "players[0] (player_id P1): handle: expected text, got list"),
        ("players", "p.csv", players_with("P 2,vexlyn,GB,,2025-01-01,2025-02-01,,,"),
         "line 3 (player_id P 2): player_id 'P 2' is not a valid id"),
        ("players", "p.csv", players_with("P2,vexlyn,XX,,2025-01-01,2025-02-01,,,"),
         "country 'XX' is not an ISO 3166 alpha-2 code"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,,2025-01-01,2025-02-01,vr,,"),
         "platform 'vr' is not one of pc, playstation, xbox, switch, mobile"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,,2025-01-01,2025-02-01,,20000,"),
         "skill_rating 20000 is out of range; skill_rating must be between 0 and 10000"),
        # sizes
        ("players", "p.csv", players_with(f"P2,{'x' * 40},GB,2025-01-01,2025-02-01,,,,"),
         "handle is 40 characters long; shorten it to at most 32"),
        ("players", "p.csv", players_with("P2,v,GB,,2025-01-01,2025-02-01,,,"), "handle 'v' is too short"),
        # dates
        ("players", "p.csv", players_with("P2,vexlyn,GB,,01/02/2025,2025-02-01,,,"),
         "joined_at: '01/02/2025' is not an ISO 8601 date-time; use ISO 8601, e.g. 2026-10-03T17:00:00Z"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,,2025-02-30,2025-03-01,,,"),
         "joined_at: '2025-02-30' is not a valid date-time"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,,2025-06-01,2025-02-01,,,"),
         "last_active_at 2025-02-01 00:00 is before joined_at 2025-06-01 00:00"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,,2025-01-01,2026-12-24,,,"),
         "last_active_at 2026-12-24 00:00 is after 2026-11-26"),
        ("players", "p.csv", players_with("P2,vexlyn,GB,,1998-01-01,2025-02-01,,,"),
         "joined_at 1998-01-01 00:00 is before 2000"),
        # unique ids
        ("players", "p.csv", players_with("P1,other,GB,,2025-01-01,2025-02-01,,,"),
         "line 3 (player_id P1): player_id P1 already appears at line 2; keep one record per player"),
        ("players", "p.csv", players_with("P2,KAZOR,GB,,2025-01-01,2025-02-01,,,"),
         "handle 'KAZOR' is also used by player P1"),
        ("tournaments", "t.csv", tournaments_with(f"{T1},P1,,3,,,finished"),
         "player P1 is entered twice in tournament T1"),
        # references
        ("tournaments", "t.csv", tournaments_with(f"{T1},P7,,,,,finished"),
         "line 3 (tournament_id T1): player P7 is not a known player of this tenant; load a players export"),
        # tournament values
        ("tournaments", "t.csv",
         tournaments_with(T1.replace("10-04T21", "10-02T21").replace("T1,", "T3,") + ",P2,,,,,finished"),
         "end_at 2026-10-02 21:00 is before start_at 2026-10-03 17:00"),
        ("tournaments", "t.csv", t3("swiss,2026-10-03,,10,GBP,completed,,,,,,,"),
         "a completed tournament has no end_at"),
        ("tournaments", "t.csv", t3("swiss,2026-10-03,,-5,GBP,scheduled,,,,,,,"),
         "prize_pool -5 is out of range"),
        ("tournaments", "t.csv", t3("swiss,2026-10-03,,$500,GBP,scheduled,,,,,,,"),
         "prize_pool: '$500' is not an amount (digits with an optional '.', no currency sign)"),
        ("tournaments", "t.csv", t3("swiss,2026-10-03,,5.555,GBP,scheduled,,,,,,,"),
         "prize_pool: '5.555' has more than 2 decimals"),
        ("tournaments", "t.csv", t3("swiss,2026-10-03,,5,BTC,scheduled,,,,,,,"),
         "currency 'BTC' is not a known ISO 4217 code"),
        ("tournaments", "t.csv", t3("gauntlet,2026-10-03,,5,GBP,scheduled,,,,,,,"),
         "format 'gauntlet' is not one of single_elimination"),
        ("tournaments", "t.csv", t3("swiss,2026-10-03,,5,GBP,finished,,,,,,,"),
         "status 'finished' is not one of scheduled, registration_open, live, completed, cancelled"),
        ("tournaments", "t.csv", tournaments_with(f"{T1},P2,,0,,,finished"), "placement 0 is not positive"),
        ("tournaments", "t.csv", tournaments_with(f"{T1},P2,,first,,,finished"),
         "placement: 'first' is not a whole number"),
        ("tournaments", "t.csv", tournaments_with(f"{T1},P2,,5,,,finished"),
         "tournament T1 has a placement 5 but only 2 entries"),
        ("tournaments", "t.csv", tournaments_with(f"{T1},P2,,2,500,,finished"),
         "tournament T1 pays out 1100 GBP in prizes, more than its prize_pool 1000.00"),
        ("tournaments", "t.csv", tournaments_with(f"{T1},P2,,,,,banned"),
         "entry_status 'banned' is not one of"),
        ("tournaments", "t.csv",
         tournaments_with(T1.replace("Autumn Cup", "Autumn Open") + ",P2,,,,,finished"),
         "name 'Autumn Open' differs from the tournament's first row (line 2 (tournament_id T1))"),
        ("tournaments", "t.csv",
         tournaments_with(T1.replace(",8", ",1").replace("T1,", "T4,") + ",P1,,,,,finished",
                          T1.replace(",8", ",1").replace("T1,", "T4,") + ",P2,,,,,finished"),
         "tournament T4 has 2 entrants, more than its max_entrants 1"),
        ("tournaments", "t.json", b'{"tournaments": [], "entries": [{"player_id": "P1"}]}',
         "entries[0]: tournament_id is missing"),
        ("tournaments", "t.json", b'{"tournaments": [{"tournament_id": "T5", "entries": "none"}]}',
         "tournaments[0] (tournament_id T5).entries: entries is not a list"),
    ],
)  # fmt: skip
def test_every_kind_of_mistake_is_named_with_its_place_and_fix(kind, name, data, expected):
    found = problems(kind, name, data)
    assert any(expected in p for p in found), found


def test_size_and_record_limits(monkeypatch):
    monkeypatch.setattr(exports, "MAX_FILE_BYTES", 100)
    assert problems("players", "p.csv", csv_file(PLAYERS_HEADER, PLAYER_ROWS * 3)) == [
        f"file: {len(csv_file(PLAYERS_HEADER, PLAYER_ROWS * 3)):,} bytes, over the 100 limit; "
        "split the export into several files"
    ]
    monkeypatch.setattr(exports, "MAX_FILE_BYTES", 10_000_000)
    monkeypatch.setattr(exports, "MAX_RECORDS", 1)
    assert any(
        "more than 1 records" in p
        for p in problems("players", "p.csv", csv_file(PLAYERS_HEADER, PLAYER_ROWS))
    )


def test_every_problem_of_a_file_is_listed_in_line_order_up_to_a_cap():
    rows = [f"P{i},h{i:03d},XX,,2025-01-01,2025-02-01,,," for i in range(10, 20)]
    found = problems("players", "p.csv", csv_file(PLAYERS_HEADER, rows))
    assert len(found) == 10 and found[0].startswith("line 2 ") and found[-1].startswith("line 11 ")
    many = [f"P{i},h{i:03d},XX,,2025-01-01,2025-02-01,,," for i in range(100, 200)]
    with pytest.raises(ExportInvalid) as caught:
        validate("players", "p.csv", csv_file(PLAYERS_HEADER, many))
    assert caught.value.truncated and len(caught.value.problems) == exports.MAX_PROBLEMS
    assert "validation stopped after 50 problems" in caught.value.report()


def test_the_bundled_malformed_export_lists_all_of_its_problems():
    path = MALFORMED / "tournaments_2026-11-22.csv"
    players = {f"TRP-{n:05d}" for n in range(1, 241)}

    def known(kind, ids):
        return set(ids) & (players if kind == "players" else set())

    with pytest.raises(ExportInvalid) as caught:
        validate_export("tournaments", path.name, path.read_bytes(), lookup=known, now=NOW)
    places = [p.where for p in caught.value.problems]
    assert len(places) == 7 and places == sorted(places, key=lambda w: int(w.split()[1]))
