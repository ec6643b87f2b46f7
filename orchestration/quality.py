"""Great Expectations suites as Dagster asset checks.

A check builds a pandas frame of what it guards and a list of expectations; `validate`
runs them in an ephemeral GX context (nothing written to disk) and turns the result into an
`AssetCheckResult` whose metadata names each failed expectation with a sample of the bad
values. Great Expectations takes seconds to import, so it is imported on first use, not when
the code location loads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue


@cache
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def validate(
    suite_name: str,
    frame: pd.DataFrame,
    build_suite: Callable[[Any], Sequence[Any]],
    *,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
) -> AssetCheckResult:
    """Run the expectations `build_suite(gx.expectations)` returns against `frame`."""
    import great_expectations as gx

    context = _context()
    # One data source per suite name, reused across calls in a process.
    try:
        batch_definition = (
            context.data_sources.get(suite_name).get_asset("frame").get_batch_definition("whole")
        )
    except (KeyError, LookupError, ValueError):
        batch_definition = (
            context.data_sources.add_pandas(suite_name)
            .add_dataframe_asset("frame")
            .add_batch_definition_whole_dataframe("whole")
        )
    suite = gx.ExpectationSuite(name=suite_name)
    for expectation in build_suite(gx.expectations):
        suite.add_expectation(expectation)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)

    failed = {}
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list") or [])
        details = item.result or {}
        sample = details.get("partial_unexpected_list") or []
        failed[f"{config.type}({column})"] = {
            "unexpected_count": details.get("unexpected_count"),
            "sample": [str(value) for value in sample[:5]],
        }
    statistics = result.statistics
    return AssetCheckResult(
        passed=bool(result.success),
        severity=severity,
        description=(
            f"{statistics['successful_expectations']}/{statistics['evaluated_expectations']} "
            f"expectations of suite {suite_name} met on {len(frame)} rows"
        ),
        metadata={
            "suite": MetadataValue.text(suite_name),
            "rows_checked": MetadataValue.int(len(frame)),
            "expectations_met": MetadataValue.int(statistics["successful_expectations"]),
            "expectations_evaluated": MetadataValue.int(statistics["evaluated_expectations"]),
            "failed_expectations": MetadataValue.json(failed),
        },
    )


def skipped_check() -> AssetCheckResult:
    """The result of a per-tenant check in a run that materialized no partition (nothing to check)."""
    return AssetCheckResult(passed=True, metadata={"skipped": "no partition in this run"})
