"""API keys: `bzs_<key id>_<secret>`. Only a SHA-256 of the secret is stored; the key id is
public (it names the key in listings and revocations). The secrets are 256 random bits, so a
fast hash is the right tool: there is nothing to brute-force that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from orchestration.errors import PlatformError, UnknownTenantError
from orchestration.tenants import validate_tenant_id

ROLES = ("reader", "admin", "approver")
_KEY = re.compile(r"^bzs_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class ParsedKey:
    key_id: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(raw: str) -> ParsedKey | None:
    match = _KEY.match(raw or "")
    if not match:
        return None
    return ParsedKey(match.group(1), hash_secret(match.group(2)))


def new_key() -> tuple[str, str, str]:
    """(full key to show once, key id, secret hash to store)."""
    key_id = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(12))
    secret = secrets.token_urlsafe(32)  # 43 characters
    return f"bzs_{key_id}_{secret}", key_id, hash_secret(secret)


def create(
    conn: psycopg.Connection, tenant_id: str, role: str = "reader", label: str = ""
) -> tuple[str, str]:
    """Store a new key for a tenant (admin connection). Returns (full key, key id)."""
    validate_tenant_id(tenant_id)
    if role not in ROLES:
        raise PlatformError(f"role must be one of {', '.join(ROLES)}")
    row = conn.execute("SELECT status FROM core.tenants WHERE tenant_id = %s", (tenant_id,)).fetchone()
    if row is None:
        raise UnknownTenantError(tenant_id)
    if row[0] != "active":
        raise PlatformError(f"tenant {tenant_id!r} is offboarded; reactivate it before issuing keys")
    full, key_id, secret_hash = new_key()
    conn.execute(
        "INSERT INTO ops.api_keys (tenant_id, key_id, secret_hash, role, label) VALUES (%s, %s, %s, %s, %s)",
        (tenant_id, key_id, secret_hash, role, label),
    )
    return full, key_id


def list_keys(conn: psycopg.Connection, tenant_id: str | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT key_id, tenant_id, role, label, created_at, revoked_at
                 FROM ops.api_keys WHERE %(t)s::text IS NULL OR tenant_id = %(t)s
                ORDER BY tenant_id, created_at""",
            {"t": tenant_id},
        ).fetchall()


def revoke(conn: psycopg.Connection, key_id: str) -> None:
    updated = conn.execute(
        "UPDATE ops.api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
    ).rowcount
    if not updated:
        raise PlatformError(f"no active key {key_id!r}; see `bizosaas keys list`")
