"""A tenant's `settings.crm`: one parser for every CRM asset and sensor, so a key means the same
thing everywhere and a bad one fails the same way (naming the key, via settings_error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ml.crm.features import DEFAULT_HORIZON
from ml.crm.model import DEFAULT_MIN_AUC, DEFAULT_MIN_OUTCOMES
from orchestration.tenant_settings import settings_error


@dataclass(frozen=True)
class CrmSettings:
    api_url: str | None = None  # the CRM's API root; None: the tenant only drops files
    reread_days: int = 90  # each sync re-reads leads created since the newest stored minus this
    min_outcomes_for_model: int = DEFAULT_MIN_OUTCOMES  # fewer labelled leads: a baseline
    retrain_after_outcomes: int = 50  # new won/lost outcomes that trigger a retrain
    min_model_auc: float = DEFAULT_MIN_AUC  # the floor a challenger must clear to be promoted
    # How long a lead has to reach an outcome: no outcome by then labels it 0 (features), and
    # only leads at least this old count in the campaign insights.
    outcome_horizon_days: int = DEFAULT_HORIZON.days


# key -> (lowest, highest, what it must be)
_WHOLE_NUMBERS = {
    "reread_days": (0, 3650, "a whole number of days between 0 and 3650"),
    "min_outcomes_for_model": (10, None, "a whole number of at least 10"),
    "retrain_after_outcomes": (1, None, "a whole number of at least 1"),
    "outcome_horizon_days": (1, 365, "a whole number of days, 1..365"),
}


def crm_settings(tenant_id: str, settings: dict[str, Any]) -> CrmSettings:
    """The tenant's CRM settings (defaults where absent), or a Failure naming the bad key."""
    fail = settings_error(tenant_id, "crm")
    crm = settings.get("crm") or {}
    if not isinstance(crm, dict):
        raise fail("", "an object", crm)
    values: dict[str, Any] = {}
    api_url = crm.get("api_url")
    if api_url is not None:
        parts = urlsplit(api_url) if isinstance(api_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise fail(
                "api_url", "an http(s) URL of the CRM's API root, e.g. https://crm.example/api/", api_url
            )
        values["api_url"] = api_url
    for key, (low, high, what) in _WHOLE_NUMBERS.items():
        if key in crm:
            value = crm[key]
            whole = isinstance(value, int) and not isinstance(value, bool)
            if not whole or value < low or (high is not None and value > high):
                raise fail(key, what, value)
            values[key] = value
    if "min_model_auc" in crm:
        value = crm["min_model_auc"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.5 <= value < 1:
            raise fail("min_model_auc", "a ROC AUC between 0.5 and 1", value)
        values["min_model_auc"] = float(value)
    return CrmSettings(**values)
