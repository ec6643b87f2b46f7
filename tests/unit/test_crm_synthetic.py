"""The synthetic CRM history is the ground truth of the lead-scoring tests: check it holds."""

from collections import Counter
from datetime import date

import pytest

from ml.crm.emails import email_key, is_free_domain
from ml.crm.synthetic import SCORING_DELAY, generate_history

START, END = date(2026, 6, 1), date(2026, 9, 1)


@pytest.fixture(scope="module")
def history():
    return generate_history("coreldove", START, END, invalid_email_rate=0.01)


def test_same_seed_same_history_other_seed_other_history(history):
    again = generate_history("coreldove", START, END, invalid_email_rate=0.01)
    assert [r.record_id for r in again.records] == [r.record_id for r in history.records]
    assert again.outcomes == history.outcomes
    other = generate_history("coreldove", START, END, seed=7, invalid_email_rate=0.01)
    assert [r.record_id for r in other.records] != [r.record_id for r in history.records]


def test_nothing_happens_before_the_scoring_time_except_prior_ad_clicks(history):
    created = {}
    for record in history.records:
        key = email_key(record.email)
        if key is not None:
            created.setdefault(key, record.created_at)
    for outcome in history.outcomes:
        assert outcome.occurred_at >= created[outcome.email_key] + SCORING_DELAY
        assert outcome.occurred_at < history.now
    early = [t for t in history.touches if t.touched_at < created[t.email_key]]
    assert early and {t.kind for t in early} == {"ad_click"}


def test_resubmissions_and_bad_addresses_are_present(history):
    keys = Counter(email_key(r.email) for r in history.records)
    assert keys[None] > 0, "invalid addresses were asked for"
    assert any(n > 1 for key, n in keys.items() if key), "re-submissions share a normalised email"
    assert set(history.win_probability) == {k for k in keys if k}


def test_planted_signal_shows_in_the_outcomes(history):
    won = {o.email_key for o in history.outcomes if o.outcome == "won"}
    closed = {o.email_key for o in history.outcomes if o.outcome in ("won", "lost")}

    def win_rate(keys):
        keys = [k for k in keys if k in closed]
        return sum(k in won for k in keys) / len(keys)

    corporate = [k for k in history.win_probability if not is_free_domain(k)]
    free = [k for k in history.win_probability if is_free_domain(k)]
    assert win_rate(corporate) > win_rate(free) + 0.1


def test_campaign_conversions_count_the_leads_each_campaign_brought(history):
    by_day = Counter()
    seen = set()
    for record in history.records:
        key = email_key(record.email)
        if record.campaign_id and key and key not in seen:
            by_day[(record.campaign_id, record.created_at.date())] += 1
        seen.add(key)
    for row in history.campaign_days:
        assert row.conversions == by_day[(row.campaign_id, row.day)]
        assert row.impressions >= row.clicks >= row.conversions
        assert row.spend >= 0
