"""The Dagster UI shows the game catalogue's lineage from the source APIs to the dbt mart."""

from tests.e2e.test_dagster_ui import graphql


def test_ui_lineage_runs_from_the_game_apis_to_the_catalogue_mart(dagster_webserver):
    data = graphql(
        dagster_webserver,
        """{ assetNodes { assetKey { path } dependencyKeys { path } groupName
               partitionDefinition { dimensionTypes { name dynamicPartitionsDefinitionName } } } }""",
    )
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    deps = {key: {"/".join(d["path"]) for d in n["dependencyKeys"]} for key, n in nodes.items()}
    assert deps["game_catalogue"] == {"tenant_registry", "igdb_api", "steam_api", "opencritic_api"}
    assert deps["game_price_snapshots"] == {"game_catalogue", "steam_api"}
    assert deps["staging/stg_gaming_catalogue"] == {"game_catalogue"}
    assert deps["staging/stg_gaming_price_snapshots"] == {"game_price_snapshots"}
    assert {"staging/stg_gaming_catalogue", "staging/stg_gaming_price_snapshots"} <= deps[
        "marts/gaming_catalogue"
    ]
    assert {nodes[k]["groupName"] for k in ("game_catalogue", "game_price_snapshots", "igdb_api")} == {
        "gaming"
    }
    dims = nodes["game_price_snapshots"]["partitionDefinition"]["dimensionTypes"]
    assert {d["name"] for d in dims} == {"tenant", "date"}
    assert "tenant_gaming" in {d["dynamicPartitionsDefinitionName"] for d in dims}
