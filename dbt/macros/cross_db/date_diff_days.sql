{#
    Days from date `start_date` to date `end_date` (negative when before). Postgres
    and DuckDB subtract dates to a number of days; Spark gives an interval, and
    counts days with datediff.
#}
{% macro date_diff_days(end_date, start_date) -%}
    {{ return(adapter.dispatch('date_diff_days', 'bizos')(end_date, start_date)) }}
{%- endmacro %}

{% macro default__date_diff_days(end_date, start_date) -%}
    ({{ end_date }} - {{ start_date }})
{%- endmacro %}

{% macro spark__date_diff_days(end_date, start_date) -%}
    datediff({{ end_date }}, {{ start_date }})
{%- endmacro %}
