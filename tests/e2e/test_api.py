"""The serving API over real HTTP: authentication, tenant narrowing, isolation, errors, paging."""

import time
from urllib.parse import quote

import httpx
import jwt
import pytest

from tests.e2e.conftest import JWT_SECRET

SEEDED = {"bizoholic", "coreldove", "business_directory", "thrillring", "quanttrade"}
INJECTIONS = [
    "coreldove' OR '1'='1",
    "'; DROP TABLE core.tenants; --",
    "thrillring,coreldove",
    "../thrillring",
    "%",
    "*",
    "coreldove\u0000",
    "1 UNION SELECT * FROM ops.api_keys",
]


def get(api, path, key=None, headers=None, **params):
    headers = dict(headers or {})
    if key:
        headers["X-API-Key"] = api.keys[key]
    return httpx.get(f"{api.url}{path}", headers=headers, params=params, timeout=30)


def assert_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["status"] == status and body["code"] and body["message"]
    return body


def token(**claims):
    base = {"sub": "user-1", "tenant_id": "coreldove", "role": "reader", "exp": int(time.time()) + 300}
    return jwt.encode({**base, **claims}, JWT_SECRET, algorithm="HS256")


def bearer(value):
    return {"Authorization": f"Bearer {value}"}


def test_health(api):
    assert get(api, "/health").json() == {"status": "ok", "database": "ok"}


def test_each_key_sees_its_own_tenant(api):
    for name, tenant in [("master", "bizoholic"), ("coreldove", "coreldove"), ("thrillring", "thrillring")]:
        me = get(api, "/api/brain/tenants/me", name).json()
        assert me["tenant_id"] == tenant and me["credential_tenant_id"] == tenant
    assert set(get(api, "/api/brain/tenants/me", "master").json()["readable_tenants"]) == SEEDED
    assert get(api, "/api/brain/tenants/me", "coreldove").json()["readable_tenants"] == ["coreldove"]


def test_master_may_narrow_to_a_client_and_nobody_may_widen(api):
    narrowed = get(api, "/api/brain/tenants/me", "master", {"X-Tenant-ID": "thrillring"}).json()
    assert narrowed["tenant_id"] == "thrillring" and narrowed["readable_tenants"] == ["thrillring"]
    assert narrowed["credential_tenant_id"] == "bizoholic"
    same = get(api, "/api/brain/tenants/me", "coreldove", {"X-Tenant-ID": "coreldove"})
    assert same.json()["tenant_id"] == "coreldove"
    for key, header in [
        ("coreldove", "thrillring"),
        ("coreldove", "bizoholic"),
        ("master", "no_such_tenant"),
        *[("master", i) for i in INJECTIONS[:6]],
    ]:
        assert_error(get(api, "/api/brain/tenants/me", key, {"X-Tenant-ID": header}), 403)


def test_missing_malformed_wrong_and_revoked_credentials_are_401(api):
    assert_error(get(api, "/api/brain/tenants/me"), 401)
    forged = get(api, "/api/brain/tenants/me", headers={"X-Tenant-ID": "coreldove"})
    assert_error(forged, 401)
    assert "WWW-Authenticate" in forged.headers
    real = api.keys["coreldove"]
    for bad in [
        "nope",
        real[:-1] + ("A" if real[-1] != "A" else "B"),
        real + "x",
        api.keys["revoked"],
        *INJECTIONS[:2],
    ]:
        assert_error(get(api, "/api/brain/tenants/me", headers={"X-API-Key": bad}), 401)
    assert_error(get(api, "/api/brain/tenants/me", headers={"Authorization": "Basic abc"}), 401)


def test_bearer_jwts(api):
    ok = get(api, "/api/brain/tenants/me", headers=bearer(token()))
    assert ok.json()["tenant_id"] == "coreldove" and ok.json()["authenticated_via"] == "jwt"
    # an API key also works as a bearer token
    assert (
        get(api, "/api/brain/tenants/me", headers=bearer(api.keys["thrillring"])).json()["tenant_id"]
        == "thrillring"
    )
    expired = token(exp=int(time.time()) - 10)
    wrong_key = jwt.encode(
        {"sub": "u", "tenant_id": "bizoholic", "role": "admin", "exp": int(time.time()) + 300},
        "another-secret-another-secret-12345",
        "HS256",
    )
    unsigned = jwt.encode(
        {"sub": "u", "tenant_id": "bizoholic", "role": "admin", "exp": int(time.time()) + 300},
        None,
        algorithm="none",
    )
    for bad in [
        expired,
        wrong_key,
        unsigned,
        token(tenant_id="no_such_tenant"),
        token(tenant_id="Bad-Id"),
        token(role="superuser"),
        "not.a.jwt",
    ]:
        assert_error(get(api, "/api/brain/tenants/me", headers=bearer(bad)), 401)
    no_tenant = jwt.encode({"sub": "u", "role": "reader", "exp": int(time.time()) + 300}, JWT_SECRET, "HS256")
    assert_error(get(api, "/api/brain/tenants/me", headers=bearer(no_tenant)), 401)


