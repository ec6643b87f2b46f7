"""Campaign insights: what worked per tenant, by channel, campaign, segment and source, and the
recommendations that follow from the figures.

Rates count only *mature* leads: those created at least `horizon_days` before `now`, whatever
their status. Counting a young lead as soon as it has an outcome would favour fast-closing wins
(a win closes in about three weeks, a loss later, and many losers are never marked lost), so a
group full of recent leads would look better than it is; counting young open leads as non-wins
would make it look worse. A fixed cohort cut-off has neither bias. Spend is summed over the same
window (campaign days before the cut-off), so cost per lead divides like by like.

Uplift is the group's conversion rate minus the tenant's baseline (its overall rate). Because
the group is part of the baseline, its interval comes from the group against *the rest of the
tenant* (two independent samples): Newcombe's hybrid score interval (method 10, from Wilson
intervals) for p_group - p_rest, scaled by n_rest / n, since p_group - p_all = (n_rest / n) *
(p_group - p_rest) exactly. Newcombe's interval keeps its coverage for small groups and rates
near 0 or 1, where the Wald interval collapses to zero width (0 wins in 12 leads would read as
"certainly 0"), and never leaves [-1, 1].
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

DIMENSIONS = ("channel", "campaign", "segment", "source")
Z_95 = 1.959963984540054
DEFAULT_HORIZON_DAYS = 60
# Below these a tenant's figures are shown but nothing is recommended: with ~130 mature leads
# every group's interval is a few dozen points wide.
MIN_TENANT_LEADS = 200
MIN_TENANT_CONVERSIONS = 30
# A group needs this many mature leads before its uplift may drive a recommendation.
MIN_GROUP_LEADS = 30
CI_METHOD = (
    "Newcombe hybrid score (Wilson) interval, 95%, group vs the rest of the tenant, scaled to vs-baseline"
)


@dataclass(frozen=True)
class LeadFact:
    lead_id: str
    source: str
    campaign_id: str | None
    created_at: datetime
    status: str  # open | qualified | won | lost


@dataclass(frozen=True)
class CampaignFact:
    campaign_id: str
    name: str
    channel: str
    segment: str | None


@dataclass(frozen=True)
class SpendFact:
    campaign_id: str
    day: date
    spend: Decimal
    currency: str


@dataclass(frozen=True)
class InsightRow:
    dimension: str
    value: str
    label: str
    leads: int
    conversions: int
    conversion_rate: float | None
    spend: Decimal | None
    cost_per_lead: Decimal | None
    cost_per_conversion: Decimal | None
    uplift: float | None
    uplift_ci_low: float | None
    uplift_ci_high: float | None

    @property
    def verdict(self) -> str:
        """better | worse | unclear (the interval straddles 0) | no data."""
        if self.uplift_ci_low is None or self.uplift_ci_high is None:
            return "no data"
        if self.uplift_ci_low > 0:
            return "better"
        if self.uplift_ci_high < 0:
            return "worse"
        return "unclear"


@dataclass(frozen=True)
class Recommendation:
    rank: int
    action: str  # shift_budget | scale | pause | prioritise | deprioritise | insufficient_data
    dimension: str | None
    value: str | None
    text: str
    evidence: list[dict] = field(default_factory=list)  # the rows it rests on (dimension, value, figures)
    target: dict | None = None  # shift_budget: the row the budget goes to

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Insights:
    now: datetime
    cutoff: datetime
    horizon_days: int
    baseline_rate: float | None
    leads: int  # mature leads counted
    conversions: int
    young_leads: int  # too recent to count
    currency: str | None
    rows: list[InsightRow]
    recommendations: list[Recommendation]
    sufficient: bool
    notes: list[str]

    def method(self) -> dict:
        return {
            "maturity": (
                f"only leads created before {self.cutoff.date().isoformat()} ({self.horizon_days} days "
                "before now) count, won or not; younger leads are left out of every rate"
            ),
            "outcome_horizon_days": self.horizon_days,
            "cutoff": self.cutoff.isoformat(),
            "young_leads_excluded": self.young_leads,
            "uplift": "group conversion rate minus the tenant's overall conversion rate",
            "confidence_interval": CI_METHOD,
            "sufficient_data": self.sufficient,
            "notes": self.notes,
        }


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion (no continuity correction)."""
    if n <= 0:
        raise ValueError("a proportion needs at least one trial")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 (or n) successes the bound is exactly 0 (or 1); the formula leaves float dust.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    return low, 1.0 if successes == n else min(1.0, centre + half)


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 (independent samples)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def uplift_interval(x: int, n: int, total_x: int, total_n: int) -> tuple[float, float, float]:
    """(uplift, low, high) of a group's rate against the overall rate it is part of."""
    rest_x, rest_n = total_x - x, total_n - n
    uplift = x / n - total_x / total_n
    if rest_n == 0:
        return 0.0, 0.0, 0.0  # the group is the whole tenant: it is the baseline
    low, high = newcombe_difference(x, n, rest_x, rest_n)
    weight = rest_n / total_n
    # Clamp rounding noise so the interval always holds its estimate.
    return uplift, min(low * weight, uplift), max(high * weight, uplift)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


