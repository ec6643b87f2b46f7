"""A synthetic CRM history with a known signal planted: the ground truth for fixtures, tests and
benchmarks of lead scoring and campaign insights.

Everything is drawn from one seeded `random.Random`, so a (tenant, window, seed) gives the same
history on every machine. People, companies and addresses are invented; company domains use the
reserved `.example` TLD, and free-mail addresses carry random digits.

The planted signal (`SIGNAL`): a lead's chance of being won is `sigmoid(logit)` with

    logit = intercept
          + corporate_email      if the address is not at a free mailbox provider
          + phone_present        if the lead left a phone number
          + per_early_touch * min(touches in the lead's first 24 hours, 6)
          + source effect        (referral and events convert, cold outbound does not)
          + segment effect       (of the campaign's audience, when the lead came from a campaign)
          + campaign quality     (a hidden per-campaign effect, normal with sd `campaign_sd`)

Everything in the logit is observable 24 hours after the lead was created (`SCORING_DELAY`), and
no outcome happens before then, so a model scoring at `created_at + SCORING_DELAY` can find the
whole signal without looking ahead. A trap for models that do look ahead: every won lead gets
onboarding touches *after* it was won, which predict the label perfectly and are never available
at scoring time.

Campaign daily figures are consistent with the leads: a day's `conversions` is the number of
distinct leads the campaign brought that day (form fills), clicks and impressions follow from the
campaign's conversion and click-through rates, and spend from its cost per click.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from ml.crm.emails import FREE_EMAIL_DOMAINS, email_key
from ml.crm.leads import status_from_outcomes

SCORING_DELAY = timedelta(hours=24)
EARLY_TOUCH_CAP = 6


@dataclass(frozen=True)
class PlantedSignal:
    intercept: float = -2.4
    corporate_email: float = 1.1
    phone_present: float = 0.7
    per_early_touch: float = 0.35
    campaign_sd: float = 0.5
    source_effects: dict[str, float] = field(
        default_factory=lambda: {
            "web": 0.0,
            "referral": 0.9,
            "paid_search": 0.3,
            "paid_social": -0.6,
            "email": 0.2,
            "event": 0.5,
            "cold_outbound": -0.8,
        }
    )
    segment_effects: dict[str, float] = field(
        default_factory=lambda: {"enterprise": 0.5, "mid_market": 0.15, "smb": -0.2, "consumer": -0.4}
    )

    def logit(self, *, corporate: bool, phone: bool, early_touches: int, source: str, segment: str | None,
              campaign_quality: float) -> float:  # fmt: skip
        return (
            self.intercept
            + (self.corporate_email if corporate else 0.0)
            + (self.phone_present if phone else 0.0)
            + self.per_early_touch * min(early_touches, EARLY_TOUCH_CAP)
            + self.source_effects[source]
            + (self.segment_effects[segment] if segment else 0.0)
            + campaign_quality
        )


SIGNAL = PlantedSignal()

# Sources that come through a campaign of the same channel; the others are organic.
CAMPAIGN_CHANNELS = ("paid_search", "paid_social", "email")
CHANNEL_COST_PER_CLICK = {"paid_search": 1.85, "paid_social": 0.95, "email": 0.04}


@dataclass(frozen=True)
class TenantProfile:
    leads_per_day: float
    currency: str
    source_mix: dict[str, float]
    segments: tuple[str, ...]
    campaigns_per_channel: int = 3
    deal_value: float = 1_500.0


PROFILES: dict[str, TenantProfile] = {
    "coreldove": TenantProfile(
        leads_per_day=24,
        currency="USD",
        source_mix={
            "web": 0.3,
            "paid_search": 0.22,
            "paid_social": 0.22,
            "email": 0.12,
            "referral": 0.08,
            "event": 0.03,
            "cold_outbound": 0.03,
        },
        segments=("consumer", "smb", "mid_market"),
        deal_value=420.0,
    ),  # fmt: skip
    "business_directory": TenantProfile(
        leads_per_day=14,
        currency="USD",
        source_mix={
            "web": 0.25,
            "paid_search": 0.3,
            "paid_social": 0.1,
            "email": 0.1,
            "referral": 0.12,
            "event": 0.05,
            "cold_outbound": 0.08,
        },
        segments=("smb", "mid_market"),
        deal_value=1_200.0,
    ),  # fmt: skip
    # The agency's own pipeline is small: too few outcomes for a model of its own at first.
    "bizoholic": TenantProfile(
        leads_per_day=1.2,
        currency="USD",
        source_mix={
            "web": 0.2,
            "referral": 0.35,
            "event": 0.15,
            "email": 0.15,
            "paid_search": 0.1,
            "cold_outbound": 0.05,
            "paid_social": 0.0,
        },
        segments=("mid_market", "enterprise"),
        campaigns_per_channel=1,
        deal_value=18_000.0,
    ),  # fmt: skip
}
DEFAULT_PROFILE = PROFILES["business_directory"]


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    channel: str
    segment: str
    started_on: date
    ended_on: date | None
    quality: float  # hidden: the planted per-campaign effect
    conversion_rate: float  # leads per click
    click_through_rate: float


@dataclass(frozen=True)
class CampaignDay:
    campaign_id: str
    day: date
    spend: Decimal
    currency: str
    impressions: int
    clicks: int
    conversions: int


@dataclass(frozen=True)
class LeadRecord:
    """One record as the CRM holds it. Several records may share an email (re-submissions)."""

    record_id: str
    email: str  # as typed: duplicates differ in case and spacing, some are not emails at all
    first_name: str
    last_name: str
    phone: str | None
    company_name: str | None
    source: str
    campaign_id: str | None
    created_at: datetime
    utm: dict[str, str]


@dataclass(frozen=True)
class Touch:
    email_key: str
    campaign_id: str
    touched_at: datetime
    kind: str


@dataclass(frozen=True)
class Outcome:
    email_key: str
    outcome: str  # qualified | won | lost
    occurred_at: datetime
    value: Decimal | None


@dataclass
class CrmHistory:
    tenant_id: str
    start: date
    end: date  # exclusive: the history is as seen at midnight UTC of `end`
    campaigns: list[Campaign]
    campaign_days: list[CampaignDay]
    records: list[LeadRecord]
    touches: list[Touch]
    outcomes: list[Outcome]
    win_probability: dict[str, float]  # email_key -> the planted probability (ground truth)

    @property
    def now(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)

    def statuses(self) -> dict[str, str]:
        """Each person's status at `now`, by the platform's one rule (status_from_outcomes)."""
        seen: dict[str, list[tuple[str, datetime]]] = {}
        for outcome in self.outcomes:
            seen.setdefault(outcome.email_key, []).append((outcome.outcome, outcome.occurred_at))
        return {key: status_from_outcomes(events) for key, events in seen.items()}


_FIRST = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jamal", "Kira", "Luis",
          "Maya", "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yara",
          "Zane", "Aiko", "Bruno", "Carla", "Diego", "Esme")  # fmt: skip
_LAST = ("Silva", "Okafor", "Nguyen", "Schmidt", "Patel", "Garcia", "Kowalski", "Haddad", "Larsen",
         "Moreau", "Tanaka", "Rossi", "Mensah", "Novak", "Oliveira", "Brennan", "Ito",
         "Fischer", "Adeyemi", "Costa")  # fmt: skip
_COMPANY_A = ("Blue", "North", "Bright", "Oak", "Summit", "Harbor", "Cedar", "Lumen", "Atlas", "Pioneer",
              "Granite", "Willow", "Vertex", "Coral", "Maple")  # fmt: skip
_COMPANY_B = ("Dental", "Logistics", "Bakery", "Studios", "Fitness", "Legal", "Roofing", "Analytics",
              "Outfitters", "Clinic", "Supply", "Realty", "Coffee", "Labs", "Media")  # fmt: skip
_FREE_DOMAINS = tuple(
    sorted(("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me"))
)
assert set(_FREE_DOMAINS) <= FREE_EMAIL_DOMAINS
_NOT_EMAILS = ("n/a", "none", "-", "{first}.{last}(at){domain}", "{first}@", "{first} {last}@{domain}", "")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: exact and fast for the small rates used here.
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _campaigns(
    rng: random.Random, tenant_id: str, profile: TenantProfile, start: date, end: date
) -> list[Campaign]:
    campaigns, span = [], (end - start).days
    for channel in CAMPAIGN_CHANNELS:
        if profile.source_mix.get(channel, 0) <= 0:
            continue
        for n in range(profile.campaigns_per_channel):
            segment = rng.choice(profile.segments)
            # Staggered flights; the first of each channel runs the whole window so every
            # campaign-sourced lead always has a live campaign to come from.
            begin = start if n == 0 else start + timedelta(days=rng.randrange(max(span // 2, 1)))
            finish = (
                None
                if n == 0
                else min(end - timedelta(days=1), begin + timedelta(days=rng.randrange(30, 120)))
            )
            campaigns.append(
                Campaign(
                    campaign_id=f"{tenant_id[:3]}-{channel}-{n + 1:02d}",
                    name=f"{channel.replace('_', ' ').title()} {segment.replace('_', ' ')} #{n + 1}",
                    channel=channel,
                    segment=segment,
                    started_on=begin,
                    ended_on=finish,
                    quality=rng.gauss(0.0, SIGNAL.campaign_sd),
                    conversion_rate=rng.uniform(0.02, 0.08),
                    click_through_rate=rng.uniform(0.006, 0.04),
                )
            )
    return campaigns


def _person(rng: random.Random, corporate: bool) -> tuple[str, str, str, str | None]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    if corporate:
        company = f"{rng.choice(_COMPANY_A)} {rng.choice(_COMPANY_B)}"
        domain = f"{_slug(company)}.example"
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", first)).lower()
        return first, last, f"{local}@{domain}", company
    local = f"{first}.{last}{rng.randrange(10, 9999)}".lower()
    return first, last, f"{local}@{rng.choice(_FREE_DOMAINS)}", None


def _retyped(rng: random.Random, email: str) -> str:
    """The same address as a person types it again: other case, stray spaces."""
    variants = (email.upper(), f"  {email}", f"{email} ", email.capitalize(), email)
    return rng.choice(variants)


def generate_history(
    tenant_id: str,
    start: date,
    end: date,
    *,
    seed: int = 20261125,
    leads_per_day: float | None = None,
    duplicate_rate: float = 0.03,
    invalid_email_rate: float = 0.0,
    signal: PlantedSignal = SIGNAL,
) -> CrmHistory:
    """The tenant's CRM history from `start` to `end` (exclusive), as seen at `end`."""
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    profile = PROFILES.get(tenant_id, DEFAULT_PROFILE)
    rate = profile.leads_per_day if leads_per_day is None else leads_per_day
    rng = random.Random(f"{tenant_id}:{seed}")
    now = datetime.combine(end, time(), UTC)
    campaigns = _campaigns(rng, tenant_id, profile, start, end)
    sources, weights = zip(*sorted(profile.source_mix.items()), strict=True)

    records: list[LeadRecord] = []
    touches: list[Touch] = []
    outcomes: list[Outcome] = []
    truth: dict[str, float] = {}
    people: list[tuple[str, str, str, str, str | None, str | None]] = []  # for re-submissions
    leads_by_campaign_day: dict[tuple[str, date], set[str]] = {}

    day = start
    while day < end:
        weekday_factor = 0.45 if day.weekday() >= 5 else 1.12
        for _ in range(_poisson(rng, rate * weekday_factor)):
            created = datetime.combine(day, time(), UTC) + timedelta(
                seconds=int(min(max(rng.gauss(14 * 3600, 3.5 * 3600), 0), 86_399))
            )
            if people and rng.random() < duplicate_rate:
                first, last, email, source, phone, campaign_id = rng.choice(people)
                records.append(
                    LeadRecord(_uuid(rng), _retyped(rng, email), first, last, phone or None, None, source,
                               campaign_id, created, {})
                )  # fmt: skip
                continue
            if rng.random() < invalid_email_rate:
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                garbled = rng.choice(_NOT_EMAILS).format(
                    first=first.lower(), last=last.lower(), domain="mail.example"
                )
                records.append(
                    LeadRecord(_uuid(rng), garbled, first, last, None, None, "web", None, created, {})
                )
                continue

            source = rng.choices(sources, weights)[0]
            live = [
                c for c in campaigns
                if c.channel == source and c.started_on <= day and (c.ended_on is None or day <= c.ended_on)
            ]  # fmt: skip
            campaign = rng.choice(live) if live else None
            corporate = rng.random() < (0.55 if source in ("referral", "event", "cold_outbound") else 0.4)
            first, last, email, company = _person(rng, corporate)
            key = email_key(email)
            if key is None or key in truth:
                continue  # an invented collision: skip rather than merge two planted people
            phone = f"+1512555{rng.randrange(100, 200):04d}" if rng.random() < 0.45 else None
            prior = _poisson(rng, 1.2) if campaign else 0
            early = _poisson(rng, 1.3)
            p = _sigmoid(
                signal.logit(
                    corporate=corporate, phone=phone is not None, early_touches=early, source=source,
                    segment=campaign.segment if campaign else None,
                    campaign_quality=campaign.quality if campaign else 0.0,
                )
            )  # fmt: skip
            truth[key] = p
            utm = (
                {"utm_source": campaign.channel.split("_")[-1], "utm_medium": campaign.channel,
                 "utm_campaign": campaign.campaign_id}
                if campaign else {}
            )  # fmt: skip
            record = LeadRecord(
                _uuid(rng), email, first, last, phone, company, source,
                campaign.campaign_id if campaign else None, created, utm,
            )  # fmt: skip
            records.append(record)
            people.append((first, last, email, source, phone, record.campaign_id))
            if campaign:
                leads_by_campaign_day.setdefault((campaign.campaign_id, day), set()).add(key)
                for _ in range(prior):
                    at = created - timedelta(seconds=rng.randrange(60, 14 * 86_400))
                    touches.append(Touch(key, campaign.campaign_id, at, "ad_click"))
            touch_campaign = campaign.campaign_id if campaign else f"{tenant_id[:3]}-organic"
            for _ in range(early):
                at = created + timedelta(seconds=rng.randrange(60, int(SCORING_DELAY.total_seconds()) - 60))
                touches.append(Touch(key, touch_campaign, at, rng.choice(("email_click", "visit", "form"))))
            # Later engagement carries no signal; it only shows up after the scoring time.
            for _ in range(_poisson(rng, 1.5)):
                at = created + SCORING_DELAY + timedelta(seconds=rng.randrange(60, 30 * 86_400))
                if at < now:
                    touches.append(Touch(key, touch_campaign, at, rng.choice(("email_click", "visit"))))

            won = rng.random() < p
            if won or rng.random() < 0.3:
                at = created + SCORING_DELAY + timedelta(seconds=rng.randrange(0, 6 * 86_400))
                if at < now:
                    outcomes.append(Outcome(key, "qualified", at, None))
            if won:
                at = created + timedelta(days=3) + timedelta(days=rng.gammavariate(2.0, 8.0))
                if at < now:
                    value = Decimal(str(round(profile.deal_value * rng.lognormvariate(0, 0.5), 2)))
                    outcomes.append(Outcome(key, "won", at, value))
                    for k in range(rng.randrange(1, 4)):  # the look-ahead trap
                        onboarding = at + timedelta(days=k + 1, seconds=rng.randrange(3600, 80_000))
                        if onboarding < now:
                            touches.append(Touch(key, touch_campaign, onboarding, "onboarding_email"))
            elif rng.random() < 0.7:
                at = created + timedelta(days=5) + timedelta(days=rng.gammavariate(2.0, 10.0))
                if at < now:
                    outcomes.append(Outcome(key, "lost", at, None))
        day += timedelta(days=1)

    campaign_days = []
    for campaign in campaigns:
        last = min(campaign.ended_on or end - timedelta(days=1), end - timedelta(days=1))
        day = campaign.started_on
        while day <= last:
            conversions = len(leads_by_campaign_day.get((campaign.campaign_id, day), ()))
            clicks = max(
                conversions, round(rng.gauss(1.0, 0.15) * max(conversions, 0.5) / campaign.conversion_rate)
            )
            impressions = max(clicks, round(clicks / campaign.click_through_rate))
            spend = Decimal(
                str(round(clicks * CHANNEL_COST_PER_CLICK[campaign.channel] * rng.uniform(0.85, 1.15), 2))
            )
            campaign_days.append(
                CampaignDay(
                    campaign.campaign_id, day, spend, profile.currency, impressions, clicks, conversions
                )
            )
            day += timedelta(days=1)

    touches.sort(key=lambda t: (t.touched_at, t.email_key))
    outcomes.sort(key=lambda o: (o.occurred_at, o.email_key))
    return CrmHistory(tenant_id, start, end, campaigns, campaign_days, records, touches, outcomes, truth)
