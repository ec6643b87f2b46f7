"""A failed run reports the step's own reason (what the CLI prints and the soak lists), not
Dagster's generic "Execution of step ... failed"."""

import httpx
from dagster import AssetKey, Definitions, Failure, asset

from orchestration.materialize import PlannedRun, execute
from orchestration.sources import SourceError


@asset
def soak_probe_source_error():
    raise SourceError(
        "nominatim: HTTP 429 (gave up after 4 attempts; GET https://nominatim.example/search)",
        source="nominatim",
        attempts=[],
        retryable=True,
    )


@asset
def soak_probe_failure():
    raise Failure(description="the catalogue of 'acme' was not refreshed (the previous one is kept)")


@asset
def soak_probe_timeout():
    raise httpx.ReadTimeout("The read operation timed out")


def test_failed_runs_say_which_step_failed_and_why(dagster_instance):
    defs = Definitions(assets=[soak_probe_source_error, soak_probe_failure, soak_probe_timeout])
    runs = [PlannedRun([AssetKey(name)], None) for name in
            ("soak_probe_source_error", "soak_probe_failure", "soak_probe_timeout")]  # fmt: skip
    lines: list[str] = []
    outcomes = execute(defs, dagster_instance, runs, progress=lines.append)
    assert [o.success for o in outcomes] == [False, False, False]
    assert [o.error for o in outcomes] == [
        "soak_probe_source_error: nominatim: HTTP 429 (gave up after 4 attempts; "
        "GET https://nominatim.example/search)",
        "soak_probe_failure: the catalogue of 'acme' was not refreshed (the previous one is kept)",
        "soak_probe_timeout: The read operation timed out",
    ]
    assert "FAILED: soak_probe_failure: the catalogue" in lines[1]