def test_admin_overview_list_pages_sorts_and_filters(api):
    body = get(api, "/api/brain/admin/tenants", "master").json()
    assert {row["tenant_id"] for row in body["data"]} == SEEDED
    assert body["page"] == {"limit": 50, "offset": 0, "total": 5, "next_offset": None}
    assert all(row["row_counts"].get("core.tenant_profile") == 1 for row in body["data"])

    first = get(api, "/api/brain/admin/tenants", "master", limit=2, sort="-tenant_id").json()
    assert [r["tenant_id"] for r in first["data"]] == ["thrillring", "quanttrade"]
    assert first["page"]["next_offset"] == 2
    rest = get(api, "/api/brain/admin/tenants", "master", limit=2, offset=4, sort="-tenant_id").json()
    assert [r["tenant_id"] for r in rest["data"]] == ["bizoholic"] and rest["page"]["next_offset"] is None

    clients = get(api, "/api/brain/admin/tenants", "master", kind="client").json()["data"]
    assert {r["tenant_id"] for r in clients} == {"coreldove", "business_directory", "thrillring"}
    crm = get(api, "/api/brain/admin/tenants", "master", domain="crm").json()["data"]
    assert {r["tenant_id"] for r in crm} == {"bizoholic", "coreldove", "business_directory"}


def test_admin_overview_of_one_tenant(api):
    row = get(api, "/api/brain/admin/tenants/coreldove/overview", "master").json()
    assert row["tenant_id"] == "coreldove" and row["total_rows"] >= 1
    assert row["last_materialized_at"] is not None and row["freshness_hours"] is not None
    assert_error(get(api, "/api/brain/admin/tenants/no_such_tenant/overview", "master"), 404)
    assert_error(get(api, "/api/brain/admin/tenants/Bad-Id/overview", "master"), 422)


def test_clients_cannot_use_admin_routes_in_any_way(api):
    for path in [
        "/api/brain/admin/tenants",
        "/api/brain/admin/tenants/coreldove/overview",
        "/api/brain/admin/tenants/thrillring/overview",
    ]:
        assert_error(get(api, path, "coreldove"), 403)
        assert_error(get(api, path, "coreldove", {"X-Tenant-ID": "bizoholic"}), 403)
        # a master narrowed to a client is a client for this purpose
        assert_error(get(api, path, "master", {"X-Tenant-ID": "coreldove"}), 403)


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_in_every_parameter_return_nothing_of_anyone(api, value):
    responses = [
        get(api, "/api/brain/admin/tenants", "master", sort=value),
        get(api, "/api/brain/admin/tenants", "master", kind=value),
        get(api, "/api/brain/admin/tenants", "master", domain=value),
        get(api, "/api/brain/admin/tenants", "master", limit=value),
        get(api, "/api/brain/admin/tenants", "master", offset=value),
        get(api, f"/api/brain/admin/tenants/{quote(value, safe='')}/overview", "master"),
        get(api, "/api/brain/tenants/me", "coreldove", {"X-Tenant-ID": value.replace("\u0000", "?")}),
        get(api, "/api/brain/tenants/me", headers={"X-API-Key": value.replace("\u0000", "?")}),
    ]
    for response in responses:
        assert response.status_code in (401, 403, 404, 422), (response.request.url, response.text)
        assert "error" in response.json()
        for other in SEEDED - {"bizoholic"}:
            assert f'"tenant_id":"{other}"' not in response.text
    assert len(get(api, "/api/brain/admin/tenants", "master").json()["data"]) == 5


def test_bad_parameters_and_unknown_routes_have_the_error_shape(api):
    for params in [
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"sort": "secret_column"},
        {"kind": "emperor"},
        {"domain": "casino"},
    ]:
        assert_error(get(api, "/api/brain/admin/tenants", "master", **params), 422)
    assert_error(get(api, "/api/brain/nothing-here", "master"), 404)
    assert_error(httpx.delete(f"{api.url}/health"), 405)


def test_openapi_docs_are_served(api):
    assert httpx.get(f"{api.url}/docs").status_code == 200
    paths = httpx.get(f"{api.url}/openapi.json").json()["paths"]
    assert {
        "/health",
        "/api/brain/tenants/me",
        "/api/brain/admin/tenants",
        "/api/brain/admin/tenants/{tenant_id}/overview",
    } <= set(paths)
