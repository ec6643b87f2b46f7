{# Models land in the schema named in their config (staging, marts), not `<target>_<schema>`:
   the migrations create those schemas and grant them, and the API reads `marts` by name. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
