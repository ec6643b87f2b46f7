"""Watches tenants' drop folders and loads each new export exactly once.

`drop_sensor` builds one sensor per domain (gaming: players/tournaments; CRM: leads, outcomes,
campaigns, touches). Per tick: list the inboxes of the tenants that have the domain's
partitions, hash only files that are new or changed since the cursor, and request one run per
new file (the kind's asset, for that tenant's partition, with the file in the run config). The
run key is tenant + kind + the content's sha256, so the same content never launches a second
run, under any file name. A copy of content the ledger already holds is filed away as a
duplicate here, without a run. A kind that points at another kind's records waits while an
export of that kind is pending for the same tenant (tournaments wait for players; CRM outcomes
and touches wait for leads), and until that kind's asset has been materialized for the tenant at
least once, because its rows must point at known records: a new tenant whose leads come from its
CRM API may drop touch exports before its first API sync, and loading them then would quarantine
every row as pointing at an unknown lead.
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets import crm
from assets.esports import LEDGER_TABLE, gaming_drops_job, gaming_partitions
from orchestration.file_drops import DropFolderResource, file_sha256
from orchestration.warehouse import WarehouseResource, set_tenant
from sensors.limits import max_run_requests

# The run that loaded a file moves it right after its commit; a file still in the inbox this
# long after its content was loaded under its own name was left behind by a run that died.
LEFT_BEHIND_AFTER = timedelta(minutes=10)


def drop_sensor(
    *,
    name: str,
    job,
    partitions_name: str,
    ledger_table: str,
    assets: Mapping[str, str],
    waits_for: Mapping[str, tuple[str, ...]],
    description: str,
):
    """A sensor loading the `assets` kinds (kind -> asset name) of a domain's drop folders."""
    kinds = tuple(assets)

    @sensor(
        name=name,
        job=job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: SensorEvaluationContext, warehouse: WarehouseResource, drops: DropFolderResource):
        return _tick(context, warehouse, drops, partitions_name, ledger_table, kinds, assets, waits_for)

    return _sensor


def _tick(context, warehouse, drops, partitions_name, ledger_table, kinds, assets, waits_for):
    # path -> [size, mtime_ns, sha256, requested]
    seen: dict[str, list] = json.loads(context.cursor)["files"] if context.cursor else {}
    cursor: dict[str, list] = {}
    run_requests, archived, waiting = [], [], []
    limit = max_run_requests()
    visited: set[str] = set()
    instance = context.instance
    materialized: dict[str, set[str]] = {}

    def loaded_once(kind: str) -> set[str]:
        """Tenants whose `kind` has been loaded at least once: one query per kind, and only on a
        tick with a file that waits for it (most ticks have none)."""
        if kind not in materialized:
            materialized[kind] = instance.get_materialized_partitions(AssetKey(assets[kind]))
        return materialized[kind]

    # One connection for the tick, one RLS transaction per tenant with pending files.
    with warehouse.connect() as conn:
        for tenant_id in sorted(instance.get_dynamic_partitions(partitions_name)):
            if len(run_requests) >= limit:
                break  # the rest of the backlog goes out on the next ticks
            visited.add(tenant_id)
            _tenant_files(conn, drops, tenant_id, ledger_table, kinds, assets, waits_for, loaded_once, seen,
                          cursor, run_requests, archived, waiting, limit)  # fmt: skip
    # Files of tenants not visited this tick keep what the cursor knew of them.
    for key, known in seen.items():
        if key not in cursor and Path(key).parent.parent.name not in visited:
            cursor[key] = known
    new_cursor = json.dumps({"files": cursor}, sort_keys=True)
    if archived:
        context.log.info(f"filed away as already loaded: {', '.join(archived)}")
    if waiting:
        context.log.info(f"waiting for the records they refer to: {', '.join(waiting)}")
    if not run_requests:
        skip = f"{len(waiting)} export(s) wait for their records" if waiting else "no new export files"
        return SensorResult(skip_reason=SkipReason(skip), cursor=new_cursor)
    context.log.info(", ".join(f"{r.partition_key}: {r.tags['bizosaas/file']}" for r in run_requests))
    return SensorResult(run_requests=run_requests, cursor=new_cursor)


