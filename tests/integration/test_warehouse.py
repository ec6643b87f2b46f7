"""Partition writes through the warehouse resource: atomic, idempotent, tenant-bound."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import psycopg
import pytest

from orchestration.warehouse import WarehouseResource, write_partition

TABLE = "core.test_partition_events"


@pytest.fixture(scope="module")
def warehouse(platform):
    with platform.admin() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"""CREATE TABLE {TABLE} (
                    tenant_id text NOT NULL REFERENCES core.tenants (tenant_id),
                    day date NOT NULL, event_id int NOT NULL, payload jsonb, tags text[],
                    PRIMARY KEY (tenant_id, day, event_id))"""
        )
        conn.execute("SELECT core.enable_tenant_rls(%s)", (TABLE,))
    yield WarehouseResource(database_url=platform.writer_url)
    with platform.admin() as conn:
        conn.execute(f"DROP TABLE {TABLE}")


def rows_for(platform, tenant, day=None):
    with platform.admin() as conn:
        query = f"SELECT tenant_id, day, event_id, payload, tags FROM {TABLE} WHERE tenant_id = %s"
        params = [tenant]
        if day:
            query += " AND day = %s"
            params.append(day)
        return conn.execute(query + " ORDER BY day, event_id", params).fetchall()


def events(n, day, start=0):
    return [
        {"day": day, "event_id": i, "payload": {"n": i, "name": "Café"}, "tags": ["a", "b"]}
        for i in range(start, start + n)
    ]


D1, D2 = date(2026, 1, 1), date(2026, 1, 2)


def test_replace_touches_exactly_one_partition(platform, warehouse):
    warehouse.replace_partition("coreldove", TABLE, events(3, D1), partition={"day": D1})
    warehouse.replace_partition("coreldove", TABLE, events(2, D2), partition={"day": D2})
    warehouse.replace_partition("thrillring", TABLE, events(4, D1), partition={"day": D1})
    assert (
        warehouse.replace_partition("coreldove", TABLE, events(5, D1, start=10), partition={"day": D1}) == 5
    )
    assert [r[2] for r in rows_for(platform, "coreldove", D1)] == [10, 11, 12, 13, 14]
    assert len(rows_for(platform, "coreldove", D2)) == 2
    assert len(rows_for(platform, "thrillring")) == 4
    assert rows_for(platform, "coreldove", D1)[0][3] == {"n": 10, "name": "Café"}
    assert rows_for(platform, "coreldove", D1)[0][4] == ["a", "b"]


def test_rerun_is_idempotent(platform, warehouse):
    for _ in range(2):
        warehouse.replace_partition("coreldove", TABLE, events(3, D1), partition={"day": D1})
        first = rows_for(platform, "coreldove")
    warehouse.replace_partition("coreldove", TABLE, events(3, D1), partition={"day": D1})
    assert rows_for(platform, "coreldove") == first


def test_exception_halfway_keeps_the_previous_rows(platform, warehouse):
    warehouse.replace_partition("coreldove", TABLE, events(3, D1), partition={"day": D1})
    before = rows_for(platform, "coreldove")

    def failing_rows():
        yield from events(2, D1, start=100)
        raise RuntimeError("parser blew up on row 3")

    with pytest.raises(RuntimeError, match="row 3"):
        warehouse.replace_partition("coreldove", TABLE, failing_rows(), partition={"day": D1})
    assert rows_for(platform, "coreldove") == before


def test_rows_for_another_tenant_or_partition_are_refused(platform, warehouse):
    warehouse.replace_partition("coreldove", TABLE, events(1, D1), partition={"day": D1})
    before = rows_for(platform, "coreldove")
    with pytest.raises(ValueError, match="row for tenant 'thrillring'"):
        warehouse.replace_partition("coreldove", TABLE, [{**events(1, D1)[0], "tenant_id": "thrillring"}])
    with pytest.raises(ValueError, match="outside partition"):
        warehouse.replace_partition("coreldove", TABLE, events(1, D2), partition={"day": D1})
    with pytest.raises(ValueError, match="schema.table"):
        warehouse.replace_partition("coreldove", "core.x; DROP TABLE core.tenants", [])
    assert rows_for(platform, "coreldove") == before


def test_writes_as_one_tenant_cannot_land_in_another(platform, warehouse):
    # Even bypassing the resource's own check, the database refuses the row.
    forbidden = pytest.raises(psycopg.errors.InsufficientPrivilege)
    with forbidden, warehouse.tenant_transaction("coreldove") as conn:
        conn.execute(f"INSERT INTO {TABLE} (tenant_id, day, event_id) VALUES ('thrillring', %s, 999)", (D1,))


def test_a_run_killed_midway_leaves_the_previous_rows(platform, warehouse, tmp_path):
    warehouse.replace_partition("coreldove", TABLE, events(3, D1), partition={"day": D1})
    before = rows_for(platform, "coreldove")
    marker = tmp_path / "halfway"
    script = textwrap.dedent(f"""
        import time, pathlib
        from orchestration.warehouse import WarehouseResource
        def rows():
            for i in range(1000):
                if i == 500:
                    pathlib.Path({str(marker)!r}).write_text("x")
                    time.sleep(60)
                yield {{"day": "{D1}", "event_id": 1000 + i}}
        WarehouseResource(database_url={platform.writer_url!r}).replace_partition(
            "coreldove", {TABLE!r}, rows(), partition={{"day": "{D1}"}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer never got halfway"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The killed backend's transaction is rolled back; give the server a moment to notice.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with platform.admin() as conn:
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'bizosaas_writer' AND state <> 'idle'"
            ).fetchone()[0]
        if not busy:
            break
        time.sleep(0.1)
    assert rows_for(platform, "coreldove") == before


def test_concurrent_replacements_of_one_partition_queue_instead_of_colliding(platform, warehouse):
    """A backfill and a schedule writing the same partition at once: the second waits for the
    first to commit, then replaces its rows (without the lock it dies on the primary key)."""
    first_wrote, release = threading.Event(), threading.Event()

    def first_writer():
        with warehouse.tenant_transaction("coreldove") as conn:
            write_partition(conn, "coreldove", TABLE, events(3, D2), partition={"day": D2})
            first_wrote.set()
            release.wait(30)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(first_writer)
        assert first_wrote.wait(30)
        second_rows = [{**row, "payload": {"writer": "second"}} for row in events(3, D2)]
        second = pool.submit(
            warehouse.replace_partition, "coreldove", TABLE, second_rows, partition={"day": D2}
        )
        time.sleep(0.5)
        assert not second.done(), "the second writer did not wait for the first to commit"
        release.set()
        first.result(30)
        assert second.result(30) == 3
    assert [row[3] for row in rows_for(platform, "coreldove", D2)] == [{"writer": "second"}] * 3