def compute_insights(
    leads: Iterable[LeadFact],
    campaigns: Iterable[CampaignFact],
    spend: Iterable[SpendFact],
    *,
    now: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> Insights:
    """The tenant's insight rows and recommendations as of `now`."""
    cutoff = now - timedelta(days=horizon_days)
    campaign_info = {c.campaign_id: c for c in campaigns}
    leads = list(leads)
    mature = [lead for lead in leads if lead.created_at < cutoff]
    young = len(leads) - len(mature)
    notes: list[str] = []

    def keys(lead: LeadFact) -> dict[str, str | None]:
        info = campaign_info.get(lead.campaign_id) if lead.campaign_id else None
        if lead.campaign_id and info is None:
            info = CampaignFact(lead.campaign_id, lead.campaign_id, "unknown", None)
        return {
            "source": lead.source,
            "campaign": lead.campaign_id,
            "channel": info.channel if info else None,
            "segment": (info.segment or "unknown") if info else None,
        }

    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for lead in mature:
        won = lead.status == "won"
        for dimension, value in keys(lead).items():
            if value is not None:
                counts[(dimension, value)][0] += 1
                counts[(dimension, value)][1] += won
    total_n, total_x = len(mature), sum(1 for lead in mature if lead.status == "won")

    # Spend per group over the same window; a group mixing currencies gets none (not additive).
    money: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    currencies: dict[tuple[str, str], set[str]] = defaultdict(set)
    all_currencies: set[str] = set()
    for day in spend:
        if datetime.combine(day.day, datetime.min.time(), cutoff.tzinfo) >= cutoff:
            continue
        info = campaign_info.get(day.campaign_id) or CampaignFact(
            day.campaign_id, day.campaign_id, "unknown", None
        )
        for key in (
            ("campaign", day.campaign_id),
            ("channel", info.channel),
            ("segment", info.segment or "unknown"),
        ):
            money[key] += day.spend
            currencies[key].add(day.currency)
            counts.setdefault(key, [0, 0])
        all_currencies.add(day.currency)
    if len(all_currencies) > 1:
        notes.append(
            f"spend is in several currencies ({', '.join(sorted(all_currencies))}): not summed across them"
        )

    rows = []
    for (dimension, value), (n, x) in sorted(counts.items()):
        group_spend = None
        if (dimension, value) in money and len(currencies[(dimension, value)]) == 1:
            group_spend = _money(money[(dimension, value)])
        rate = x / n if n else None
        uplift = low = high = None
        if n and total_n:
            uplift, low, high = uplift_interval(x, n, total_x, total_n)
        label = campaign_info[value].name if dimension == "campaign" and value in campaign_info else value
        rows.append(
            InsightRow(
                dimension=dimension,
                value=value,
                label=label,
                leads=n,
                conversions=x,
                conversion_rate=rate,
                spend=group_spend,
                cost_per_lead=_money(group_spend / n) if group_spend is not None and n else None,
                cost_per_conversion=_money(group_spend / x) if group_spend is not None and x else None,
                uplift=uplift,
                uplift_ci_low=low,
                uplift_ci_high=high,
            )
        )
    sufficient = total_n >= MIN_TENANT_LEADS and total_x >= MIN_TENANT_CONVERSIONS
    currency = next(iter(all_currencies)) if len(all_currencies) == 1 else None
    insights = Insights(
        now=now,
        cutoff=cutoff,
        horizon_days=horizon_days,
        baseline_rate=total_x / total_n if total_n else None,
        leads=total_n,
        conversions=total_x,
        young_leads=young,
        currency=currency,
        rows=rows,
        recommendations=[],
        sufficient=sufficient,
        notes=notes,
    )
    insights.recommendations = recommend(insights)
    return insights


# --- recommendations --------------------------------------------------------------------------


def pp(value: float) -> str:
    """A rate difference in percentage points, signed: +7.4 pp."""
    return f"{value * 100:+.1f} pp"


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def ci(row: InsightRow) -> str:
    return f"95% CI {row.uplift_ci_low * 100:+.1f}..{row.uplift_ci_high * 100:+.1f}"


def cost(value: Decimal | None, currency: str | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if currency == "USD" else f"{value:,.2f} {currency or ''}".strip()


def evidence(row: InsightRow) -> dict:
    """The figures a recommendation rests on, as stored in the insight row it names."""
    return {
        "dimension": row.dimension,
        "value": row.value,
        "label": row.label,
        "leads": row.leads,
        "conversions": row.conversions,
        "conversion_rate": row.conversion_rate,
        "uplift": row.uplift,
        "uplift_ci_low": row.uplift_ci_low,
        "uplift_ci_high": row.uplift_ci_high,
        "cost_per_conversion": None if row.cost_per_conversion is None else str(row.cost_per_conversion),
    }


def _describe(row: InsightRow, currency: str | None, *, with_cost: bool = True) -> str:
    parts = []
    if with_cost and row.spend is not None:
        parts.append(f"cost per conversion {cost(row.cost_per_conversion, currency)}")
    parts.append(f"conversion {pct(row.conversion_rate)} of {row.leads} leads")
    parts.append(f"uplift {pp(row.uplift)}, {ci(row)}")
    return f"{row.label} ({', '.join(parts)})"


def _impact(row: InsightRow) -> float:
    """Conversions gained or lost over the window against the baseline: the ranking key."""
    return abs(row.uplift or 0.0) * row.leads


def recommend(insights: Insights) -> list[Recommendation]:
    """Concrete, ranked recommendations, each naming the rows (and figures) it rests on."""
    currency = insights.currency
    if not insights.sufficient:
        return [
            Recommendation(
                1,
                "insufficient_data",
                None,
                None,
                f"Too little data to say: {insights.leads} mature leads and {insights.conversions} "
                f"conversions (at least {MIN_TENANT_LEADS} and {MIN_TENANT_CONVERSIONS} are needed before "
                "recommending); the figures are shown, but every difference is within noise.",
            )
        ]
    judged = [r for r in insights.rows if r.leads >= MIN_GROUP_LEADS and r.verdict in ("better", "worse")]
    by = defaultdict(list)
    for row in judged:
        by[(row.dimension, row.verdict)].append(row)
    for group in by.values():
        group.sort(key=_impact, reverse=True)
    recs: list[tuple[float, Recommendation]] = []

    paid_worse = [r for r in by[("campaign", "worse")] if r.spend]
    paid_better = [r for r in by[("campaign", "better")] if r.spend]
    if paid_worse and paid_better:
        src, dst = paid_worse[0], paid_better[0]
        text = f"Move budget from {_describe(src, currency)} to {_describe(dst, currency)}."
        recs.append(
            (
                _impact(src) + _impact(dst),
                Recommendation(0, "shift_budget", "campaign", src.value, text, [evidence(src), evidence(dst)],
                               {"dimension": "campaign", "value": dst.value}),
            )
        )  # fmt: skip
    shifted = {r.evidence[0]["value"] for _, r in recs} | {r.target["value"] for _, r in recs}
    for row in by[("campaign", "worse")]:
        if row.spend and row.value not in shifted:
            recs.append(
                (
                    _impact(row),
                    Recommendation(0, "pause", "campaign", row.value,
                                   f"Pause or rework {_describe(row, currency)}: it converts below the "
                                   f"tenant's baseline of {pct(insights.baseline_rate)}.", [evidence(row)]),
                )
            )  # fmt: skip
    for row in by[("campaign", "better")]:
        if row.value in shifted:
            continue
        recs.append(
            (
                _impact(row),
                Recommendation(0, "scale", "campaign", row.value,
                               f"Scale {_describe(row, currency)}: it converts above the tenant's "
                               f"baseline of {pct(insights.baseline_rate)}.", [evidence(row)]),
            )
        )  # fmt: skip
    channels = {(r.value, r.leads) for r in insights.rows if r.dimension == "channel"}
    for dimension in ("channel", "segment", "source"):
        noun = {"channel": "channel", "segment": "segment", "source": "lead source"}[dimension]
        for verdict, action, verb in (
            ("better", "prioritise", "Prioritise"),
            ("worse", "deprioritise", "Deprioritise"),
        ):
            for row in by[(dimension, verdict)]:
                if dimension == "source" and (row.value, row.leads) in channels:
                    continue  # the same leads as the channel of that name: one recommendation is enough
                described = _describe(row, currency, with_cost=dimension != "source")
                recs.append(
                    (
                        _impact(row),
                        Recommendation(0, action, dimension, row.value, f"{verb} the {noun} {described}.",
                                       [evidence(row)]),
                    )
                )  # fmt: skip
    ranked = sorted(recs, key=lambda pair: (pair[1].action != "shift_budget", -pair[0]))
    # Spend without a verdict: say plainly that the data cannot tell yet.
    unclear = sorted(
        (
            r
            for r in insights.rows
            if r.dimension == "campaign" and r.spend and r.verdict in ("unclear", "no data")
        ),
        key=lambda r: r.spend,
        reverse=True,
    )
    tail = [
        Recommendation(0, "insufficient_data", "campaign", row.value,
                       f"Too little data to say for {row.label}: "
                       + (f"uplift {pp(row.uplift)}, {ci(row)} straddles 0" if row.uplift is not None
                          else "no mature leads yet")
                       + f" after {cost(row.spend, currency)} spent; keep collecting before moving budget.",
                       [evidence(row)])
        for row in unclear[:3]
    ]  # fmt: skip
    out = [pair[1] for pair in ranked] + tail
    return [
        Recommendation(i, r.action, r.dimension, r.value, r.text, r.evidence, r.target)
        for i, r in enumerate(out, 1)
    ]


def recommendations_markdown(recommendations: Sequence[Recommendation]) -> str:
    return "\n".join(f"{r.rank}. **{r.action}**: {r.text}" for r in recommendations) or "_none_"


def inputs_from_history(history) -> tuple[list[LeadFact], list[CampaignFact], list[SpendFact]]:
    """A synthetic history (ml.crm.synthetic) as the facts insights read: one lead per email key
    (its first record), won/lost as its last settling outcome, the way crm_seed loads it."""
    from ml.crm.emails import email_key, lead_id_for

    status = history.statuses()
    leads: dict[str, LeadFact] = {}
    for record in history.records:
        key = email_key(record.email)
        if key is None or key in leads:
            continue
        leads[key] = LeadFact(
            lead_id_for(history.tenant_id, key), record.source, record.campaign_id, record.created_at,
            status.get(key, "open"),
        )  # fmt: skip
    campaigns = [CampaignFact(c.campaign_id, c.name, c.channel, c.segment) for c in history.campaigns]
    spend = [SpendFact(d.campaign_id, d.day, d.spend, d.currency) for d in history.campaign_days]
    return list(leads.values()), campaigns, spend
