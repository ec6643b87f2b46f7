"""A tenant's settings as the assets read them: one query, and one wording for a bad key."""

from collections.abc import Callable
from typing import Any

from dagster import Failure

from orchestration.warehouse import WarehouseResource


def tenant_settings(warehouse: WarehouseResource, tenant_id: str) -> dict[str, Any]:
    """The tenant's `settings` document, or a Failure when it is not an active tenant."""
    rows = warehouse.query(tenant_id, "SELECT settings FROM core.tenants WHERE tenant_id = %s", (tenant_id,))
    if not rows:
        raise Failure(f"tenant {tenant_id!r} is not in the registry (or is offboarded)")
    return rows[0]["settings"]


def settings_error(tenant_id: str, domain: str) -> Callable[[str, str, Any], Failure]:
    """`fail(key, expected, got)`: the Failure for a wrong `settings.<domain>.<key>`, naming it
    and saying where to fix it."""

    def fail(key: str, expected: str, got: Any) -> Failure:
        return Failure(
            f"tenant {tenant_id!r}: settings.{domain}.{key} must be {expected} (got {got!r}); "
            "fix the tenant's settings (tenants.yaml or `bizosaas tenants add ... --settings`)"
        )

    return fail
