"""A tenant's CRM settings: the seeded ones are valid, wrong ones fail naming the key."""

import pytest
from dagster import Failure

from orchestration.crm_settings import CrmSettings, crm_settings
from orchestration.settings import load_settings
from orchestration.tenants import load_seed


def test_the_seeded_crm_tenants_are_valid():
    specs = [s for s in load_seed(load_settings().tenants_file) if "crm" in s.domains]
    assert {s.tenant_id for s in specs} >= {"bizoholic", "coreldove", "business_directory"}
    for spec in specs:
        settings = crm_settings(spec.tenant_id, spec.settings)
        assert settings.min_outcomes_for_model == spec.settings["crm"]["min_outcomes_for_model"]
        assert settings.retrain_after_outcomes == spec.settings["crm"].get(
            "retrain_after_outcomes", CrmSettings.retrain_after_outcomes
        )


def test_absent_keys_take_the_defaults():
    assert crm_settings("t", {}) == CrmSettings()
    assert crm_settings("t", {"crm": {"min_model_auc": 0.7}}).min_model_auc == 0.7


@pytest.mark.parametrize(
    ("crm", "key"),
    [
        ("yes", "settings.crm. must be an object"),
        ({"min_outcomes_for_model": 5}, "settings.crm.min_outcomes_for_model must be a whole number"),
        ({"retrain_after_outcomes": "50"}, "settings.crm.retrain_after_outcomes"),
        ({"retrain_after_outcomes": True}, "settings.crm.retrain_after_outcomes"),
        ({"outcome_horizon_days": 0}, "settings.crm.outcome_horizon_days"),
        ({"outcome_horizon_days": "60"}, "settings.crm.outcome_horizon_days"),
        ({"reread_days": -1}, "settings.crm.reread_days"),
        ({"api_url": "crm.example/api"}, "settings.crm.api_url must be an http"),
        ({"min_model_auc": 0.4}, "settings.crm.min_model_auc must be a ROC AUC between 0.5 and 1"),
    ],
)
def test_a_wrong_key_is_named(crm, key):
    with pytest.raises(Failure, match=key.replace(".", r"\.")):
        crm_settings("acme", {"crm": crm})
