"""The Dagster UI's GraphQL API shows our assets, tenant partitions, checks and sensor."""

import httpx

SEEDED = {"bizoholic", "coreldove", "business_directory", "thrillring", "quanttrade"}


def graphql(url, query):
    response = httpx.post(url, json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_ui_lists_tenant_partitions_checks_and_materializations(dagster_webserver):
    data = graphql(
        dagster_webserver,
        """{
      assetNodes {
        assetKey { path }
        partitionDefinition { dimensionTypes { dynamicPartitionsDefinitionName } }
        partitionKeysByDimension { partitionKeys }
        hasAssetChecks
        assetMaterializations(limit: 10) { runId partition }
      } }""",
    )
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    profile = nodes["tenant_profile"]
    assert profile["partitionDefinition"]["dimensionTypes"][0]["dynamicPartitionsDefinitionName"] == "tenant"
    assert set(profile["partitionKeysByDimension"][0]["partitionKeys"]) >= SEEDED
    assert profile["hasAssetChecks"]
    assert {m["partition"] for m in profile["assetMaterializations"]} & SEEDED


def test_ui_shows_the_tenant_sensor_running(dagster_webserver):
    data = graphql(
        dagster_webserver,
        """{
      repositoriesOrError { ... on RepositoryConnection { nodes {
        location { name } sensors { name sensorState { status } } } } } }""",
    )
    repo = data["repositoriesOrError"]["nodes"][0]
    assert repo["location"]["name"] == "bizosaas"
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert sensors["tenant_registry_sensor"] == "RUNNING"
    assert sensors["automation_condition_sensor"] == "RUNNING"
    assert sensors["directory_cache_expiry_sensor"] == "RUNNING"


def test_ui_lineage_runs_from_the_registry_through_assets_to_the_mart(dagster_webserver):
    data = graphql(
        dagster_webserver,
        """{
      assetNodes { assetKey { path } dependencyKeys { path } groupName } }""",
    )
    deps = {
        "/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]}
        for n in data["assetNodes"]
    }
    assert "staging/stg_tenant_profile" in deps["marts/tenant_overview"]
    assert deps["staging/stg_tenant_profile"] == {"tenant_profile"}
    assert deps["tenant_profile"] == {"tenant_registry"}
    groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in data["assetNodes"]}
    assert groups["marts/tenant_overview"] == "analytics"
    # the directory: source APIs -> cache -> master -> staging -> coverage mart
    assert deps["business_cache"] == {"tenant_registry", "nominatim_api", "locationiq_api", "overpass_api"}
    assert deps["businesses_master"] == {"business_cache"}
    assert deps["staging/stg_businesses"] == {"businesses_master"}
    assert "staging/stg_businesses" in deps["marts/directory_coverage"]
    assert groups["business_cache"] == groups["businesses_master"] == "directory"
