"""The warehouse resource every asset writes through.

It connects as the pipelines' writer role, which is subject to row-level security: each unit
of work runs in one transaction with the tenant set locally (`set_config(..., true)`), so an
asset can only ever write the partition of the tenant it runs for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from dagster import ConfigurableResource
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import Field

from orchestration.tenants import validate_tenant_id


@dataclass(frozen=True)
class TenantRecord:
    """A registry row as the pipelines see it (routing facts only, no settings)."""

    tenant_id: str
    kind: str
    parent_tenant_id: str | None
    tier: str
    domains: tuple[str, ...]
    status: str
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"


def qualified_table(name: str) -> sql.Composable:
    """'schema.table' -> a safely quoted identifier; refuses anything else."""
    parts = name.split(".")
    if len(parts) != 2 or not all(p.isidentifier() for p in parts):
        raise ValueError(f"table must be written as schema.table, got {name!r}")
    return sql.Identifier(*parts)


def _adapt(value: Any) -> Any:
    # JSON documents go to jsonb columns; lists stay Postgres arrays.
    return Jsonb(value) if isinstance(value, dict) else value


def set_tenant(conn: psycopg.Connection, tenant_id: str) -> None:
    """Set the tenant for the current transaction only. Never session-wide: on a pooled
    connection a session-level setting would leak into the next request."""
    conn.execute("SELECT set_config('app.current_tenant', %s, true)", (tenant_id,))


class WarehouseResource(ConfigurableResource):
    """Postgres warehouse, as the RLS-bound writer role."""

    database_url: str = Field(description="URL of the writer role (BIZOSAAS_WRITER_URL).")
    connect_timeout_s: int = Field(default=10, description="Seconds to wait for a connection.")

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, connect_timeout=self.connect_timeout_s)

    @contextmanager
    def tenant_transaction(self, tenant_id: str) -> Iterator[psycopg.Connection]:
        """One transaction with `app.current_tenant` set; commits on success, rolls back on
        any exception (and a killed process never commits)."""
        validate_tenant_id(tenant_id)
        with self.connect() as conn, conn.transaction():
            set_tenant(conn, tenant_id)
            yield conn

    def query(self, tenant_id: str, query: str, params: Sequence[Any] | Mapping[str, Any] = ()):
        with self.tenant_transaction(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def replace_partition(
        self,
        tenant_id: str,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        partition: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        run_id: str | None = None,
    ) -> int:
        """Replace exactly one partition of `table` (the tenant's rows, narrowed further by
        `partition`, e.g. {"snapshot_date": day}) with `rows`, atomically.

        Rows are streamed with COPY into a transaction-local staging table and moved with one
        INSERT ... SELECT (COPY cannot target a table under RLS). Either the whole new
        partition is visible afterwards, or the previous one is untouched. The load is logged
        in `core.table_loads` in the same transaction (freshness for the overview mart).
        """
        with self.tenant_transaction(tenant_id) as conn:
            return write_partition(
                conn, tenant_id, table, rows, partition=partition, columns=columns, run_id=run_id
            )

    def tenant_registry(self) -> list[TenantRecord]:
        """The whole registry (every tenant, active or not) without any tenant's data."""
        with self.connect() as conn:
            return [
                TenantRecord(*row[:4], tuple(row[4]), *row[5:])
                for row in conn.execute("SELECT * FROM core.tenant_registry()")
            ]


def write_partition(
    conn: psycopg.Connection,
    tenant_id: str,
    table: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    partition: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    run_id: str | None = None,
) -> int:
    """`WarehouseResource.replace_partition` inside a transaction the caller already holds
    (with the tenant set), for assets that write more than one table atomically."""
    partition = dict(partition or {})
    target = qualified_table(table)
    iterator = iter(rows)
    first = next(iterator, None)
    if columns is None:
        columns = list(first.keys()) if first is not None else []
    columns = list(columns)
    if first is not None and "tenant_id" not in columns:
        columns.insert(0, "tenant_id")
    if first is not None:
        columns += [key for key in partition if key not in columns]

    where = sql.SQL(" AND ").join(
        sql.SQL("{} = %s").format(sql.Identifier(col)) for col in ["tenant_id", *partition]
    )
    # Two runs replacing the same partition at once (a backfill overlapping a schedule) would
    # each delete nothing the other has not committed yet, then collide on the primary key. The
    # lock, held to commit, makes the second wait and then replace what the first wrote.
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"{tenant_id}|{table}|{partition_label(partition)}",),
    )
    conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(target, where), [tenant_id, *partition.values()])
    count = 0
    if first is not None:
        count = _insert_rows(conn, target, columns, _chain(first, iterator), tenant_id, partition)
    _log_load(conn, tenant_id, table, partition, count, run_id)
    return count


