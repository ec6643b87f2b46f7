"""The tenant registry (`core.tenants`): validation, seeding from `tenants.yaml`, onboarding.

These functions take an *admin* connection: the registry is managed by the role that runs
migrations. Pipelines read it through `core.tenant_registry()`, the API through RLS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from orchestration.errors import PlatformError, UnknownTenantError

DOMAINS = ("directory", "gaming", "crm", "ecommerce", "trading")
KINDS = ("master", "client", "internal")
TIERS = ("free", "starter", "professional", "enterprise", "internal")
TENANT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


def validate_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.match(tenant_id):
        raise PlatformError(
            f"invalid tenant id {tenant_id!r}: use 2-63 lowercase letters, digits or _, "
            "starting with a letter"
        )
    return tenant_id


@dataclass(frozen=True)
class TenantSpec:
    tenant_id: str
    display_name: str
    kind: str = "client"
    parent: str | None = None
    tier: str = "starter"
    domains: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> TenantSpec:
        validate_tenant_id(self.tenant_id)
        if not self.display_name or not self.display_name.strip():
            raise PlatformError(f"tenant {self.tenant_id}: display_name is empty")
        if self.kind not in KINDS:
            raise PlatformError(f"tenant {self.tenant_id}: kind must be one of {', '.join(KINDS)}")
        if self.tier not in TIERS:
            raise PlatformError(f"tenant {self.tenant_id}: tier must be one of {', '.join(TIERS)}")
        unknown = sorted(set(self.domains) - set(DOMAINS))
        if unknown:
            raise PlatformError(
                f"tenant {self.tenant_id}: unknown domain(s) {', '.join(unknown)}; "
                f"choose from {', '.join(DOMAINS)}"
            )
        if self.kind == "master" and self.parent:
            raise PlatformError(f"tenant {self.tenant_id}: a master tenant has no parent")
        if self.kind != "master" and not self.parent:
            raise PlatformError(f"tenant {self.tenant_id}: a {self.kind} tenant needs a parent")
        if not isinstance(self.settings, dict):
            raise PlatformError(f"tenant {self.tenant_id}: settings must be a mapping")
        return self

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> TenantSpec:
        known = {"tenant_id", "display_name", "kind", "parent", "tier", "domains", "settings"}
        extra = sorted(set(raw) - known)
        if extra:
            raise PlatformError(f"tenant {raw.get('tenant_id')!r}: unknown field(s) {', '.join(extra)}")
        return cls(
            tenant_id=raw.get("tenant_id", ""),
            display_name=raw.get("display_name", ""),
            kind=raw.get("kind", "client"),
            parent=raw.get("parent"),
            tier=raw.get("tier", "starter"),
            domains=tuple(raw.get("domains") or ()),
            settings=raw.get("settings") or {},
        ).validate()


def load_seed(path: Path) -> list[TenantSpec]:
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PlatformError(f"tenants file {path} not found") from exc
    except yaml.YAMLError as exc:
        raise PlatformError(f"tenants file {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("tenants"), list):
        raise PlatformError(f"tenants file {path} must hold a `tenants:` list")
    specs = [TenantSpec.from_mapping(item) for item in document["tenants"]]
    ids = [s.tenant_id for s in specs]
    if len(set(ids)) != len(ids):
        raise PlatformError(f"tenants file {path} lists a tenant twice")
    # Masters first, so that every parent exists before its clients are inserted.
    return sorted(specs, key=lambda s: s.kind != "master")


def _check_parent(conn: psycopg.Connection, spec: TenantSpec) -> None:
    if spec.parent is None:
        return
    row = conn.execute(
        "SELECT kind, status FROM core.tenants WHERE tenant_id = %s", (spec.parent,)
    ).fetchone()
    if row is None:
        raise PlatformError(f"tenant {spec.tenant_id}: parent {spec.parent!r} is not registered")
    if row[0] != "master":
        raise PlatformError(f"tenant {spec.tenant_id}: parent {spec.parent!r} is not a master tenant")


_UPSERT = """
INSERT INTO core.tenants AS t
       (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
VALUES (%(tenant_id)s, %(display_name)s, %(kind)s, %(parent)s, %(tier)s, %(domains)s, %(settings)s)
ON CONFLICT (tenant_id) DO UPDATE
   SET display_name = EXCLUDED.display_name, kind = EXCLUDED.kind,
       parent_tenant_id = EXCLUDED.parent_tenant_id, tier = EXCLUDED.tier,
       domains = EXCLUDED.domains, settings = EXCLUDED.settings, updated_at = now()
 WHERE (t.display_name, t.kind, t.parent_tenant_id, t.tier, t.domains, t.settings)
       IS DISTINCT FROM
       (EXCLUDED.display_name, EXCLUDED.kind, EXCLUDED.parent_tenant_id, EXCLUDED.tier,
        EXCLUDED.domains, EXCLUDED.settings)
RETURNING (xmax = 0) AS inserted
"""


def _params(spec: TenantSpec) -> dict[str, Any]:
    return {
        "tenant_id": spec.tenant_id,
        "display_name": spec.display_name,
        "kind": spec.kind,
        "parent": spec.parent,
        "tier": spec.tier,
        "domains": list(spec.domains),
        "settings": Jsonb(spec.settings),
    }


def seed(conn: psycopg.Connection, specs: list[TenantSpec]) -> dict[str, int]:
    """Insert missing tenants and bring seeded attributes in line with the file.
    Leaves `status` alone: a tenant offboarded by hand is not brought back by a re-seed."""
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    with conn.transaction():
        for spec in specs:
            _check_parent_in_batch(conn, spec, specs)
            row = conn.execute(_UPSERT, _params(spec)).fetchone()
            if row is None:
                counts["unchanged"] += 1
            elif row[0]:
                counts["inserted"] += 1
            else:
                counts["updated"] += 1
    return counts


def _check_parent_in_batch(conn: psycopg.Connection, spec: TenantSpec, batch: list[TenantSpec]) -> None:
    in_batch = {s.tenant_id: s for s in batch}
    if spec.parent in in_batch:
        if in_batch[spec.parent].kind != "master":
            raise PlatformError(f"tenant {spec.tenant_id}: parent {spec.parent!r} is not a master tenant")
        return
    _check_parent(conn, spec)


def add(conn: psycopg.Connection, spec: TenantSpec) -> str:
    """Onboard one tenant (or bring back an offboarded one). Returns 'added' or 'reactivated'."""
    spec.validate()
    with conn.transaction():
        _check_parent(conn, spec)
        existing = conn.execute(
            "SELECT status FROM core.tenants WHERE tenant_id = %s FOR UPDATE", (spec.tenant_id,)
        ).fetchone()
        if existing and existing[0] == "active":
            raise PlatformError(f"tenant {spec.tenant_id!r} already exists")
        conn.execute(_UPSERT, _params(spec))
        if existing:
            conn.execute(
                "UPDATE core.tenants SET status = 'active', offboarded_at = NULL, updated_at = now() "
                "WHERE tenant_id = %s",
                (spec.tenant_id,),
            )
            return "reactivated"
    return "added"


def offboard(conn: psycopg.Connection, tenant_id: str) -> None:
    """Mark a tenant offboarded: its partitions are removed (no new runs), the API stops
    serving it, and its data stays in place until it is purged deliberately."""
    validate_tenant_id(tenant_id)
    with conn.transaction():
        row = conn.execute(
            "SELECT kind FROM core.tenants WHERE tenant_id = %s FOR UPDATE", (tenant_id,)
        ).fetchone()
        if row is None:
            raise UnknownTenantError(tenant_id)
        active_clients = conn.execute(
            "SELECT count(*) FROM core.tenants WHERE parent_tenant_id = %s AND status = 'active'",
            (tenant_id,),
        ).fetchone()[0]
        if active_clients:
            raise PlatformError(
                f"tenant {tenant_id!r} still has {active_clients} active client tenant(s); "
                "offboard them first"
            )
        conn.execute(
            "UPDATE core.tenants SET status = 'offboarded', offboarded_at = now(), updated_at = now() "
            "WHERE tenant_id = %s AND status <> 'offboarded'",
            (tenant_id,),
        )


def list_tenants(conn: psycopg.Connection, include_offboarded: bool = False) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT tenant_id, display_name, kind, parent_tenant_id, tier, domains, status,
                      settings, created_at, updated_at
                 FROM core.tenants
                WHERE %s OR status = 'active'
                ORDER BY kind <> 'master', tenant_id""",
            (include_offboarded,),
        ).fetchall()
