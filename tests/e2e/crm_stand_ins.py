"""Deterministic stand-in lead scores, written where the `lead_scores` asset writes its own.

For tests of the serving routes, which need scored leads in tenants the model assets do not
cover, with scores a test can predict. Like `crm_seed`, this is no model: a lead's score is a
hash of its id, and its reasons are fixed phrases. It writes the same rows the asset does:
core.crm_lead_scores for every open lead scored, and ai_score/ai_reasons/scored_at on core.crm_leads.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from ml.crm.synthetic import SCORING_DELAY

# The score: a hash of the lead id spread over 0-100; the probability follows from it.
_SCORE = "(abs(hashtext(l.lead_id)) %% 101)"  # %% : a psycopg placeholder escape
_REASONS = """jsonb_build_array(
    jsonb_build_object('feature', 'corporate_email', 'value', 1, 'effect', 0.9,
                       'text', 'writes from a company address'),
    jsonb_build_object('feature', 'early_touches', 'value', 2, 'effect', 0.6,
                       'text', '2 campaign touches in the first day'),
    jsonb_build_object('feature', 'source', 'value', l.source, 'effect', -0.2,
                       'text', 'came from ' || l.source),
    jsonb_build_object('feature', 'phone_present', 'value', 0, 'effect', -0.1,
                       'text', 'left no phone number'))"""


def write_stand_in_scores(
    conn: psycopg.Connection, tenant_id: str, now: datetime, model_version: int = 1, model_kind: str = "model"
) -> int:
    """Score the tenant's open leads as of `now`, in the caller's transaction (tenant set).

    Leads younger than the scoring delay stay unscored, as they would with the real asset; closed
    leads lose any score. Returns the number of leads scored."""
    conn.execute("DELETE FROM core.crm_lead_scores WHERE tenant_id = %s", (tenant_id,))
    scored = conn.execute(
        f"""INSERT INTO core.crm_lead_scores
                   (tenant_id, lead_id, ai_score, probability, reasons, model_version, model_kind, scored_at)
            SELECT l.tenant_id, l.lead_id, {_SCORE}, {_SCORE} / 100.0, {_REASONS}, %s, %s, %s
              FROM core.crm_leads l
             WHERE l.tenant_id = %s AND l.status IN ('open', 'qualified') AND l.created_at <= %s""",
        (model_version, model_kind, now, tenant_id, now - SCORING_DELAY),
    ).rowcount
    conn.execute(
        """UPDATE core.crm_leads l
              SET ai_score = s.ai_score, ai_reasons = jsonb_path_query_array(s.reasons, '$[0 to 2]'),
                  scored_at = s.scored_at
             FROM core.crm_lead_scores s
            WHERE s.tenant_id = l.tenant_id AND s.lead_id = l.lead_id AND l.tenant_id = %s""",
        (tenant_id,),
    )
    conn.execute(
        """UPDATE core.crm_leads l SET ai_score = NULL, ai_reasons = NULL, scored_at = NULL
            WHERE l.tenant_id = %s AND l.ai_score IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM core.crm_lead_scores s
                               WHERE s.tenant_id = l.tenant_id AND s.lead_id = l.lead_id)""",
        (tenant_id,),
    )
    return scored