def append_rows(
    conn: psycopg.Connection,
    tenant_id: str,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: str | None = None,
) -> list[Any]:
    """Insert `rows` (an append-only log such as a history table) in the caller's
    transaction; returns the `returning` column of each inserted row (e.g. generated ids)."""
    if not rows:
        return []
    columns = list(rows[0].keys())
    if "tenant_id" not in columns:
        columns.insert(0, "tenant_id")
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        qualified_table(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    if returning:
        statement += sql.SQL(" RETURNING {}").format(sql.Identifier(returning))
    values = [_row_values(row, columns, tenant_id, {}) for row in rows]
    with conn.cursor() as cur:
        cur.executemany(statement, values, returning=bool(returning))
        if not returning:
            return [None] * len(rows)
        returned = []
        while True:
            returned.append(cur.fetchone()[0])
            if not cur.nextset():
                return returned


def _insert_rows(conn, target, columns, rows, tenant_id, partition) -> int:
    conn.execute(
        sql.SQL("CREATE TEMP TABLE _partition_stage (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
            target
        )
    )
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    count = 0
    with conn.cursor().copy(sql.SQL("COPY _partition_stage ({}) FROM STDIN").format(column_list)) as copy:
        for row in rows:
            copy.write_row(_row_values(row, columns, tenant_id, partition))
            count += 1
    conn.execute(
        sql.SQL("INSERT INTO {} ({cols}) SELECT {cols} FROM _partition_stage").format(
            target, cols=column_list
        )
    )
    # Gone now, not at commit: the same transaction may write further partitions.
    conn.execute("DROP TABLE _partition_stage")
    return count


def partition_label(partition: Mapping[str, Any]) -> str:
    """{'day': date(2026, 1, 2)} -> 'day=2026-01-02' ('' for a tenant-only partition)."""
    return ",".join(f"{key}={value}" for key, value in partition.items())


def _log_load(conn, tenant_id, table, partition, count, run_id) -> None:
    conn.execute(
        """INSERT INTO core.table_loads (tenant_id, table_name, partition_key, row_count,
                                         loaded_at, dagster_run_id)
           VALUES (%s, %s, %s, %s, now(), %s)
           ON CONFLICT (tenant_id, table_name, partition_key) DO UPDATE
              SET row_count = EXCLUDED.row_count, loaded_at = EXCLUDED.loaded_at,
                  dagster_run_id = EXCLUDED.dagster_run_id""",
        (tenant_id, table, partition_label(partition), count, run_id),
    )


def _chain(first: Mapping[str, Any], rest: Iterator[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    yield first
    yield from rest


def _row_values(
    row: Mapping[str, Any], columns: Sequence[str], tenant_id: str, partition: Mapping[str, Any]
) -> list[Any]:
    row_tenant = row.get("tenant_id", tenant_id)
    if row_tenant != tenant_id:
        raise ValueError(f"row for tenant {row_tenant!r} in a write to tenant {tenant_id!r}")
    for key, value in partition.items():
        if key in row and row[key] != value:
            raise ValueError(f"row has {key}={row[key]!r} outside partition {key}={value!r}")
    values = []
    for col in columns:
        if col == "tenant_id":
            values.append(tenant_id)
        elif col in row:
            values.append(_adapt(row[col]))
        elif col in partition:
            values.append(partition[col])
        else:
            raise ValueError(f"row is missing column {col!r}")
    return values


def upsert_rows(
    conn: psycopg.Connection,
    tenant_id: str,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    updates: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> int:
    """Insert `rows`, or update the stored row with the same `key` (within the tenant), in the
    caller's transaction; for tables that accumulate across runs instead of being replaced.

    Rows are staged with COPY and merged with one INSERT ... ON CONFLICT. `updates` maps a
    column to the SQL expression it takes on conflict (default: the incoming value,
    `EXCLUDED.<column>`); the expressions are the caller's code, never user input. Keys must be
    unique within `rows`. The tenant's row count after the merge is logged in core.table_loads.
    """
    target = qualified_table(table)
    if rows:
        columns = list(rows[0].keys())
        if "tenant_id" not in columns:
            columns.insert(0, "tenant_id")
        conflict = ["tenant_id", *key]
        updates = dict(updates or {c: f"EXCLUDED.{c}" for c in columns if c not in conflict})
        column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
        conn.execute(
            sql.SQL("CREATE TEMP TABLE _upsert_stage (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                target
            )
        )
        with conn.cursor().copy(sql.SQL("COPY _upsert_stage ({}) FROM STDIN").format(column_list)) as copy:
            for row in rows:
                copy.write_row(_row_values(row, columns, tenant_id, {}))
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.SQL(expression))
            for column, expression in updates.items()
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM _upsert_stage "
                "ON CONFLICT ({conflict}) DO {action}"
            ).format(
                target=target,
                cols=column_list,
                conflict=sql.SQL(", ").join(map(sql.Identifier, conflict)),
                action=sql.SQL("UPDATE SET {}").format(assignments) if updates else sql.SQL("NOTHING"),
            )
        )
        conn.execute("DROP TABLE _upsert_stage")
    total = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(target), (tenant_id,)
    ).fetchone()[0]
    _log_load(conn, tenant_id, table, {}, total, run_id)
    return len(rows)


def delete_rows(
    conn: psycopg.Connection,
    tenant_id: str,
    table: str,
    key: Sequence[str],
    keys: Iterable[Sequence[Any]],
    *,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Delete the tenant's rows whose `key` columns equal one of `keys` (text values), narrowed by
    `where` (column -> value), in the caller's transaction, in one statement; returns the count."""
    keys = [tuple(k) for k in keys]
    if not keys:
        return 0
    where = dict(where or {})
    match = sql.SQL(" AND ").join(
        [
            *(sql.SQL("t.{c} = gone.{c}").format(c=sql.Identifier(c)) for c in key),
            *(sql.SQL("t.{} = %s").format(sql.Identifier(c)) for c in where),
        ]
    )
    statement = sql.SQL("DELETE FROM {} t USING unnest({}) AS gone({}) WHERE t.tenant_id = %s AND {}").format(
        qualified_table(table),
        sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in key),
        sql.SQL(", ").join(map(sql.Identifier, key)),
        match,
    )
    columns = [list(values) for values in zip(*keys, strict=True)]
    return conn.execute(statement, (*columns, tenant_id, *where.values())).rowcount
