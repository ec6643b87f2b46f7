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
