"""Email addresses of CRM leads: validity, the de-duplication key, and corporate vs free domains.

The key is deliberately conservative: trimmed and lower-cased, nothing more. Provider-specific
rewrites (Gmail's dots, `+tags`) would merge people who are different for other providers, and
a wrong merge loses a lead while a missed one only costs a duplicate call.
"""

from __future__ import annotations

import hashlib
import re

# RFC 5322 is far wider; this is what CRMs and mail providers accept in practice: one "@", a
# dotted domain with a letter TLD, no spaces.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)

# Consumer mailbox providers: a lead writing from one of these gave no company address.
FREE_EMAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
        "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "web.de", "mail.com",
        "zoho.com", "yandex.com", "yandex.ru", "qq.com", "163.com",
    }
)  # fmt: skip


def email_key(raw: str | None) -> str | None:
    """The normalised address leads are de-duplicated by, or None when `raw` is not an email."""
    if not isinstance(raw, str):
        return None
    candidate = raw.strip()
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[7:].strip()
    if len(candidate) > 254 or not EMAIL_PATTERN.match(candidate):
        return None
    return candidate.lower()


def email_domain(key: str) -> str:
    return key.rsplit("@", 1)[1]


def is_free_domain(key: str) -> bool:
    """Is this (normalised) address at a consumer mailbox provider rather than a company?"""
    return email_domain(key) in FREE_EMAIL_DOMAINS


def lead_id_for(tenant_id: str, key: str) -> str:
    """The platform's id of the lead with normalised email `key`: stable across runs and sources,
    and meaningless outside its tenant (the same person in two tenants gets two ids)."""
    return "ld_" + hashlib.sha256(f"{tenant_id}\n{key}".encode()).hexdigest()[:24]
