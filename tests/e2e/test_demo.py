"""`make demo`'s command end to end: seeds, materializes, brings up the UI and the API, and
stops them again without touching the data."""

import os
import socket
import subprocess
import sys

from orchestration.processes import free_port
from orchestration.settings import PROJECT_ROOT


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_comes_up_and_stops_cleanly(platform, materialized):
    with platform.admin() as conn:
        before = conn.execute("SELECT count(*) FROM core.tenant_profile").fetchone()[0]
    ui_port, api_port = free_port(), free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.cli",
            "demo",
            "--exit-when-ready",
            "--keep-db",
            "--dagster-port",
            str(ui_port),
            "--api-port",
            str(api_port),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "ready in" in out
    assert f"Dagster UI   http://127.0.0.1:{ui_port}" in out
    assert f"API          http://127.0.0.1:{api_port}/docs" in out
    assert "0 failed" in out
    assert "X-API-Key: bzs_" in out
    assert port_is_free(ui_port) and port_is_free(api_port), "a server outlived the demo"
    with platform.admin() as conn:
        assert conn.execute("SELECT count(*) FROM core.tenant_profile").fetchone()[0] == before
