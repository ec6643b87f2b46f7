"""Synthetic tenants: N realistic clients with replay data, for scale and soak tests.

`onboard_synthetic(count)` registers `synth_0001`..`synth_<count>` (kind client, parent
bizoholic), writes what their sources will be asked for, and gives them Dagster partitions;
`remove_synthetic()` takes every trace of them away again. Everything is derived from the seed
and the tenant's number, so tenant 7 is the same whether 10 or 200 are onboarded.

Where a request is shared by every tenant (directory searches, the game catalogue, esports
feeds, market data), a synthetic tenant's settings pick from what `fixtures/` records. Where the
recording is per tenant (its Saleor shop, its CRM, its file drops) the bundled generators write
its own data under `<data dir>/synthetic/`: `fixtures/<source>/<host>/` (the replay transport's
overlay, read per host on first use) and `drops/<tenant>/<kind>/`, copied into the drop folder.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

from orchestration import postgres, runtime, tenants
from orchestration.errors import PlatformError
from orchestration.partition_budget import guard_onboarding
from orchestration.settings import PROJECT_ROOT, Settings, load_settings
from orchestration.tenants import TenantSpec

PREFIX = "synth_"
PARENT = "bizoholic"

TIMEZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/London",
    "Europe/Berlin", "Europe/Madrid", "Asia/Singapore", "Australia/Sydney", "UTC",
)  # fmt: skip
TIER_WEIGHTS = {"free": 10, "starter": 45, "professional": 35, "enterprise": 10}
NAME_FIRST = (
    "Cedar", "Harbor", "Summit", "Juniper", "Copper", "Maple", "Blue Heron", "Northwind", "Sierra",
    "Willow", "Granite", "Lakeside", "Redwood", "Prairie", "Silverline", "Oakmont", "Bayview", "Aspen",
)  # fmt: skip
NAME_SECOND = {
    "directory": ("Dental", "Bistro", "Coffee Co", "Realty", "Fitness", "Auto Care", "Pharmacy"),
    "ecommerce": ("Goods", "Outfitters", "Home", "Supply", "Market", "Threads"),
    "gaming": ("Esports", "Gaming Lounge", "Arcade", "Guild"),
    "trading": ("Capital", "Quant Partners", "Markets"),
    "crm": ("Consulting", "Agency", "Partners", "Studio"),
}
# Requests every tenant shares: only choices the bundled fixtures record.
SEARCHES = (
    {"query": "restaurants", "location": "Austin, TX"},
    {"query": "coffee", "location": "Austin, TX"},
    {"query": "dentist", "location": "Portland, OR"},
)
NEWS_FEEDS = (
    {"name": "Dot Esports", "url": "https://dotesports.com/feed"},
    {"name": "HLTV", "url": "https://www.hltv.org/rss/news"},
    {"name": "Esports Insider", "url": "https://esportsinsider.com/feed/atom"},
)
UNIVERSE = ("BTC-USD", "ETH-USD", "AAPL", "MSFT", "EURUSD")
# The first five tenants cover every domain; the rest follow the agency's client mix.
FIRST_MIX = (
    ("crm", "directory"),
    ("crm", "ecommerce"),
    ("crm", "gaming"),
    ("trading",),
    ("crm", "directory", "ecommerce"),
)
SECONDARY_WEIGHTS = {"directory": 40, "ecommerce": 35, "gaming": 25}
TRADING_SHARE = 0.08  # ~16 of 200: market_prices (tenant x ~2,900 days) stays inside the budget
CRM_SHARE = 0.85
TWO_SECONDARY_SHARE = 0.15


def synthetic_id(number: int) -> str:
    return f"{PREFIX}{number:04d}"


def is_synthetic(tenant_id: str) -> bool:
    return tenant_id.startswith(PREFIX)


def _host_slug(tenant_id: str) -> str:
    return tenant_id.replace("_", "-")


def saleor_url(tenant_id: str) -> str:
    return f"https://{_host_slug(tenant_id)}.saleor.cloud/graphql/"


def crm_url(tenant_id: str) -> str:
    return f"https://crm.{_host_slug(tenant_id)}.example/api/"


def _domains(number: int, rng: random.Random) -> tuple[str, ...]:
    if number <= len(FIRST_MIX):
        return FIRST_MIX[number - 1]
    if rng.random() < TRADING_SHARE:
        return ("trading",)
    names, weights = zip(*SECONDARY_WEIGHTS.items(), strict=True)
    chosen = set(rng.choices(names, weights))
    if rng.random() < TWO_SECONDARY_SHARE:
        chosen.add(rng.choice([n for n in names if n not in chosen]))
    if rng.random() < CRM_SHARE:
        chosen.add("crm")
    return tuple(d for d in tenants.DOMAINS if d in chosen)


def synthetic_spec(number: int, seed: int = 0) -> TenantSpec:
    """Tenant `number` of the synthetic population of `seed` (pure, deterministic)."""
    if number < 1:
        raise PlatformError(f"synthetic tenant numbers start at 1 (got {number})")
    tenant_id = synthetic_id(number)
    rng = random.Random(f"bizosaas-synthetic:{seed}:{number}")
    domains = _domains(number, rng)
    main = next((d for d in domains if d != "crm"), "crm")
    name = f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_SECOND[main])} {number:04d}"
    settings: dict[str, Any] = {
        "timezone": rng.choice(TIMEZONES),
        # How much data the generators write for this tenant (1.0: the bundled tenants' volumes).
        "synthetic": {"seed": seed, "volume": round(rng.uniform(0.3, 1.0), 2)},
    }
    if "crm" in domains:
        crm: dict[str, Any] = {"retrain_after_outcomes": rng.choice([25, 50, 100])}
        if rng.random() < 0.5:
            crm["api_url"] = crm_url(tenant_id)  # else the tenant drops CRM exports as files
        settings["crm"] = crm
    if "directory" in domains:
        settings["directory"] = {
            "cache_ttl_hours": rng.choice([24, 72, 168]),
            "searches": rng.sample(SEARCHES, rng.randint(1, len(SEARCHES))),
        }
    if "ecommerce" in domains:
        settings["ecommerce"] = {
            "saleor_url": saleor_url(tenant_id),
            "channel": "default-channel",
            "currency": "USD",
        }
    if "gaming" in domains:
        # The IGDB request depends on the number of featured games: 50 is what the fixtures hold.
        settings["gaming"] = {
            "featured_games": 50,
            "steam_country": "us",
            "news_feeds": rng.sample(NEWS_FEEDS, rng.randint(1, len(NEWS_FEEDS))),
        }
    if "trading" in domains:
        settings["trading"] = {"universe": rng.sample(UNIVERSE, rng.randint(1, 3))}
    tier = rng.choices(list(TIER_WEIGHTS), list(TIER_WEIGHTS.values()))[0]
    return TenantSpec(tenant_id, name, "client", PARENT, tier, domains, settings).validate()


def synthetic_specs(count: int, seed: int = 0) -> list[TenantSpec]:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise PlatformError(f"--count must be a whole number of at least 1 (got {count!r})")
    if count > 9999:
        raise PlatformError(f"at most 9999 synthetic tenants (ids synth_0001..synth_9999), got {count}")
    return [synthetic_spec(n, seed) for n in range(1, count + 1)]


def check_settings(spec: TenantSpec) -> None:
    """Read the spec's settings with every reader the assets use: a synthetic tenant that would
    fail its first materialization is refused here instead."""
    from dagster import Failure

    from assets.directory import directory_settings
    from assets.ecommerce import ecommerce_settings
    from assets.esports import news_settings
    from assets.gaming import gaming_settings
    from orchestration.crm_settings import crm_settings
    from orchestration.knowledge_settings import knowledge_settings
    from orchestration.trading_settings import trading_settings, trading_universe

    readers: dict[str, list[Callable[[str, dict], Any]]] = {
        "crm": [crm_settings],
        "directory": [directory_settings],
        "ecommerce": [ecommerce_settings],
        "gaming": [gaming_settings, news_settings],
        "trading": [trading_settings, trading_universe],
    }
    try:
        knowledge_settings(spec.tenant_id, spec.settings)
        for domain in spec.domains:
            for read in readers[domain]:
                read(spec.tenant_id, spec.settings)
    except Failure as exc:
        raise PlatformError(exc.description or str(exc)) from None


# --- replay data ------------------------------------------------------------------------------


def synthetic_dir(settings: Settings) -> Path:
    return settings.data_dir / "synthetic"


def _generator(name: str) -> ModuleType:
    """A bundled fixture generator (fixtures/<name>.py), imported by path: fixtures/ is data,
    not a package."""
    module_name = f"_bizosaas_fixtures_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, PROJECT_ROOT / "fixtures" / f"{name}.py")
    if spec is None or spec.loader is None:
        raise PlatformError(f"fixture generator fixtures/{name}.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _volume(spec: TenantSpec) -> float:
    return float((spec.settings.get("synthetic") or {}).get("volume", 1.0))


def _write_saleor(spec: TenantSpec, overlay: Path) -> None:
    """The tenant's own shop: a subset of the bundled catalogue at its own prices and SKUs, and
    its own orders for every recorded day (first read and re-read since the watermark)."""
    gen = _generator("generate_saleor")
    rng = random.Random(f"saleor:{spec.tenant_id}:{spec.settings['synthetic']['seed']}")
    url = spec.settings["ecommerce"]["saleor_url"]
    folder = overlay / "saleor" / _host(url)
    code = spec.tenant_id.replace(PREFIX, "S").upper()
    factor = Decimal(str(round(rng.uniform(0.8, 1.3), 2)))
    catalogue = gen.build_catalogue()
    chosen = sorted(rng.sample(range(len(catalogue)), rng.randint(20, len(catalogue))))
    products = [
        replace(
            catalogue[i],
            variants=[
                replace(v, sku=v.sku.replace("CD-", f"{code}-", 1), price=gen.cents(v.price * factor))
                for v in catalogue[i].variants
            ],
        )
        for i in chosen
    ]
    gen.WRITTEN.clear()
    gen.record_products(folder, url, products, None, "full")
    gen.record_products(folder, url, products, max(p.updated for p in products), "since_watermark")
    days = [gen.FIRST_DAY + timedelta(days=n) for n in range((gen.LAST_DAY - gen.FIRST_DAY).days + 1)]
    by_day = gen.build_orders(products, spec.tenant_id, days, seed=rng.randrange(1 << 30), first_number=1001)
    keep = _volume(spec)
    for day, orders in by_day.items():
        orders = [o for o in orders if rng.random() < keep] or orders[:1]
        gen.record_day(folder, url, day, orders, None, "full")
        gen.record_day(folder, url, day, orders, gen.watermark(orders), "since_watermark_1")
    gen.WRITTEN.clear()


def _write_crm(spec: TenantSpec, overlay: Path, drops: Path) -> None:
    """The tenant's CRM history: API recordings at its api_url (or lead and outcome exports when
    it has none), and its campaign and touch exports."""
    gen = _generator("generate_crm")
    from ml.crm.synthetic import generate_history

    rate = round(1.0 + 9.0 * _volume(spec), 1)
    history = generate_history(
        spec.tenant_id, gen.START, gen.END, seed=20261125 + spec.settings["synthetic"]["seed"],
        leads_per_day=rate, invalid_email_rate=0.004,
    )  # fmt: skip
    url = (spec.settings.get("crm") or {}).get("api_url")
    if url:
        gen.api_fixtures(spec.tenant_id, url, history, folder=overlay / "crm" / _host(url))
    gen.drop_fixtures(spec.tenant_id, history, with_leads=not url, drops=drops)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.lower()


def write_replay_data(spec: TenantSpec, settings: Settings) -> None:
    root = synthetic_dir(settings)
    if "ecommerce" in spec.domains:
        _write_saleor(spec, root / "fixtures")
    if "crm" in spec.domains:
        _write_crm(spec, root / "fixtures", root / "drops")
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    (root / "tenants" / f"{spec.tenant_id}.json").write_text(json.dumps(_spec_doc(spec), indent=1))


def _spec_doc(spec: TenantSpec) -> dict[str, Any]:
    return {
        "tenant_id": spec.tenant_id,
        "display_name": spec.display_name,
        "tier": spec.tier,
        "domains": list(spec.domains),
        "settings": spec.settings,
    }


def _seed_drops(settings: Settings, tenant_ids: list[str]) -> int:
    from ml.crm.exports import KINDS
    from orchestration.file_drops import DropFolderResource

    source = synthetic_dir(settings) / "drops"
    if not source.is_dir():
        return 0
    return len(DropFolderResource(root=str(settings.drops_dir), settle_s=0).seed(source, tenant_ids, KINDS))


# --- onboarding and removal -------------------------------------------------------------------


def _prepared() -> Settings:
    settings = load_settings()
    runtime.export(runtime.prepare(settings))
    return settings


def _admin(settings: Settings) -> psycopg.Connection:
    return postgres.connect(postgres.admin_url(settings), autocommit=True)


def sync_partitions(instance=None) -> str:
    """Bring Dagster's tenant partitions in line with the registry (what the sensor does)."""
    import os

    from dagster import DagsterInstance

    from orchestration.partitions import current_partitions, plan_partition_sync
    from orchestration.settings import ENV_WRITER_URL
    from orchestration.warehouse import WarehouseResource

    registry = WarehouseResource(database_url=os.environ[ENV_WRITER_URL]).tenant_registry()
    if instance is None:
        with DagsterInstance.get() as owned:
            plan = plan_partition_sync(registry, current_partitions(owned))
            plan.apply(owned)
    else:
        plan = plan_partition_sync(registry, current_partitions(instance))
        plan.apply(instance)
    return plan.summary()


