"""Campaign insights on the synthetic CRM history: the intervals are right, the planted campaign
qualities and source effects show up, young leads do not count, and recommendations rest on rows."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from ml.crm.insights import (
    MIN_GROUP_LEADS,
    CampaignFact,
    LeadFact,
    SpendFact,
    compute_insights,
    inputs_from_history,
    newcombe_difference,
    uplift_interval,
    wilson,
)
from ml.crm.synthetic import SIGNAL, generate_history

START, END = date(2026, 6, 1), date(2026, 11, 25)
NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture(scope="module", params=["coreldove", "business_directory"])
def tenant_history(request):
    history = generate_history(request.param, START, END)
    return history, compute_insights(*inputs_from_history(history), now=history.now)


def rows_of(insights, dimension):
    return {r.value: r for r in insights.rows if r.dimension == dimension}


def test_wilson_and_newcombe_match_the_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 vs 48/80, method 10.
    low, high = newcombe_difference(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    # Wilson at 0 successes keeps a real upper bound (Wald would say exactly 0).
    low, high = wilson(0, 12)
    assert low == 0 and round(high, 4) == 0.2425


def test_uplift_against_the_baseline_is_the_rest_difference_scaled():
    uplift, low, high = uplift_interval(30, 100, 90, 500)  # group 30%, rest 15%, overall 18%
    assert uplift == pytest.approx(0.30 - 0.18)
    rest_low, rest_high = newcombe_difference(30, 100, 60, 400)
    assert (low, high) == pytest.approx((rest_low * 0.8, rest_high * 0.8))
    assert low < uplift < high and low > 0
    assert uplift_interval(10, 40, 10, 40) == (0.0, 0.0, 0.0)  # the group is the tenant


def test_every_interval_holds_its_estimate_and_rates_are_proportions(tenant_history):
    _, insights = tenant_history
    assert insights.rows
    for row in insights.rows:
        if row.leads:
            assert 0 <= row.conversion_rate <= 1
            assert row.uplift_ci_low <= row.uplift <= row.uplift_ci_high
        for money in (row.spend, row.cost_per_lead, row.cost_per_conversion):
            assert money is None or money >= 0


def test_the_planted_campaign_qualities_land_on_the_right_side(tenant_history):
    history, insights = tenant_history
    campaigns = rows_of(insights, "campaign")
    sized = [c for c in history.campaigns if campaigns[c.campaign_id].leads >= 100]
    best, worst = max(sized, key=lambda c: c.quality), min(sized, key=lambda c: c.quality)
    assert best.quality > worst.quality + 0.5
    assert campaigns[worst.campaign_id].verdict == "worse"
    assert campaigns[best.campaign_id].uplift > campaigns[worst.campaign_id].uplift_ci_high
    # Within a channel (same source effect), a higher planted quality means a higher rate.
    for channel in ("paid_search", "paid_social"):
        same = sorted((c for c in sized if c.channel == channel), key=lambda c: c.quality)
        if len(same) >= 2:
            assert (
                campaigns[same[-1].campaign_id].conversion_rate
                > campaigns[same[0].campaign_id].conversion_rate
            )


def test_the_planted_source_effects_show_up(tenant_history):
    _, insights = tenant_history
    sources = rows_of(insights, "source")
    assert sources["referral"].verdict == "better"
    assert sources["paid_social"].verdict == "worse"
    assert sources["cold_outbound"].uplift < 0
    # The ordering of the big sources follows the planted effects.
    big = sorted(
        (s for s in sources.values() if s.leads >= 100), key=lambda s: SIGNAL.source_effects[s.value]
    )
    rates = [s.conversion_rate for s in big]
    concordant = sum(1 for i in range(len(rates)) for j in range(i + 1, len(rates)) if rates[j] > rates[i])
    pairs = len(rates) * (len(rates) - 1) // 2
    assert concordant / pairs >= 0.7


def test_recommendations_are_ranked_concrete_and_rest_on_rows(tenant_history):
    _, insights = tenant_history
    recs = insights.recommendations
    assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
    rows = {(r.dimension, r.value): r for r in insights.rows}
    assert recs[0].action == "shift_budget"
    src, dst = rows[("campaign", recs[0].value)], rows[(recs[0].target["dimension"], recs[0].target["value"])]
    assert src.verdict == "worse" and dst.verdict == "better"
    assert src.label in recs[0].text and dst.label in recs[0].text and "95% CI" in recs[0].text
    for rec in recs:
        for item in rec.evidence:
            row = rows[(item["dimension"], item["value"])]
            assert item["uplift"] == row.uplift
            if rec.action in ("prioritise", "scale"):
                assert row.verdict == "better" and row.leads >= MIN_GROUP_LEADS
            if rec.action in ("deprioritise", "pause"):
                assert row.verdict == "worse" and row.leads >= MIN_GROUP_LEADS
            if rec.action == "insufficient_data":
                assert row.verdict in ("unclear", "no data")


def test_a_small_tenant_gets_figures_but_no_recommendations_on_noise():
    history = generate_history("bizoholic", START, END)
    insights = compute_insights(*inputs_from_history(history), now=history.now)
    assert insights.rows and not insights.sufficient
    assert [r.action for r in insights.recommendations] == ["insufficient_data"]
    assert "Too little data to say" in insights.recommendations[0].text


def lead(n, created, status, campaign="c1", source="paid_search"):
    return LeadFact(f"ld_{n}", source, campaign, created, status)


def test_only_mature_leads_count_and_spend_covers_the_same_window():
    old, young = NOW - timedelta(days=90), NOW - timedelta(days=10)
    leads = [lead(i, old, "won" if i < 10 else "lost") for i in range(40)]
    leads += [lead(100 + i, young, "won") for i in range(20)]  # young and already won: not counted
    campaigns = [CampaignFact("c1", "Search #1", "paid_search", "smb")]
    spend = [
        SpendFact("c1", (old - timedelta(days=1)).date(), Decimal("100.00"), "USD"),
        SpendFact("c1", young.date(), Decimal("999.00"), "USD"),  # after the cut-off
    ]
    insights = compute_insights(leads, campaigns, spend, now=NOW, horizon_days=60)
    assert (insights.leads, insights.conversions, insights.young_leads) == (40, 10, 20)
    assert insights.baseline_rate == 0.25
    row = rows_of(insights, "campaign")["c1"]
    assert (row.spend, row.cost_per_lead, row.cost_per_conversion) == (
        Decimal("100.00"),
        Decimal("2.50"),
        Decimal("10.00"),
    )
    assert "before 2026-09-26" in insights.method()["maturity"]


def test_mixed_currencies_are_never_summed():
    leads = [lead(i, NOW - timedelta(days=90), "won", campaign=f"c{i % 2}") for i in range(4)]
    campaigns = [CampaignFact("c0", "A", "email", "smb"), CampaignFact("c1", "B", "email", "smb")]
    day = (NOW - timedelta(days=91)).date()
    spend = [SpendFact("c0", day, Decimal("5"), "USD"), SpendFact("c1", day, Decimal("7"), "EUR")]
    insights = compute_insights(leads, campaigns, spend, now=NOW)
    campaigns_rows, channel = rows_of(insights, "campaign"), rows_of(insights, "channel")["email"]
    assert campaigns_rows["c0"].spend == Decimal("5.00") and campaigns_rows["c1"].spend == Decimal("7.00")
    assert channel.spend is None and insights.currency is None
    assert any("several currencies" in note for note in insights.notes)
