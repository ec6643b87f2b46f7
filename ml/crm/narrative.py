"""A narrative summary of campaign insights that is grounded on the computed figures.

The prompt carries only the figures and recommendations (as JSON, already formatted the way a
reader sees them) and tells the model to use no other facts. The answer is then checked: every
number it quotes must be one of the figures, within the rounding of the quoted number. A
narrative that quotes anything else is dropped (the figures and recommendations stand alone).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ml.crm.insights import InsightRow, Insights, pct, pp

SYSTEM_PROMPT = (
    "You are a marketing analyst writing for the owner of a small business. Summarise what worked "
    "and what to do next in at most 120 words of plain prose (no lists, no headings). Use ONLY the "
    "facts in the JSON the user sends: every number you write must appear in it exactly as written "
    "there (percentages, percentage points, amounts, counts). Do not compute new numbers, do not "
    "estimate, and do not mention anything the JSON does not contain. If the JSON says the data is "
    "insufficient, say that and recommend nothing."
)
MAX_ROWS_PER_DIMENSION = 4

# A number as people write it: optional sign or currency, thousands separators, decimals.
_NUMBER = re.compile(r"(?<![\w.])[-+−]?[$€£]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")


def _row(row: InsightRow, currency: str | None) -> dict:
    item = {
        "name": row.label,
        "leads": row.leads,
        "conversions": row.conversions,
        "conversion_rate": pct(row.conversion_rate) if row.conversion_rate is not None else None,
        "uplift_vs_baseline": pp(row.uplift) if row.uplift is not None else None,
        "uplift_95ci_pp": (
            f"{row.uplift_ci_low * 100:+.1f}..{row.uplift_ci_high * 100:+.1f}"
            if row.uplift_ci_low is not None
            else None
        ),
        "verdict": row.verdict,
    }
    if row.spend is not None:
        item["spend"] = f"{row.spend:,.2f} {currency or ''}".strip()
        if row.cost_per_conversion is not None:
            item["cost_per_conversion"] = f"{row.cost_per_conversion:,.2f}"
    return item


def grounding_payload(tenant_id: str, insights: Insights) -> dict:
    """What the model may talk about: the headline figures, the strongest rows of each dimension
    (by leads affected) and the recommendations, as the reader sees them."""
    rows: dict[str, list[dict]] = {}
    for dimension in ("channel", "campaign", "segment", "source"):
        group = [r for r in insights.rows if r.dimension == dimension and r.uplift is not None]
        group.sort(key=lambda r: abs(r.uplift) * r.leads, reverse=True)
        rows[dimension] = [_row(r, insights.currency) for r in group[:MAX_ROWS_PER_DIMENSION]]
    return {
        "tenant": tenant_id,
        "leads_counted": insights.leads,
        "conversions": insights.conversions,
        "baseline_conversion_rate": pct(insights.baseline_rate)
        if insights.baseline_rate is not None
        else None,
        "leads_created_before": insights.cutoff.date().isoformat(),
        "younger_leads_not_counted": insights.young_leads,
        "data_sufficient": insights.sufficient,
        "by_dimension": rows,
        "recommendations": [r.text for r in insights.recommendations],
    }


def chat_messages(payload: dict) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(payload, ensure_ascii=False, sort_keys=True)},
    ]


@dataclass(frozen=True)
class Quoted:
    text: str
    value: float
    decimals: int


def numbers_in(text: str) -> list[Quoted]:
    found = []
    for match in _NUMBER.finditer(text):
        whole, fraction = match.group(1), match.group(2) or ""
        found.append(
            Quoted(match.group(0), float(whole.replace(",", "") + fraction), max(len(fraction) - 1, 0))
        )
    return found


def ungrounded_numbers(narrative: str, payload: dict) -> list[str]:
    """The numbers `narrative` quotes that are none of the payload's figures (sign ignored: "fell
    6.1 points" quotes -6.1 pp), each compared within the rounding of the quoted number."""
    figures = {abs(q.value) for q in numbers_in(json.dumps(payload, ensure_ascii=False))}
    bad = []
    for quoted in numbers_in(narrative):
        tolerance = 0.5 * 10**-quoted.decimals + 1e-9
        if not any(abs(abs(quoted.value) - figure) <= tolerance for figure in figures):
            bad.append(quoted.text)
    return bad


@dataclass(frozen=True)
class Narrative:
    status: str  # not configured | ok | rejected | failed
    text: str | None
    model: str | None
    reason: str | None = None

    @property
    def label(self) -> str:
        return self.status if self.reason is None else f"{self.status}: {self.reason}"


def check_narrative(answer: str, payload: dict, model: str | None) -> Narrative:
    """Keep the answer only when every number in it is grounded."""
    text = answer.strip()
    if not text:
        return Narrative("rejected", None, model, "the model returned an empty answer")
    bad = ungrounded_numbers(text, payload)
    if bad:
        shown = ", ".join(bad[:5])
        return Narrative(
            "rejected", None, model, f"it quotes numbers that are not among the figures ({shown}); dropped"
        )
    return Narrative("ok", text, model)
