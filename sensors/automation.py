"""Evaluates the declarative automation conditions (the dbt marts' `eager()`), explicitly
running rather than relying on Dagster's implicit default sensor and its instance settings."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

automation_sensor = AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Requests runs for assets whose automation condition is met (marts after upstream changes).",
)
