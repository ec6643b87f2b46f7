import os
import subprocess
import sys
from dataclasses import dataclass

import httpx
import pytest

from orchestration.processes import api_command, free_port, stop, wait_for_http
from orchestration.settings import PROJECT_ROOT

JWT_SECRET = "test-signing-secret-that-is-long-enough-for-hs256"


@dataclass(frozen=True)
class Api:
    url: str
    keys: dict[str, str]  # name -> full API key


def started(command: list[str], health_url: str, env: dict[str, str] | None = None, **kwargs):
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env or os.environ.copy(), **kwargs)
    if not wait_for_http(health_url, proc):
        stop(proc)
        raise RuntimeError(f"{command[2]} did not come up at {health_url}")
    return proc


@pytest.fixture(scope="session")
def dagster_webserver(platform, materialized):
    """The real Dagster webserver on the test instance; yields its GraphQL URL."""
    port = free_port()
    command = [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    proc = started(command, f"http://127.0.0.1:{port}/server_info",
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    yield f"http://127.0.0.1:{port}/graphql"
    stop(proc)


@pytest.fixture(scope="session")
def api(platform, materialized):
    """The real API in a uvicorn process on loopback, with keys for several tenants."""
    from serving import keys

    issued = {}
    with platform.admin() as conn:
        for name, tenant, role in [
            ("master", "bizoholic", "admin"),
            ("coreldove", "coreldove", "reader"),
            ("thrillring", "thrillring", "reader"),
            ("directory", "business_directory", "reader"),
            ("revoked", "coreldove", "reader"),
        ]:
            issued[name], key_id = keys.create(conn, tenant, role, f"e2e {name}")
            if name == "revoked":
                keys.revoke(conn, key_id)
    port = free_port()
    env = {**os.environ, "BIZOSAAS_JWT_SECRET": JWT_SECRET, "BIZOSAAS_API_AUTH_CACHE_TTL_S": "0"}
    proc = started(api_command("127.0.0.1", port), f"http://127.0.0.1:{port}/health", env)
    # The first knowledge search loads the embedding model in the API process (~10-20 s on a busy
    # machine): once here, so no test (schemathesis's 10 s timeout included) pays for it.
    warm = httpx.get(f"http://127.0.0.1:{port}/api/brain/rag/search", params={"q": "warm up"},
                     headers={"X-API-Key": issued["thrillring"]}, timeout=180)  # fmt: skip
    assert warm.status_code == 200, warm.text
    yield Api(f"http://127.0.0.1:{port}", issued)
    stop(proc)
