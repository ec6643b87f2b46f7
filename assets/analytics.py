"""The dbt project as Dagster assets: staging views and tenant-scoped marts.

Sources map to the Python assets that write them, so lineage runs from the source API to the
mart. dbt tests become asset checks. Marts rebuild when an upstream asset changes
(declarative automation) and every night; one `dbt build` per run, because dbt's start-up
dominates the cost of a small project.
"""

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    DefaultScheduleStatus,
    ScheduleDefinition,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.runtime import DBT_PROJECT_DIR, parse_dbt_project

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Every `bizosaas` command refreshes the manifest before Dagster starts; this covers loading
# the code location any other way (`dagster dev`, pytest collection), on a fresh clone or after
# the dbt project changed (a stale manifest fails the dbt run on the first new model). It
# parses only when a dbt file is newer than the manifest.
parse_dbt_project({})

# Tables written outside any asset's compute, declared so that lineage shows them.
tenant_registry = AssetSpec(
    "tenant_registry",
    group_name="tenancy",
    kinds={"postgres"},
    description="core.tenants: the tenant registry (`bizosaas tenants ...`, tenants.yaml).",
)
table_loads = AssetSpec(
    "table_loads",
    group_name="tenancy",
    kinds={"postgres"},
    description="core.table_loads: the warehouse resource's log of every partition it replaced.",
)


class BizosaasDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props) -> str:
        return "analytics"

    def get_automation_condition(self, dbt_resource_props) -> AutomationCondition | None:
        # Rebuild as soon as any upstream partition changes, but never while one is in flight.
        return AutomationCondition.eager()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # One asset may write several source tables (tournaments and their entries).
    dagster_dbt_translator=BizosaasDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True)
    ),
    pool="dbt",
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


nightly_marts_schedule = ScheduleDefinition(
    name="nightly_marts",
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    target=AssetSelection.assets(dbt_models),
    default_status=DefaultScheduleStatus.RUNNING,
    description="Rebuild every dbt model and run its tests at 03:00 UTC.",
)
