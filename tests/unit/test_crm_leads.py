"""BottleCRM records -> leads: status and source mapping, the merge rules, outcomes."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ml.crm.emails import lead_id_for
from ml.crm.leads import (
    RecordError,
    bottlecrm_doc,
    normalise_source,
    parse_record,
    plan_merge,
    record_outcomes,
    status_from_outcomes,
)

LEAD = {
    "id": "5b1f",
    "first_name": "Ana",
    "last_name": "Silva",
    "email": "Ana@Flores.example ",
    "phone": "(512) 555-0142",
    "status": "in process",
    "source": "compaign",
    "rating": "WARM",
    "opportunity_amount": "1200.00",
    "company_name": "Flores Lda",
    "created_at": "2024-05-02T10:11:12Z",
    "updated_at": "2024-05-03T08:00:00Z",
    "assigned_to": [],
    "tags": [],
    "custom_fields": {"utm_medium": "paid_search", "utm_campaign": "cor-ps-01", "x": 1},
}


def record(record_id, email, created, origin="api", **doc):
    return parse_record(origin, record_id, {"email": email, "created_at": created, "source": "other", **doc})


def test_a_bottlecrm_lead_becomes_a_record():
    r = parse_record("api", "5b1f", bottlecrm_doc(LEAD))
    assert (r.email_key, r.email, r.name, r.phone) == (
        "ana@flores.example",
        "Ana@Flores.example",
        "Ana Silva",
        "+15125550142",
    )
    assert (r.source, r.campaign_id, r.outcome) == ("paid_search", "cor-ps-01", "qualified")
    assert r.campaign_data == {
        "utm_medium": "paid_search",
        "utm_campaign": "cor-ps-01",
        "campaign_id": "cor-ps-01",
    }
    assert r.value is None  # an amount counts only once the lead is won
    assert "rating" not in r.doc and r.doc["custom_fields"] == {
        "utm_medium": "paid_search",
        "utm_campaign": "cor-ps-01",
    }


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("converted", "won"),
        ("closed", "lost"),
        ("in process", "qualified"),
        ("assigned", None),
        ("recycled", None),
    ],
)
def test_statuses_map_to_outcomes(status, outcome):
    assert parse_record("api", "1", {**bottlecrm_doc(LEAD), "status": status}).outcome == outcome


@pytest.mark.parametrize(
    ("raw", "utm", "expected"),
    [
        ("compaign", "paid_social", "paid_social"),
        ("compaign", None, "campaign"),
        ("call", None, "cold_outbound"),
        ("partner", None, "referral"),
        ("Public Relations", None, "event"),
        ("web", None, "web"),
        ("", None, "unknown"),
    ],
)
def test_sources_are_normalised(raw, utm, expected):
    assert normalise_source(raw, utm) == expected


def test_a_record_without_creation_time_is_an_error_and_a_bad_email_has_no_key():
    with pytest.raises(RecordError):
        parse_record("api", "1", {"email": "a@b.example"})
    assert record("2", "a(at)b.example", "2026-01-01T00:00:00Z").email_key is None
    assert record("3", "a@b.example", "2026-01-01T00:00:00Z", phone="n/a").phone == "n/a"  # kept as received


def test_records_of_one_email_merge_into_the_earliest_most_complete_lead():
    later = record(
        "b", " ANA@flores.example", "2026-02-01T00:00:00Z", phone="+44 20 7946 0958", source="partner"
    )
    first = record("a", "ana@flores.example", "2026-01-01T00:00:00Z", first_name="Ana", origin="file:x")
    plan = plan_merge("t1", [later, first], {})
    assert (plan.created, plan.merged, plan.updated) == (1, 1, 0)
    [lead] = plan.leads
    assert lead["lead_id"] == lead_id_for("t1", "ana@flores.example")
    assert lead["created_at"] == datetime(2026, 1, 1, tzinfo=UTC) and lead["source"] == "web"  # of the first
    assert lead["phone"] == "+442079460958" and lead["name"] == "Ana" and lead["source_records"] == 2
    assert [h["action"] for h in plan.history] == ["created", "merged"]


def test_a_known_record_is_updated_or_skipped_and_a_rejected_one_kept():
    a = record("a", "ana@flores.example", "2026-01-01T00:00:00Z")
    stored = {a.key: a}
    same = plan_merge("t1", [a], stored)
    assert (same.unchanged, same.leads, same.history) == (1, [], [])
    changed = record(
        "a",
        "ana@flores.example",
        "2026-01-01T00:00:00Z",
        status="converted",
        updated_at="2026-02-01T00:00:00Z",
    )
    plan = plan_merge("t1", [changed], stored, [("api", "z", {"email": "x"}, "not an email")])
    assert (plan.updated, plan.rejected) == (1, 1)
    assert plan.leads[0]["source_records"] == 1  # a new version is not a new record
    assert plan.history[1] == {
        "origin": "api",
        "record_id": "z",
        "lead_id": None,
        "action": "rejected",
        "record": {"email": "x"},
        "reason": "not an email",
    }


def test_outcomes_come_from_the_first_version_showing_a_status():
    base = {"first_name": "A"}
    v1 = record(
        "a",
        "a@x.example",
        "2026-01-01T00:00:00Z",
        status="in process",
        updated_at="2026-01-03T00:00:00Z",
        **base,
    )
    v2 = record(
        "a",
        "a@x.example",
        "2026-01-01T00:00:00Z",
        status="converted",
        updated_at="2026-01-09T00:00:00Z",
        opportunity_amount="99.50",
    )
    v3 = record(
        "a", "a@x.example", "2026-01-01T00:00:00Z", status="converted", updated_at="2026-01-20T00:00:00Z"
    )
    found = record_outcomes([v3, v2, v1])
    assert found[("a@x.example", "qualified")][0] == datetime(2026, 1, 3, tzinfo=UTC)
    assert found[("a@x.example", "won")] == (datetime(2026, 1, 9, tzinfo=UTC), Decimal("99.50"))


def test_status_is_the_last_final_outcome():
    t = lambda d: datetime(2026, 1, d, tzinfo=UTC)  # noqa: E731
    assert status_from_outcomes([]) == "open"
    assert status_from_outcomes([("qualified", t(1))]) == "qualified"
    assert status_from_outcomes([("qualified", t(1)), ("lost", t(2)), ("won", t(5))]) == "won"
    assert status_from_outcomes([("won", t(1)), ("lost", t(3))]) == "lost"


def test_a_reread_of_an_unchanged_rejected_record_is_not_logged_again():
    bad = ("api", "z", {"email": "x"}, "not an email")
    again = plan_merge("t1", [], {}, [bad], {("api", "z"): {"email": "x"}})
    assert (again.rejected, again.unchanged, again.history) == (0, 1, [])
    edited = plan_merge(
        "t1", [], {}, [("api", "z", {"email": "y"}, "not an email")], {("api", "z"): {"email": "x"}}
    )
    assert edited.rejected == 1 and edited.history[0]["record"] == {"email": "y"}
