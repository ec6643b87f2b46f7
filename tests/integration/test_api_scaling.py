"""`bizosaas serve` sizes the API against the real server before it starts a worker."""

from tests.integration.test_cli import assert_one_line_error, run


def test_serve_refuses_more_connections_than_the_server_allows(platform):
    with platform.admin() as conn:
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    workers = max_connections // 10 + 1  # x the default pool max of 10: more than the server has
    proc = run("serve", "--workers", str(workers), "--port", "1", check_ok=False)
    assert_one_line_error(proc, f"{workers} API worker(s) x pool max 10 = {workers * 10} connections")
    assert f"max_connections {max_connections}" in proc.stderr
    assert "API on http" not in proc.stdout  # no server was started


def test_serve_reads_its_worker_count_from_the_environment(platform, monkeypatch):
    monkeypatch.setenv("BIZOSAAS_API_WORKERS", "many")
    proc = run("serve", check_ok=False)
    assert_one_line_error(proc, "BIZOSAAS_API_WORKERS")
    monkeypatch.setenv("BIZOSAAS_API_WORKERS", "1000")
    monkeypatch.setenv("BIZOSAAS_API_POOL_MAX", "1")
    proc = run("serve", check_ok=False)
    assert_one_line_error(proc, "1000 API worker(s) x pool max 1")
