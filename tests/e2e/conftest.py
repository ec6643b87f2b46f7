import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import pytest

from orchestration.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not come up in {timeout_s}s")


@pytest.fixture(scope="session")
def dagster_webserver(platform, materialized):
    """The real Dagster webserver on the test instance; yields its GraphQL URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/server_info", proc)
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


JWT_SECRET = "test-signing-secret-that-is-long-enough-for-hs256"


@dataclass(frozen=True)
class Api:
    url: str
    keys: dict[str, str]  # name -> full API key


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
            ("revoked", "coreldove", "reader"),
        ]:
            issued[name], key_id = keys.create(conn, tenant, role, f"e2e {name}")
            if name == "revoked":
                keys.revoke(conn, key_id)
    port = free_port()
    env = {**os.environ, "BIZOSAAS_JWT_SECRET": JWT_SECRET, "BIZOSAAS_API_AUTH_CACHE_TTL_S": "0"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "serving.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", proc)
        yield Api(f"http://127.0.0.1:{port}", issued)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
