"""The synthetic tenant population: deterministic, every domain, settings the assets accept."""

import pytest

from orchestration import synthetic_tenants as st
from orchestration.errors import PlatformError
from orchestration.tenants import DOMAINS


def test_population_is_deterministic_and_tenant_n_does_not_depend_on_count():
    assert st.synthetic_specs(12, seed=3) == st.synthetic_specs(12, seed=3)
    assert st.synthetic_specs(200)[:12] == st.synthetic_specs(12)
    assert st.synthetic_specs(12, seed=1) != st.synthetic_specs(12, seed=2)
    ids = [s.tenant_id for s in st.synthetic_specs(3)]
    assert ids == ["synth_0001", "synth_0002", "synth_0003"]


def test_five_tenants_cover_every_domain_and_two_hundred_look_like_the_agency():
    five = st.synthetic_specs(5)
    assert set(st.domain_counts(five)) == set(DOMAINS)
    many = st.synthetic_specs(200)
    counts = st.domain_counts(many)
    assert counts["crm"] > 140 and 5 <= counts["trading"] <= 30  # trading stays inside the budget
    assert sum(len(s.domains) >= 2 for s in many) > 100
    assert all(s.kind == "client" and s.parent == "bizoholic" for s in many)
    assert len({s.display_name for s in many}) == 200
    assert len({s.settings["timezone"] for s in many}) > 5 and len({s.tier for s in many}) == 4
    # shared requests vary per tenant, per-tenant hosts are the tenant's own
    assert len({str(s.settings["directory"]["searches"]) for s in many if "directory" in s.domains}) > 3
    assert (
        len({s.settings["ecommerce"]["saleor_url"] for s in many if "ecommerce" in s.domains})
        == counts["ecommerce"]
    )


def test_every_synthetic_tenant_passes_the_assets_settings_readers():
    for spec in st.synthetic_specs(200, seed=7):
        st.check_settings(spec)


def test_bad_counts_are_refused():
    for bad in (0, -3, 10_000):
        with pytest.raises(PlatformError):
            st.synthetic_specs(bad)
