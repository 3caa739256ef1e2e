{#
    Seconds since the Unix epoch of a timestamp with time zone, fractional.
    Postgres and DuckDB read `extract(epoch from ts)`; Spark counts microseconds.
#}
{% macro epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'bizos')(ts)) }}
{%- endmacro %}

{% macro default__epoch_seconds(ts) -%}
    extract(epoch from {{ ts }})
{%- endmacro %}

{% macro spark__epoch_seconds(ts) -%}
    (unix_micros({{ ts }}) / 1000000.0)
{%- endmacro %}