def _tenant_files(conn, drops, tenant_id, ledger_table, kinds, assets, waits_for, loaded_once, seen,
                  cursor, run_requests, archived, waiting, limit) -> None:  # fmt: skip
    pending = {kind: drops.pending(tenant_id, kind) for kind in kinds}
    shas: dict[str, str] = {}
    for kind in kinds:
        for dropped in pending[kind]:
            key = str(dropped.path)
            known = seen.get(key)
            if known and known[0] == dropped.size and known[1] == dropped.mtime_ns:
                shas[key] = known[2]
            else:  # new or rewritten: hash it (only these cost a read)
                shas[key], known = file_sha256(dropped.path), None
            cursor[key] = [dropped.size, dropped.mtime_ns, shas[key], bool(known and known[3])]
    if not shas:
        return
    with conn.transaction():
        set_tenant(conn, tenant_id)
        loaded = {
            sha: (name, at)
            for sha, name, at in conn.execute(
                f"SELECT sha256, file_name, loaded_at FROM {ledger_table} "
                "WHERE tenant_id = %s AND sha256 = ANY(%s)",
                (tenant_id, list(set(shas.values()))),
            )
        }
    unloaded = {kind for kind in kinds if any(shas[str(f.path)] not in loaded for f in pending[kind])}
    for kind in kinds:
        for dropped in pending[kind]:
            key = str(dropped.path)
            sha = shas[key]
            if sha in loaded:
                name, at = loaded[sha]
                if name != dropped.name or datetime.now(UTC) - at > LEFT_BEHIND_AFTER:
                    note = (
                        f"{dropped.name} was not loaded: the same content (sha256 {sha}) was loaded "
                        f"from {name} at {at:%Y-%m-%d %H:%M:%S} UTC.\n"
                    )
                    drops.archive(
                        dropped.path, tenant_id, kind, sha, note=note if name != dropped.name else None
                    )
                    archived.append(f"{tenant_id}/{kind}/{dropped.name}")
                    cursor.pop(key, None)
                continue
            if cursor[key][3]:
                continue  # requested on an earlier tick; its run is queued or running
            if len(run_requests) >= limit:
                continue  # left unrequested in the cursor: the next tick asks for it
            needs = waits_for.get(kind, ())
            blocked_by = [k for k in needs if k in unloaded or tenant_id not in loaded_once(k)]
            if blocked_by:
                waiting.append(f"{tenant_id}/{kind}/{dropped.name} (for {', '.join(blocked_by)})")
                continue
            cursor[key][3] = True
            run_requests.append(
                RunRequest(
                    run_key=f"{tenant_id}:{kind}:{sha}",
                    partition_key=tenant_id,
                    asset_selection=[AssetKey(assets[kind])],
                    run_config={"ops": {assets[kind]: {"config": {"file": key}}}},
                    tags={"bizosaas/trigger": "file_drop", "bizosaas/file": dropped.name[:200]},
                )
            )


gaming_file_drops_sensor = drop_sensor(
    name="gaming_file_drops_sensor",
    job=gaming_drops_job,
    partitions_name=gaming_partitions.name,
    ledger_table=LEDGER_TABLE,
    assets={"players": "players", "tournaments": "tournaments"},
    waits_for={"tournaments": ("players",)},
    description="Loads new players/tournaments exports dropped into gaming tenants' inboxes, once each.",
)

crm_file_drops_sensor = drop_sensor(
    name="crm_file_drops_sensor",
    job=crm.crm_drops_job,
    partitions_name=crm.crm_partitions.name,
    ledger_table=crm.LEDGER_TABLE,
    assets=crm.DROP_ASSETS,
    waits_for={"outcomes": ("leads",), "touches": ("leads",)},
    description=(
        "Loads new CRM exports (leads, outcomes, campaigns, touches) dropped into CRM tenants' inboxes, "
        "once each."
    ),
)
