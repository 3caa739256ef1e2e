{#
    The UTC calendar day of a timestamp with time zone. A plain cast to date
    uses the session's time zone, which differs between machines and engines;
    `at time zone 'UTC'` gives the same day on DuckDB and Postgres.
#}
{% macro utc_date(ts) -%}
    cast(({{ ts }}) at time zone 'UTC' as date)
{%- endmacro %}
