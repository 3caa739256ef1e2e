{#
    Custom schemas are used as written (`staging`, `intermediate`, `analytics`),
    not prefixed with the target schema as dbt does by default: Superset,
    serving and the contracts in docs/contracts.md name them directly, on
    DuckDB and Postgres alike.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