def onboard_synthetic(
    count: int, *, seed: int = 0, instance=None, progress: Callable[[str], None] | None = None
) -> list[str]:
    """Onboard the missing ones of `synth_0001`..`synth_<count>` with their replay data, and sync
    Dagster partitions. Returns the ids of all `count` tenants. Idempotent: tenants already
    active are left alone (their replay data is rewritten only if it is missing)."""
    say = progress or (lambda _: None)
    specs = synthetic_specs(count, seed)
    settings = _prepared()
    for spec in specs:
        check_settings(spec)
    with _admin(settings) as conn:
        active = {
            r[0]
            for r in conn.execute(
                "SELECT tenant_id FROM core.tenants WHERE tenant_id LIKE %s AND status = 'active'",
                (PREFIX.replace("_", r"\_") + "%",),
            )
        }
        missing = [s for s in specs if s.tenant_id not in active]
        # The whole batch is refused before anything is written if it would take an asset over
        # the partition budget.
        for warning in guard_onboarding(conn, missing):
            say(f"warning: {warning}")
        written = synthetic_dir(settings) / "tenants"
        todo = [s for s in specs if s in missing or not (written / f"{s.tenant_id}.json").exists()]
        for index, spec in enumerate(todo, 1):
            write_replay_data(spec, settings)
            if index % 25 == 0 or index == len(todo):
                say(f"replay data: {index}/{len(todo)} tenants")
        _seed_drops(settings, [s.tenant_id for s in todo])
        with conn.transaction():
            for spec in missing:
                tenants.add(conn, spec)
    say(f"registry: {len(missing)} added, {len(specs) - len(missing)} already active")
    say(f"partitions: {sync_partitions(instance)}")
    return [s.tenant_id for s in specs]


