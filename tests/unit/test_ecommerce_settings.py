"""A tenant's e-commerce settings: the seed's are valid, wrong ones fail naming the key to fix."""

import pytest
from dagster import Failure

from assets.ecommerce import day_bounds, ecommerce_settings
from orchestration.settings import load_settings
from orchestration.tenants import load_seed


def test_the_seeded_shop_is_valid():
    coreldove = next(
        spec for spec in load_seed(load_settings().tenants_file) if spec.tenant_id == "coreldove"
    )
    settings = ecommerce_settings("coreldove", coreldove.settings)
    assert settings.saleor_url.startswith("https://") and settings.channel and settings.currency == "USD"


URL = "https://x.saleor.cloud/graphql/"


@pytest.mark.parametrize(
    ("ecommerce", "key"),
    [
        (None, "settings.ecommerce. must be an object"),
        ({"channel": "c", "currency": "USD"}, "settings.ecommerce.saleor_url"),
        ({"saleor_url": "coreldove.saleor.cloud", "channel": "c", "currency": "USD"}, "saleor_url"),
        ({"saleor_url": URL, "currency": "USD"}, "settings.ecommerce.channel"),
        (
            {"saleor_url": URL, "channel": "c", "currency": "dollars"},
            "currency",
        ),
    ],
)
def test_wrong_settings_name_the_key(ecommerce, key):
    with pytest.raises(Failure, match=key.replace(".", r"\.")):
        ecommerce_settings("acme", {"ecommerce": ecommerce} if ecommerce is not None else {})


def test_a_day_is_its_inclusive_utc_bounds():
    from datetime import date

    assert day_bounds(date(2026, 11, 24)) == ("2026-11-24T00:00:00+00:00", "2026-11-24T23:59:59.999999+00:00")
