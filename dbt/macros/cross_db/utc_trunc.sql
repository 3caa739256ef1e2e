{#
    The first day (a date) of the UTC week or month of a timestamp with time zone;
    weeks start on Monday. Postgres and DuckDB truncate in the zone given with
    `at time zone`; Spark has no such clause and truncates in its session zone,
    which the spark target sets to UTC (dbt/profiles.yml).
#}
{% macro utc_trunc_date(part, ts) -%}
    {{ return(adapter.dispatch('utc_trunc_date', 'bizos')(part, ts)) }}
{%- endmacro %}

{% macro default__utc_trunc_date(part, ts) -%}
    cast(date_trunc('{{ part }}', ({{ ts }}) at time zone 'UTC') as date)
{%- endmacro %}

{% macro spark__utc_trunc_date(part, ts) -%}
    cast(date_trunc('{{ part }}', {{ ts }}) as date)
{%- endmacro %}
