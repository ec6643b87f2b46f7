{#
  Re-applies tenant isolation to a model right after dbt (re)builds it.
  Tables get RLS enabled and forced with the platform's policies (core.enable_tenant_rls, the
  same function the migrations use). Views get security_invoker, so they read the underlying
  tables with the caller's rights and policies instead of their owner's.
  Every model must carry a tenant_id column: the function's policies refer to it.
#}
{% macro apply_tenant_isolation() %}
  {% if model.config.materialized == 'view' %}
    alter view {{ this }} set (security_invoker = true)
  {% else %}
    select core.enable_tenant_rls('{{ this }}'::regclass)
  {% endif %}
{% endmacro %}
