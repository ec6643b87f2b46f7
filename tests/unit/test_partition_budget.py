"""Partition budget maths: tenants x days per asset, the warn share and the refusal."""

import pytest

from orchestration.errors import PlatformError
from orchestration.partition_budget import (
    PartitionBudgetError,
    PartitionedAsset,
    budget_rows,
    budget_settings,
    check_onboarding,
    tenant_counts,
)
from orchestration.partitions import PartitionSyncPlan
from sensors.tenants import withhold_over_budget

ASSETS = [
    PartitionedAsset("market_prices", "tenant_trading", 2885),
    PartitionedAsset("orders", "tenant_ecommerce", 55),
    PartitionedAsset("tenant_profile", "tenant", 1),
]


def trading(n, start=1):
    return [(f"t{i:03d}", ["trading"]) for i in range(start, start + n)]


def test_rows_count_tenants_times_days_and_the_tenants_that_fit():
    counts = tenant_counts([*trading(30), ("shop", ["ecommerce", "crm"])])
    assert counts == {"tenant": 31, "tenant_trading": 30, "tenant_ecommerce": 1, "tenant_crm": 1}
    rows = {r.asset: r for r in budget_rows(ASSETS, counts, 100_000)}
    assert rows["market_prices"].partitions == 30 * 2885
    assert rows["market_prices"].max_tenants == 34  # 100,000 // 2,885
    assert rows["orders"].partitions == 55 and rows["orders"].max_tenants == 1818
    assert budget_rows(ASSETS, counts, 100_000)[0].asset == "market_prices"  # fullest first


def test_warns_past_the_share_and_refuses_the_tenant_that_would_pass_the_budget():
    assert check_onboarding(ASSETS, trading(20), trading(7, 21), 100_000, 0.8) == []
    warnings = check_onboarding(ASSETS, trading(20), trading(8, 21), 100_000, 0.8)
    assert len(warnings) == 1 and warnings[0].startswith("market_prices is at 81%")
    with pytest.raises(PartitionBudgetError) as refused:
        check_onboarding(ASSETS, trading(30), trading(6, 31), 100_000, 0.8)
    message = str(refused.value)
    # the 35th trading tenant is the first over: it is named, with the asset and what to do
    assert message.startswith("tenant t035 would give market_prices 100,975 partitions")
    assert "shorten the trading history start" in message and "nothing was onboarded" in message


def test_a_tenant_outside_the_full_domain_is_not_refused():
    over = trading(40)  # already over (the budget was lowered, say)
    assert check_onboarding(ASSETS, over, [("shop", ["ecommerce"])], 100_000, 0.99) == [
        "market_prices is at 115% of the partition budget (115,400 of 100,000: 40 tenants x 2,885 days; "
        "34 tenants at most)"
    ]


def test_budget_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv("BIZOSAAS_PARTITION_BUDGET", raising=False)
    monkeypatch.delenv("BIZOSAAS_PARTITION_WARN_SHARE", raising=False)
    assert budget_settings() == (100_000, 0.8)
    monkeypatch.setenv("BIZOSAAS_PARTITION_BUDGET", "50_000")
    monkeypatch.setenv("BIZOSAAS_PARTITION_WARN_SHARE", "0.5")
    assert budget_settings() == (50_000, 0.5)
    monkeypatch.setenv("BIZOSAAS_PARTITION_WARN_SHARE", "1.5")
    with pytest.raises(PlatformError, match="BIZOSAAS_PARTITION_WARN_SHARE must be a fraction"):
        budget_settings()
    monkeypatch.setenv("BIZOSAAS_PARTITION_BUDGET", "lots")
    with pytest.raises(PlatformError, match="BIZOSAAS_PARTITION_BUDGET must be a whole number"):
        budget_settings()


def test_the_sensor_withholds_only_the_partitions_past_the_budget():
    current = {"tenant_trading": [f"t{i:03d}" for i in range(1, 33)]}
    plan = PartitionSyncPlan(
        additions={"tenant": ["t033", "t034", "t035"], "tenant_trading": ["t033", "t034", "t035", "t036"]}
    )
    refused = withhold_over_budget(plan, current, ASSETS, 100_000)
    assert plan.additions["tenant_trading"] == ["t033", "t034"]  # 34 fit
    assert plan.additions["tenant"] == ["t033", "t034", "t035"]  # other domains unaffected
    assert len(refused) == 1 and "2 tenant(s) (t035, t036) get no tenant_trading partitions" in refused[0]
