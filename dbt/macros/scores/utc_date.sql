{#
    The UTC calendar day of a timestamp with time zone. A plain cast to date
    uses the session's time zone, which differs between machines and engines;
    `at time zone 'UTC'` gives the same day on DuckDB and Postgres. Spark has no
    `at time zone`: its timestamps are instants cast in the session zone, which
    the spark target sets to UTC (dbt/profiles.yml).
#}
{% macro utc_date(ts) -%}
    {{ return(adapter.dispatch('utc_date', 'bizos')(ts)) }}
{%- endmacro %}

{% macro default__utc_date(ts) -%}
    cast(({{ ts }}) at time zone 'UTC' as date)
{%- endmacro %}

{% macro spark__utc_date(ts) -%}
    to_date({{ ts }})
{%- endmacro %}