def _tenant_tables(conn: psycopg.Connection) -> list[str]:
    """Every table with a tenant_id column (partitioned parents, not their partitions), children
    before the tables their foreign keys reference, the registry last."""
    rows = conn.execute(
        """SELECT c.oid, format('%I.%I', n.nspname, c.relname)
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')"""
    ).fetchall()
    names = dict(rows)
    edges = conn.execute(
        "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid <> confrelid"
    ).fetchall()
    referenced_by: dict[int, set[int]] = {oid: set() for oid in names}
    for child, parent in edges:
        if child in names and parent in names:
            referenced_by[parent].add(child)
    ordered: list[int] = []
    done: set[int] = set()

    def visit(oid: int) -> None:
        if oid in done:
            return
        done.add(oid)
        for child in sorted(referenced_by[oid]):
            visit(child)
        ordered.append(oid)

    for oid in sorted(names):
        visit(oid)
    return [names[oid] for oid in ordered]


def remove_synthetic(*, instance=None, progress: Callable[[str], None] | None = None) -> list[str]:
    """Remove every `synth_` tenant: registry rows, their rows in every tenant table (API keys
    included), their vector partitions, replay data, drops and Dagster partitions. One
    transaction for the database: a failure leaves everything as it was."""
    say = progress or (lambda _: None)
    settings = _prepared()
    pattern = PREFIX.replace("_", r"\_") + "%"
    with _admin(settings) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT tenant_id FROM core.tenants WHERE tenant_id LIKE %s ORDER BY 1", (pattern,)
            )
        ]
        rows = 0
        with conn.transaction():
            # Each tenant's vectors live in its own partition of core.embeddings: drop them.
            for (table,) in conn.execute(
                """SELECT format('%I.%I', n.nspname, c.relname)
                     FROM pg_inherits i
                     JOIN pg_class c ON c.oid = i.inhrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE i.inhparent = 'core.embeddings'::regclass
                      AND pg_get_expr(c.relpartbound, c.oid) LIKE %s""",
                ("%'" + pattern + "'%",),
            ).fetchall():
                conn.execute(f"DROP TABLE {table}")
            for table in _tenant_tables(conn):
                if table == "core.tenants":
                    continue
                # Table names come from the catalogue, already quoted by format('%I.%I').
                rows += conn.execute(f"DELETE FROM {table} WHERE tenant_id LIKE %s", (pattern,)).rowcount
            conn.execute("DELETE FROM core.tenants WHERE tenant_id LIKE %s", (pattern,))
    say(f"database: {len(ids)} tenants and {rows} rows of theirs deleted")
    shutil.rmtree(synthetic_dir(settings), ignore_errors=True)
    if settings.drops_dir.is_dir():
        for folder in settings.drops_dir.glob(f"{PREFIX}*"):
            shutil.rmtree(folder, ignore_errors=True)
    say(f"partitions: {sync_partitions(instance)}")
    return ids


def domain_counts(specs: list[TenantSpec]) -> Counter:
    return Counter(d for s in specs for d in s.domains)


def summary(ids: list[str], seed: int, started: float) -> str:
    specs = [synthetic_spec(int(i.removeprefix(PREFIX)), seed) for i in ids]
    counts = domain_counts(specs)
    per_domain = ", ".join(f"{d} {counts[d]}" for d in tenants.DOMAINS if counts[d])
    return f"{len(ids)} synthetic tenants ({per_domain}) in {time.perf_counter() - started:.1f}s"
