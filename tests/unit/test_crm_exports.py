"""CRM export files: whole-file validation, every problem named by row and field."""

import json
from datetime import UTC, datetime

import pytest

from ml.crm.exports import ExportInvalid, validate_crm_export

NOW = datetime(2026, 11, 25, tzinfo=UTC)
KNOWN = {"ana@flores.example": datetime(2026, 11, 1, tzinfo=UTC)}


def lookup(keys):
    return {k: v for k, v in KNOWN.items() if k in keys}


def check(kind, name, text):
    return validate_crm_export(kind, name, text.encode(), lookup=lookup, now=NOW)


def problems(kind, name, text):
    with pytest.raises(ExportInvalid) as info:
        check(kind, name, text)
    return info.value.report()


def test_a_good_leads_csv_keeps_its_rows_as_received():
    export = check(
        "leads",
        "l.csv",
        "record_id,email,source,created_at,phone\nr1, Ana@Flores.example ,web,2026-11-01T10:00:00Z,\n",
    )
    assert export.rows == [
        {
            "record_id": "r1",
            "email": "Ana@Flores.example",
            "source": "web",
            "created_at": "2026-11-01T10:00:00Z",
        }
    ]


def test_every_bad_row_and_field_is_named_and_the_file_rejected():
    report = problems(
        "leads",
        "l.csv",
        "record_id,email,source,created_at\nr1,ok@x.example,web,2026-11-01T10:00:00Z\nr2,bad(at)x,web,2026-11-01\n"
        "r3,c@x.example,,2030-01-01T00:00:00Z\nr1,d@x.example,web,2026-11-01T10:00:00Z\n",
    )
    assert "nothing of it was loaded" in report
    assert "line 3: email 'bad(at)x' is not an email address" in report
    assert "line 4: source is missing" in report and "line 4: created_at 2030-01-01 00:00 is after" in report
    assert "line 5: the same record as line 2" in report


def test_a_missing_column_and_an_unknown_one_are_reported_at_the_header():
    report = problems(
        "leads", "l.csv", "record_id,email,created_at,sorce\nr1,a@x.example,2026-11-01T00:00:00Z,web\n"
    )
    assert "column source is missing" in report and "unknown field 'sorce'; did you mean 'source'?" in report


def test_outcomes_must_point_at_known_leads_and_not_predate_them():
    report = problems(
        "outcomes",
        "o.csv",
        "email,outcome,occurred_at,value\nana@flores.example,won,2026-10-01T00:00:00Z,10.00\n"
        "who@x.example,lost,2026-11-02T00:00:00Z,\nana@flores.example,qualified,2026-11-02T00:00:00Z,5\n",
    )
    assert "line 2: occurred_at 2026-10-01 00:00 is before the lead was created" in report
    assert "line 3: email who@x.example is not a known lead" in report
    assert "line 4: a qualified outcome has a value" in report
    good = check(
        "outcomes", "o.csv", "email,outcome,occurred_at\nANA@flores.example,won,2026-11-03T00:00:00Z\n"
    )
    assert good.rows[0]["email_key"] == "ana@flores.example"


def test_campaigns_json_with_daily_figures_and_a_bad_day():
    doc = {
        "export": {"kind": "campaigns", "schema_version": 1},
        "campaigns": [
            {
                "campaign_id": "c1",
                "name": "Search",
                "channel": "Paid Search",
                "daily": [
                    {
                        "day": "2026-11-01",
                        "spend": "10.50",
                        "currency": "usd",
                        "impressions": 100,
                        "clicks": 5,
                        "conversions": 1,
                    }
                ],
            },
        ],
    }
    export = check("campaigns", "c.json", json.dumps(doc))
    assert export.rows[0]["channel"] == "paid_search" and export.daily[0]["currency"] == "USD"
    doc["campaigns"][0]["daily"].append(
        {**doc["campaigns"][0]["daily"][0], "day": "2026-11-02", "clicks": 500}
    )
    assert "campaigns[0].daily[1]: conversions <= clicks <= impressions does not hold" in problems(
        "campaigns", "c.json", json.dumps(doc)
    )


def test_a_file_in_the_wrong_inbox_or_format_is_rejected():
    assert "this is a 'touches' export in the leads inbox" in problems(
        "leads", "x.json", json.dumps({"export": {"kind": "touches"}, "leads": []})
    )
    assert "neither .csv nor .json" in problems("leads", "x.xlsx", "a,b\n")
    assert "the file is empty" in problems("touches", "t.csv", "")
