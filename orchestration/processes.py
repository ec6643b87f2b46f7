"""Starting, waiting for and stopping the platform's server processes (Dagster, the API).

One implementation for the CLI's demo, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from orchestration.settings import ENV_API_FORWARDED_ALLOW_IPS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_command(host: str, port: int, workers: int = 1, access_log: bool = False) -> list[str]:
    """uvicorn running the serving app factory."""
    command = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory",
               "--host", host, "--port", str(port), "--workers", str(workers),
               "--log-level", "warning"]  # fmt: skip
    # Forwarded client addresses (X-Forwarded-For) are believed only from the proxies named in
    # BIZOSAAS_API_FORWARDED_ALLOW_IPS: uvicorn's default trusts any local process, which could then
    # claim an address on the QuantTrade allow-list.
    proxies = os.environ.get(ENV_API_FORWARDED_ALLOW_IPS, "").strip()
    command += ["--forwarded-allow-ips", proxies] if proxies else ["--no-proxy-headers"]
    return command if access_log else [*command, "--no-access-log"]


def wait_for_http(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> bool:
    """True once `url` answers below 500; False if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """Interrupt a server (its whole process group when it has its own) and wait; kill it if
    it does not stop in time. Dagster and uvicorn both shut down cleanly on SIGINT."""
    if proc.poll() is not None:
        return
    own_group = os.getpgid(proc.pid) == proc.pid
    if own_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        if own_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
