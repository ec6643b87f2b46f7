"""The `bizosaas` CLI as a person runs it: subprocesses, exit codes, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from orchestration.settings import PROJECT_ROOT

BIN = [sys.executable, "-m", "orchestration.cli"]


def run(*args, check_ok=True):
    proc = subprocess.run(
        [*BIN, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=PROJECT_ROOT, timeout=300
    )
    if check_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc, fragment):
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db"],
        ["db", "start"],
        ["db", "stop"],
        ["db", "status"],
        ["db", "url"],
        ["env"],
        ["tenants"],
        ["tenants", "list"],
        ["tenants", "add"],
        ["tenants", "remove"],
        ["tenants", "seed"],
        ["materialize"],
        ["demo"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["serve"],
    ],
)
def test_every_command_has_help(command):
    proc = run(*command, "--help")
    assert "usage: bizosaas" in proc.stdout


def test_onboard_list_and_offboard_a_tenant(platform):
    try:
        proc = run("tenants", "add", "cli_probe", "--domains", "gaming,crm", "--tier", "starter")
        assert "cli_probe added" in proc.stdout
        listed = {t["tenant_id"]: t for t in json.loads(run("tenants", "list", "--json").stdout)}
        assert listed["cli_probe"]["domains"] == ["gaming", "crm"]
        assert listed["cli_probe"]["parent_tenant_id"] == "bizoholic"
        assert_one_line_error(run("tenants", "add", "cli_probe", check_ok=False), "already exists")
        run("tenants", "remove", "cli_probe")
        assert "cli_probe" not in run("tenants", "list").stdout
        assert "offboarded" in run("tenants", "list", "--all").stdout
        assert "reactivated" in run("tenants", "add", "cli_probe").stdout
    finally:
        with platform.admin() as conn:
            conn.execute("DELETE FROM core.tenant_profile WHERE tenant_id = 'cli_probe'")
            conn.execute("DELETE FROM core.tenants WHERE tenant_id = 'cli_probe'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["tenants", "add", "Bad-Id"], "invalid tenant id"),
        (["tenants", "add", "acme", "--domains", "casino"], "unknown domain"),
        (["tenants", "add", "acme", "--parent", "coreldove"], "is not a master tenant"),
        (["tenants", "add", "acme", "--settings", "{not json"], "--settings is not valid JSON"),
        (["tenants", "remove", "nobody_here"], "unknown tenant 'nobody_here'"),
        (["tenants", "remove", "bizoholic"], "active client tenant"),
        (["materialize", "--tenant", "nobody_here"], "has no partitions"),
        (["materialize", "--select", "key:no_such_asset"], "matches no asset"),
    ],
)
def test_errors_are_one_clear_line(platform, args, fragment):
    assert_one_line_error(run(*args, check_ok=False), fragment)


def test_db_commands(platform):
    assert "bizosaas_serving" in run("db", "url", "--role", "serving").stdout
    assert "bizosaas_writer" in run("db", "url", "--role", "writer").stdout
    assert run("db", "url", "--role", "dagster").stdout.startswith("postgresql+psycopg2://")
    if platform.settings.embedded:
        assert "running" in run("db", "status").stdout


def test_materialize_one_tenant_with_progress(platform, materialized):
    proc = run("materialize", "--tenant", "thrillring", "--select", "key:tenant_profile")
    assert "[1/1] tenant_profile @ thrillring ... ok" in proc.stdout
    assert "1 succeeded, 0 failed" in proc.stdout


def test_dagster_definitions_validate(platform):
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_api_keys_are_shown_once_listed_without_secret_and_revocable(platform):
    created = run("keys", "create", "--tenant", "quanttrade", "--role", "approver", "--label", "cli test")
    key = created.stdout.strip()
    assert key.startswith("bzs_") and "shown once" in created.stderr
    key_id = key.split("_")[1]
    listing = run("keys", "list", "--tenant", "quanttrade").stdout
    assert key_id in listing and "approver" in listing and key not in listing
    with platform.admin() as conn:
        stored = conn.execute("SELECT secret_hash FROM ops.api_keys WHERE key_id = %s", (key_id,)).fetchone()
    assert stored and key.split("_", 2)[2] not in stored[0]
    run("keys", "revoke", key_id)
    assert_one_line_error(run("keys", "revoke", key_id, check_ok=False), "no active key")
    assert_one_line_error(run("keys", "create", "--tenant", "nobody_here", check_ok=False), "unknown tenant")
