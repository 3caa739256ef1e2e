{#
    Whole days elapsed from `start_ts` to `end_ts` (timestamptz), floored,
    counted in exact 24-hour days from the epoch difference. Not dbt.datediff:
    that counts calendar-day boundaries in the session's time zone, so the
    same two instants could give different answers on two machines or
    engines.
#}
{% macro days_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('days_between', 'bizos')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro default__days_between(start_ts, end_ts) -%}
    cast(floor((extract(epoch from {{ end_ts }}) - extract(epoch from {{ start_ts }})) / 86400) as bigint)
{%- endmacro %}

{% macro duckdb__days_between(start_ts, end_ts) -%}
    cast(floor((epoch_us({{ end_ts }}) - epoch_us({{ start_ts }})) / 86400000000) as bigint)
{%- endmacro %}

{% macro spark__days_between(start_ts, end_ts) -%}
    cast(floor((unix_micros({{ end_ts }}) - unix_micros({{ start_ts }})) / 86400000000) as bigint)
{%- endmacro %}
