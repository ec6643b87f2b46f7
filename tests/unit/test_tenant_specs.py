import pytest

from orchestration.errors import PlatformError
from orchestration.settings import PROJECT_ROOT
from orchestration.tenants import TenantSpec, load_seed, validate_tenant_id


def test_seed_file_holds_the_planned_hierarchy():
    specs = {s.tenant_id: s for s in load_seed(PROJECT_ROOT / "tenants.yaml")}
    assert specs["bizoholic"].kind == "master" and specs["bizoholic"].parent is None
    for client in ("coreldove", "business_directory", "thrillring"):
        assert specs[client].kind == "client" and specs[client].parent == "bizoholic"
    assert specs["quanttrade"].kind == "internal"
    # masters come first so parents exist before their clients are inserted
    assert load_seed(PROJECT_ROOT / "tenants.yaml")[0].kind == "master"


@pytest.mark.parametrize(
    "bad",
    ["", "A", "x", "1abc", "acme-dental", "acme dental", "a" * 64, "x'; DROP TABLE t;--", "é_tenant"],
)
def test_bad_tenant_ids_are_refused(bad):
    with pytest.raises(PlatformError, match="invalid tenant id"):
        validate_tenant_id(bad)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "master", "parent": "bizoholic"}, "master tenant has no parent"),
        ({"kind": "client", "parent": None}, "needs a parent"),
        ({"domains": ("crm", "casino")}, "unknown domain"),
        ({"tier": "platinum"}, "tier must be one of"),
        ({"display_name": "  "}, "display_name is empty"),
    ],
)
def test_inconsistent_specs_are_refused(fields, message):
    base = dict(tenant_id="acme", display_name="Acme", kind="client", parent="bizoholic")
    with pytest.raises(PlatformError, match=message):
        TenantSpec(**{**base, **fields}).validate()


def test_bad_seed_files_name_the_problem(tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants: [{tenant_id: acme, display_name: Acme, parent: bizoholic, colour: red}]")
    with pytest.raises(PlatformError, match="unknown field"):
        load_seed(path)
    path.write_text("just a string")
    with pytest.raises(PlatformError, match="must hold a `tenants:` list"):
        load_seed(path)
    with pytest.raises(PlatformError, match="not found"):
        load_seed(tmp_path / "missing.yaml")
